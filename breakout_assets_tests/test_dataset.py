"""The training dataset: fixed feature order, and nothing dated after the signal session."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from breakout_assets.ml.dataset import training_set
from breakout_assets.ml.features import FEATURES, FeatureMismatch, check_model_features
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.settings import load_settings
from breakout_assets_tests.conftest import SAMPLE_DIR, new_database
from breakout_assets_tests.helpers import read_table, run_assets

CUTOFF = "2020-03-31"
INPUTS = f"SELECT * FROM model_inputs WHERE session <= '{CUTOFF}' ORDER BY signal_id"
LATER_FEATURES = f"""SELECT ticker, session, rsi_14 FROM daily_features
                     WHERE session > '{CUTOFF}' ORDER BY ticker, session LIMIT 5000"""


def _perturb_after(url: str, cutoff: str) -> None:
    """Every bar after the cutoff, stocks and index series, moved to different numbers."""
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.begin() as conn:
        for table in ("market_bars", "index_bars"):
            conn.execute(
                text(f"""
                UPDATE {table} SET open = open * 1.37, high = high * 1.52, low = low * 0.71,
                                   close = close * 1.11, volume = volume * 3 + 17
                WHERE session > :cutoff"""),
                {"cutoff": cutoff},
            )
    engine.dispose()


def test_no_feature_of_a_signal_reads_a_bar_after_its_session(pg_server, dagster_instance):
    settings = load_settings(database_url=new_database(pg_server), files_dir=SAMPLE_DIR)
    run_assets(
        settings, ["market_bars", "index_bars", "ticker_reference"], "2018-01-02", "2020-12-31"
    )
    run_assets(settings, ["daily_features", "breakout_signals"], "2019-01-02", "2020-12-31")
    before = read_table(settings.database_url, INPUTS)
    later_before = read_table(settings.database_url, LATER_FEATURES)
    assert len(before) >= 5 and before[list(FEATURES)].notna().any().all()
    _perturb_after(settings.database_url, CUTOFF)
    run_assets(settings, ["daily_features", "breakout_signals"], "2019-01-02", "2020-12-31")
    pd.testing.assert_frame_equal(before, read_table(settings.database_url, INPUTS))
    # ... while the same features after the cutoff did change: the perturbation was seen
    later_after = read_table(settings.database_url, LATER_FEATURES)
    assert not np.allclose(later_before["rsi_14"], later_after["rsi_14"], equal_nan=True)


def _rows(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=list(reversed(FEATURES)))
    rows["signal_id"] = [f"T{i}:2020-01-0{i + 1}:long" for i in range(n)]
    rows["session"] = pd.to_datetime([f"2020-01-0{i + 1}" for i in range(n)])
    rows["exit_session"] = rows["session"] + pd.Timedelta(days=5)
    rows["status"] = ["win", "loss", "expired", "win", "loss", "expired"][:n]
    rows["r_multiple"] = [2.0, -1.0, 0.4, 1.5, -1.2, -0.3][:n]
    return rows.iloc[::-1]  # the builder must not rely on the query's row order


def test_training_set_orders_rows_and_features_and_labels():
    ts = training_set(_rows())
    assert ts.feature_names == list(FEATURES)  # the fixed order, whatever the query's order
    assert list(ts.signal_session) == sorted(ts.signal_session)
    by_id = dict(zip(ts.signal_id, ts.label, strict=True))
    assert by_id["T0:2020-01-01:long"] == 1 and by_id["T2:2020-01-03:long"] == 0
    assert list(ts.r_multiple) == [2.0, -1.0, 0.4, 1.5, -1.2, -0.3]
    profitable = training_set(_rows(), label="profitable")
    assert list(profitable.label) == [1, 0, 1, 1, 0, 0]


def test_training_set_refuses_unfinished_outcomes_and_missing_features():
    rows = _rows()
    rows.loc[0, "status"] = "pending"
    with pytest.raises(ValueError, match="final, filled outcomes"):
        training_set(rows)
    with pytest.raises(ValueError, match="lacks features"):
        training_set(_rows().drop(columns=["rsi_14"]))


def test_the_view_serves_every_feature(pg_server):
    columns = read_table(new_database(pg_server), "SELECT * FROM model_inputs LIMIT 0").columns
    assert set(FEATURES) <= set(columns)


def test_model_feature_lists_are_checked_against_the_code():
    check_model_features([FEATURES[0], FEATURES[5]])
    with pytest.raises(FeatureMismatch, match="does not compute"):
        check_model_features(["rsi_14", "secret_sauce"])
    with pytest.raises(FeatureMismatch, match="order"):
        check_model_features([FEATURES[5], FEATURES[0]])


def test_training_set_carries_net_r_next_to_gross():
    rows = _rows()
    rows["net_r_multiple"] = rows["r_multiple"] - 0.05
    rows.loc[rows["signal_id"] == "T1:2020-01-02:long", "net_r_multiple"] = None  # no costs
    ts = training_set(rows)
    net = ts.net_r_multiple
    assert net[[0, 2, 3, 4, 5]].tolist() == pytest.approx([1.95, 0.35, 1.45, -1.25, -0.35])
    assert np.isnan(net[1])
    assert ts.subset([3, 0]).net_r_multiple.tolist() == pytest.approx([1.95, 1.45])
    assert np.isnan(training_set(_rows()).net_r_multiple).all()  # costs not recorded at all

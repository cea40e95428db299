"""`model_drift` and its retrain sensor on the bundled real sample, real Postgres, real models.

Models are trained once per module on the outcomes known up to TRAIN_END (chronological split,
quick config, promotion rules relaxed so both sides serve); the signals after it are then
labelled and scored by those models: they are the live signals the drift watch judges. Each
test clones that database. Nothing is mocked: the sensor is evaluated as Dagster's daemon
would (`evaluate_tick` on the definitions' own sensor) against the real tables.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pandas as pd
import pytest
from dagster import build_sensor_context

from breakout_assets.core.scanner import ScannerConfig
from breakout_assets.definitions import build_definitions, build_resources
from breakout_assets.ml.config import DriftConfig
from breakout_assets.ml.registry import PromotionRules
from breakout_assets.resources.postgres import _engine
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import SAMPLE_DIR, new_database
from breakout_assets_tests.helpers import read_table, run_assets
from breakout_assets_tests.test_trading_assets import _execute

SCANNER = ScannerConfig()
TRAIN_END, LIVE_FIRST, LAST = "2022-06-30", "2022-07-01", "2024-03-08"
PREVIOUS = "2024-03-07"
QUICK = {
    "trials": 3,
    "folds": 2,
    "max_rounds": 1,
    "min_features": 10,
    "split": "chronological",
    "test_fraction": 0.3,
}
# The live signals span ~430 sessions after the models' data (~110 final outcomes a side);
# the calibration thresholds are the defaults. PSI is set out of reach: the sample's features
# really moved between the COVID years the models learned from and 2023 (VIX changes, 20-day
# volatility: PSI 0.5-1.5), which the last test shows the watch flags at the default; the
# others plant a shift in confidence vs outcome and watch calibration alone.
DRIFT = DriftConfig(window_sessions=500, max_psi=10.0)
DRIFT_ROWS = "SELECT * FROM model_drift ORDER BY session, side"
REQUESTS = "SELECT * FROM retrain_requests ORDER BY id"


@pytest.fixture(scope="module")
def scored(pg_server, dagster_instance, tmp_path_factory):
    """(template database, model store): models trained up to TRAIN_END, later signals scored."""
    url = new_database(pg_server)
    store = tmp_path_factory.mktemp("store")
    settings = _settings(url, store)
    run_assets(settings, ["market_bars", "index_bars", "ticker_reference"], "2018-01-02", LAST)
    run_assets(settings, ["daily_features", "breakout_signals"], "2018-06-01", LAST)
    run_assets(settings, ["signal_outcomes"], "2018-06-01", TRAIN_END)
    helpers.train_and_serve(settings, url, QUICK)
    run_assets(settings, ["signal_outcomes", "signal_scores"], LIVE_FIRST, LAST)
    _engine(url).dispose()
    return urlparse(url).path.lstrip("/"), store


def _settings(url, store, drift=DRIFT):
    return load_settings(
        database_url=url,
        files_dir=SAMPLE_DIR,
        scanner=SCANNER,
        model_store_dir=store,
        promotion=PromotionRules(min_auc_margin=-0.5, min_gated_trades=1, must_beat_scanner=False),
        drift=drift,
    )


@pytest.fixture
def settings(pg_server, scored):
    template, store = scored
    return _settings(new_database(pg_server, template=template), store)


def watch(settings, first, last=None):
    return run_assets(settings, ["model_drift"], first, last)


def evaluate_sensor(settings):
    """One tick of the definitions' own sensor, with the definitions' resources."""
    definitions = build_definitions(settings)
    sensor = definitions.resolve_sensor_def("model_drift_retrain")
    context = build_sensor_context(
        instance=helpers.DEFAULT_INSTANCE,
        resources={"postgres": build_resources(settings)["postgres"]},
    )
    return sensor.evaluate_tick(context)


def plant_losing_confidence(settings, side="long"):
    """The live outcomes turned against the model: every final outcome of a signal it scored at
    or above its median confidence becomes a loss (-1 R), every one below a win (+1 R)."""
    _execute(
        settings,
        f"""
        WITH median AS (
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY confidence) AS confidence
            FROM signal_scores WHERE side = '{side}'
        ), live AS (
            SELECT o.signal_id, sc.confidence >= median.confidence AS confident
            FROM signal_outcomes o JOIN signal_scores sc USING (signal_id), median
            WHERE sc.side = '{side}' AND o.status IN ('win', 'loss', 'expired')
        )
        UPDATE signal_outcomes o
        SET status = CASE WHEN live.confident THEN 'loss' ELSE 'win' END,
            r_multiple = CASE WHEN live.confident THEN -1 ELSE 1 END,
            net_r_multiple = (CASE WHEN live.confident THEN -1 ELSE 1 END) - o.cost_r
        FROM live WHERE live.signal_id = o.signal_id
        """,
    )


def test_live_signals_after_the_models_data_are_judged_and_reruns_are_identical(settings):
    result = watch(settings, LAST)
    rows = read_table(settings.database_url, DRIFT_ROWS)
    assert rows["side"].tolist() == ["long", "short"]
    experiments = read_table(settings.database_url, "SELECT * FROM model_experiments")
    assert set(rows["experiment_id"]) == set(experiments["experiment_id"])
    live = read_table(
        settings.database_url,
        f"""SELECT sc.side, count(*) AS n FROM signal_scores sc JOIN signal_outcomes o
            USING (signal_id) WHERE o.status IN ('win', 'loss', 'expired')
            AND sc.session >= '{LIVE_FIRST}' GROUP BY sc.side ORDER BY sc.side""",
    )
    # every live final outcome was scored after the models' data (held-out rows end earlier)
    assert rows["live_outcomes"].tolist() == live["n"].tolist()
    assert (rows["live_outcomes"] >= DRIFT.min_outcomes).all()
    for row in rows.itertuples():
        assert sum(b["n"] for b in row.calibration) == row.live_outcomes
        assert [b["bucket"] for b in row.calibration] == list(range(10))
        assert set(row.psi) == set(
            experiments.loc[experiments["experiment_id"] == row.experiment_id, "features"].iloc[0]
        )
        assert row.max_psi == pytest.approx(max(row.psi.values()), abs=1e-6)
    # the models' live calibration on the real sample after mid-2022 is within its noise
    assert not rows["drifted"].any(), rows[["side", "live_ece", "calibration_gap", "reasons"]]
    metadata = result.asset_materializations_for_node("model_drift")[0].metadata
    assert metadata["long_drifted"].value is False
    assert metadata["long_live_outcomes"].value == rows["live_outcomes"].iloc[0]
    assert "held_out" in metadata["long_calibration"].value
    # the training rows rebuilt from the experiment's record are exactly the ones it trained on
    for side in ("long", "short"):
        recorded = experiments.loc[experiments["side"] == side, "split"].iloc[0]["train_rows"]
        assert metadata[f"{side}_training_rows"].value == (
            f"{recorded} rebuilt from the experiment's split (it recorded {recorded})"
        )

    watch(settings, LAST)
    again = read_table(settings.database_url, DRIFT_ROWS)
    pd.testing.assert_frame_equal(
        rows.drop(columns="recorded_at"), again.drop(columns="recorded_at")
    )

    # no shift: no retrain
    tick = evaluate_sensor(settings)
    assert tick.run_requests == [] and "no drift" in tick.skip_message
    assert read_table(settings.database_url, REQUESTS).empty


def test_a_planted_shift_asks_for_exactly_one_retrain_per_interval(settings):
    plant_losing_confidence(settings)
    watch(settings, PREVIOUS, LAST)  # a range: one run, a row per session and side
    rows = read_table(settings.database_url, DRIFT_ROWS)
    assert len(rows) == 4
    long, short = rows[rows["side"] == "long"], rows[rows["side"] == "short"]
    assert long["drifted"].all() and not short["drifted"].any()
    last = long.iloc[-1]
    assert last["calibration_gap"] > DRIFT.max_calibration_gap
    assert last["live_ece"] > DRIFT.max_ece
    crossed = [r for r in last["reasons"] if "noise" not in r and "not judged" not in r]
    assert any(r.startswith("calibration gap") and "SE" in r for r in crossed)
    assert any(r.startswith("live ECE") for r in crossed)
    # buckets wholly above the median confidence lost every trade, those below won every one
    [median] = read_table(
        settings.database_url,
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY confidence) FROM signal_scores "
        "WHERE side = 'long'",
    ).iloc[0]
    above = [b for b in last["calibration"] if b["n"] and b["lower"] >= median]
    below = [b for b in last["calibration"] if b["n"] and b["upper"] <= median]
    assert all(b["wins"] == 0 for b in above) and all(b["wins"] == b["n"] for b in below)
    assert above or below

    tick = evaluate_sensor(settings)
    [request] = tick.run_requests
    assert request.job_name == "train_models"
    assert request.run_key == f"drift-retrain:{LAST}:long"
    assert request.tags["breakout/drift_sides"] == "long"
    assert request.tags["breakout/drift_session"] == LAST
    assert any(v.startswith("long: calibration gap") for v in request.tags.values())
    [recorded] = read_table(settings.database_url, REQUESTS).itertuples()
    assert (recorded.run_key, str(recorded.session), recorded.sides) == (
        request.run_key,
        LAST,
        ["long"],
    )
    assert list(recorded.reasons) == [f"long: {r}" for r in last["reasons"]]

    # evaluated again within the interval: nothing more
    tick = evaluate_sensor(settings)
    assert tick.run_requests == [] and "at most one per 168 h" in tick.skip_message
    assert len(read_table(settings.database_url, REQUESTS)) == 1

    # the interval over: the same drift reading does not ask twice either
    _execute(settings, "UPDATE retrain_requests SET requested_at = now() - interval '169 hours'")
    tick = evaluate_sensor(settings)
    assert tick.run_requests == [] and "already asked" in tick.skip_message
    assert len(read_table(settings.database_url, REQUESTS)) == 1


def test_a_new_drift_reading_after_the_interval_asks_again(settings):
    plant_losing_confidence(settings)
    watch(settings, PREVIOUS)
    [first] = evaluate_sensor(settings).run_requests
    assert first.run_key == f"drift-retrain:{PREVIOUS}:long"
    watch(settings, LAST)  # a newer drifted session, within the interval: none
    assert evaluate_sensor(settings).run_requests == []
    _execute(settings, "UPDATE retrain_requests SET requested_at = now() - interval '169 hours'")
    [second] = evaluate_sensor(settings).run_requests
    assert second.run_key == f"drift-retrain:{LAST}:long"
    assert read_table(settings.database_url, REQUESTS)["run_key"].tolist() == [
        first.run_key,
        second.run_key,
    ]


def test_the_samples_real_feature_drift_is_flagged_at_the_default_psi(pg_server, scored):
    template, store = scored
    settings = _settings(
        new_database(pg_server, template=template),
        store,
        drift=DriftConfig(window_sessions=500),
    )
    watch(settings, LAST)
    rows = read_table(settings.database_url, DRIFT_ROWS).set_index("side")
    for side in ("long", "short"):
        psi = rows.loc[side, "psi"]
        worst = max(psi, key=psi.get)
        assert rows.loc[side, "drifted"] and psi[worst] > 0.25
        assert f"PSI {worst} {psi[worst]:.3f} > 0.25" in rows.loc[side, "reasons"]
    assert rows.loc["short", "psi"]["vix_change_5d"] > 1.0
    assert not any(
        "calibration gap" in r and "SE" in r and "noise" not in r
        for r in rows.loc["short", "reasons"]
    )
    [request] = evaluate_sensor(settings).run_requests
    assert request.run_key == f"drift-retrain:{LAST}:long+short"

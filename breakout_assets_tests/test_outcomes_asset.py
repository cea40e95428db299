"""`signal_outcomes` materialised on the bundled real sample, against real Postgres."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from breakout_assets.core.outcomes import BarPaths, OutcomeConfig, Status, replay
from breakout_assets.partitions import nyse_sessions
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.resources.postgres import _engine
from breakout_assets.settings import load_settings
from breakout_assets_tests.conftest import SAMPLE_DIR, new_database
from breakout_assets_tests.helpers import read_table, run_assets, run_totals

OUTCOMES = "SELECT * FROM signal_outcomes ORDER BY signal_id"
FIRST, LAST = "2019-06-03", "2021-12-31"


@pytest.fixture(scope="module")
def signals_template(pg_server, dagster_instance):
    """Bars 2018-2021 and the signals of mid-2019..2021, built once and cloned per test."""
    url = new_database(pg_server)
    settings = load_settings(database_url=url, files_dir=SAMPLE_DIR)
    run_assets(settings, ["market_bars", "index_bars", "ticker_reference"], "2018-01-02", LAST)
    run_assets(settings, ["breakout_signals"], FIRST, LAST)
    _engine(url).dispose()  # a template must have no open connections
    return urlparse(url).path.lstrip("/")


@pytest.fixture
def loaded(pg_server, signals_template):
    return load_settings(
        database_url=new_database(pg_server, template=signals_template), files_dir=SAMPLE_DIR
    )


def _outcomes(settings, first, last=None):
    return run_assets(settings, ["signal_outcomes"], first, last)


def _execute(settings, sql, **params):
    engine = create_engine(with_driver(settings.database_url, "psycopg"))
    with engine.begin() as conn:
        conn.execute(text(sql), params)
    engine.dispose()


def test_range_run_labels_every_signal_and_rerun_is_identical(loaded):
    result = _outcomes(loaded, FIRST, LAST)
    first = read_table(loaded.database_url, OUTCOMES)
    signals = read_table(loaded.database_url, "SELECT signal_id FROM breakout_signals")
    assert sorted(first["signal_id"]) == sorted(signals["signal_id"])
    assert set(first["status"]) <= {"win", "loss", "expired", "unfilled", "pending"}
    assert {"win", "loss"} <= set(first["status"])
    decided = first[first["status"].isin(["win", "loss", "expired"])]
    assert (decided["exit_session"] >= decided["entry_session"]).all()
    assert (decided.loc[decided["status"] == "win", "r_multiple"] > 0).all()
    assert (decided.loc[decided["status"] == "loss", "r_multiple"] <= 0).all()
    # labels have no time cut: still pending = filled and neither stop nor target hit by the
    # last bar (a few recent months), or waiting for the entry on the last session
    pending = first[first["status"] == "pending"]
    assert (pd.to_datetime(pending["session"]) > pd.Timestamp("2021-06-01")).all()
    assert (pending["entry_session"].notna() | (pending["session"].astype(str) == LAST)).all()
    assert run_totals(result, "signal_outcomes")["replayed"] == len(first)
    _outcomes(loaded, FIRST, LAST)
    pd.testing.assert_frame_equal(first, read_table(loaded.database_url, OUTCOMES))


def test_pending_outcomes_complete_as_bars_arrive_and_finals_never_change(loaded):
    _outcomes(loaded, FIRST, LAST)
    at_once = read_table(loaded.database_url, OUTCOMES)
    # the same history, lived day by day: at first the bars end a few sessions after a signal
    signal_day = at_once.loc[at_once["session"].astype(str) > "2020-03-01", "session"].min()
    cut, resume, following = nyse_sessions(signal_day + timedelta(days=4), LAST)[:3]
    _execute(loaded, "DELETE FROM signal_outcomes")
    _execute(loaded, "DELETE FROM market_bars WHERE session > :cut", cut=cut)
    _outcomes(loaded, FIRST, str(cut))
    early = read_table(loaded.database_url, OUTCOMES)
    assert (early["as_of"] == cut).all()
    assert (early["status"] == "pending").any()
    run_assets(loaded, ["market_bars"], str(resume), LAST)
    _outcomes(loaded, str(resume))  # completes the pending ones with the new bars
    _outcomes(loaded, str(following), LAST)
    stepwise = read_table(loaded.database_url, OUTCOMES)
    was_final = early.loc[early["status"] != "pending"].set_index("signal_id")
    pd.testing.assert_frame_equal(was_final, stepwise.set_index("signal_id").loc[was_final.index])
    # as_of aside (when each row was decided), identical to labelling everything at once
    columns = [c for c in at_once.columns if c != "as_of"]
    pd.testing.assert_frame_equal(at_once[columns], stepwise[columns])
    # re-running an early partition changes nothing that is already final
    _outcomes(loaded, FIRST)
    pd.testing.assert_frame_equal(stepwise, read_table(loaded.database_url, OUTCOMES))


def test_database_matches_the_core_replay_on_the_real_bars(loaded):
    """One real signal, replayed by hand from its bars, gives the stored row."""
    _outcomes(loaded, FIRST, LAST)
    stored = read_table(loaded.database_url, OUTCOMES + " LIMIT 400")
    row = stored[stored["status"] == "win"].iloc[0]
    signal = read_table(
        loaded.database_url, f"SELECT * FROM breakout_signals WHERE signal_id = '{row.signal_id}'"
    ).iloc[0]
    bars = read_table(
        loaded.database_url,
        f"""
        SELECT session, open, high, low, close FROM market_bars
        WHERE ticker = '{signal.ticker}' AND session > '{signal.session}'
        ORDER BY session""",
    )
    config = OutcomeConfig()
    k = bars.index[bars["session"].astype(str) == str(row.exit_session)][0]
    paths = BarPaths.from_rows(
        np.zeros(k + 1, np.int64),
        np.arange(1, k + 2),
        1,
        **{c: bars[c].to_numpy()[: k + 1] for c in ("open", "high", "low", "close")},
    )
    arrays = {
        c: np.array([signal[c]])
        for c in ("entry", "stop", "booked_target", "target_50", "target_75", "target_100", "risk")
    }
    arrays.update(side=np.array([1 if signal.side == "long" else -1]), signal_ord=np.array([0]))
    out = replay(arrays, paths, k + 1, config, labels=True)
    assert Status(out.status[0]).label == "win"
    assert out.r_multiple[0] == pytest.approx(row.r_multiple)
    assert out.entry_price[0] == pytest.approx(row.entry_price)
    assert out.bars_held[0] == row.bars_held


def test_rerunning_signals_drops_their_outcomes_until_outcomes_run_again(loaded):
    _outcomes(loaded, FIRST, LAST)
    before = read_table(loaded.database_url, OUTCOMES)
    session = str(before["session"].iloc[0])
    run_assets(loaded, ["breakout_signals"], session)
    gone = read_table(loaded.database_url, OUTCOMES)
    assert str(before["session"].iloc[0]) not in set(gone["session"].astype(str))
    _outcomes(loaded, session)
    pd.testing.assert_frame_equal(before, read_table(loaded.database_url, OUTCOMES))


def test_final_trades_carry_gross_and_net_r(loaded):
    """Every win / loss / expiry has cost_r >= 0 and net = gross - cost, computed by core.costs
    from the signal's risk and ATR; pending and unfilled rows have neither."""
    from breakout_assets.core.costs import round_trip_costs_r

    _outcomes(loaded, FIRST, LAST)
    rows = read_table(
        loaded.database_url,
        """
        SELECT o.*, s.risk, s.atr, s.side FROM signal_outcomes o
        JOIN breakout_signals s USING (signal_id) ORDER BY signal_id""",
    )
    final = rows["status"].isin(["win", "loss", "expired"])
    assert final.any() and (~final).any()
    assert rows.loc[~final, ["cost_r", "net_r_multiple"]].isna().all().all()
    done = rows[final]
    assert (done["cost_r"] > 0).all() and (done["net_r_multiple"] < done["r_multiple"]).all()
    assert ((done["r_multiple"] - done["cost_r"] - done["net_r_multiple"]).abs() < 1e-12).all()
    expected = round_trip_costs_r(
        done["entry_price"],
        done["exit_price"],
        done["risk"],
        done["atr"].astype(float),
        config=loaded.costs,
    )
    np.testing.assert_allclose(done["cost_r"], expected, rtol=1e-12)
    assert set(done["side"]) == {"long", "short"}  # both sides are costed
    # the asset reports both sums
    totals = run_totals(_outcomes(loaded, FIRST, LAST), "signal_outcomes")
    for side in ("long", "short"):
        assert totals[f"{side}_sum_net_r"] < totals[f"{side}_sum_r"]


def test_rows_final_before_costs_get_them_once_and_nothing_else_changes(loaded):
    _outcomes(loaded, FIRST, LAST)
    labelled = read_table(loaded.database_url, OUTCOMES)
    # as a database migrated to 0012 holds them: final rows without costs
    _execute(loaded, "UPDATE signal_outcomes SET cost_r = NULL, net_r_multiple = NULL")
    result = _outcomes(loaded, LAST)  # any partition records them
    final = labelled["status"].isin(["win", "loss", "expired"])
    assert run_totals(result, "signal_outcomes")["costs_recorded_for_older_final_rows"] == int(
        final.sum()
    )
    pd.testing.assert_frame_equal(labelled, read_table(loaded.database_url, OUTCOMES))
    # a cost once recorded is kept, whatever the settings say later
    dearer = load_settings(
        database_url=loaded.database_url, files_dir=SAMPLE_DIR, costs={"slippage_bps": 50}
    )
    _outcomes(dearer, FIRST, LAST)
    pd.testing.assert_frame_equal(labelled, read_table(loaded.database_url, OUTCOMES))


def test_backtest_static_bracket_costs_what_its_label_does(loaded):
    """primary_backtest's cost of a static bracket (core.costs.fills_cost_r at the reference
    size) equals the label's cost_r wherever both closed the trade at the same exit."""
    from breakout_assets.assets.backtests import primary_positions, replay_cost_r
    from breakout_assets.core.trade_management import ManagementConfig, replay_managed

    _outcomes(loaded, FIRST, LAST)
    labels = read_table(loaded.database_url, OUTCOMES).set_index("signal_id")
    engine = _engine(loaded.database_url)
    with engine.connect() as conn:
        positions = primary_positions(conn, loaded.outcomes.max_holding_sessions)
    management = ManagementConfig(outcomes=loaded.outcomes)
    compared = 0
    for _, position, path, atr in positions:
        label = labels.loc[position.order_ref]
        result = replay_managed(position, path, management, frozenset())
        if result.exit_session is None or label["status"] not in ("win", "loss", "expired"):
            continue
        if result.exit_price != pytest.approx(label["exit_price"]):
            continue
        assert replay_cost_r(position, result, atr, loaded.costs) == pytest.approx(
            label["cost_r"], rel=1e-9
        )
        compared += 1
    assert compared > 100


def test_reading_in_small_widening_chunks_gives_the_same_rows(loaded, monkeypatch):
    """Labels without a time cut read bars in widening rounds and bounded chunks; tiny rounds
    and chunks (many reads, many signals replayed as of a partial read) give identical rows."""
    from breakout_assets.assets import outcomes as outcomes_asset

    _outcomes(loaded, FIRST, LAST)
    once = read_table(loaded.database_url, OUTCOMES)
    _execute(loaded, "DELETE FROM signal_outcomes")
    monkeypatch.setattr(outcomes_asset, "FIRST_READ_SESSIONS", 2)
    monkeypatch.setattr(outcomes_asset, "READ_GROWTH", 2)
    monkeypatch.setattr(outcomes_asset, "MAX_READ_BARS", 40)
    _outcomes(loaded, FIRST, LAST)
    pd.testing.assert_frame_equal(once, read_table(loaded.database_url, OUTCOMES))

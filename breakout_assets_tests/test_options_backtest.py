"""`options_backtest` materialised against real Postgres: one hand-built signal whose spread is
recomputed by hand (with the kept py_vollib for Black-Scholes), then the bundled real sample."""

from __future__ import annotations

import math
import warnings
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from dagster import materialize

from breakout_assets.definitions import build_assets, build_resources
from breakout_assets.partitions import nyse_sessions
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import SAMPLE_DIR, new_database
from breakout_assets_tests.helpers import HAND_BUILT_SIGNAL, read_table, run_assets, seed_hand_built

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from py_vollib.black_scholes import black_scholes as vollib_bs

RESULTS = "SELECT * FROM backtest_results WHERE backtest = 'options' ORDER BY variant, side"
SIGNAL_DAY = date(2024, 1, 2)
# After the signal (close 100): up through the 100% target (108) on the sixth session.
AFTER = [101.0, 102.0, 103.0, 105.0, 107.0, 108.5, 109.0, 110.0]


def _materialize(settings):
    assets = [a for a in build_assets(settings) if a.key.to_user_string() == "options_backtest"]
    return materialize(
        assets, resources=build_resources(settings), instance=helpers.DEFAULT_INSTANCE
    )


def _hand_built_bars() -> tuple[list[tuple], list[date], list[float]]:
    """Closes alternating +-1% into the signal session's close of 100, then AFTER."""
    before = nyse_sessions(date(2023, 11, 1), SIGNAL_DAY)
    steps = [0.01 if i % 2 else -0.01 for i in range(len(before) - 1)]
    logs = np.concatenate([np.cumsum(steps[::-1])[::-1], [0.0]])
    closes = [*(100 * np.exp(logs)).tolist(), *AFTER]
    days = [*before, *nyse_sessions(SIGNAL_DAY + timedelta(days=1), date(2024, 2, 1))[: len(AFTER)]]
    bars = [(d, c, c * 1.005, c * 0.995, c) for d, c in zip(days, closes, strict=True)]
    return bars, days, closes


def _outcome_sql(confidence: float | None = None) -> list[str]:
    """A closed winning stock trade (1 R gross, 0.95 R net) and, optionally, a model score."""
    sql = [
        f"""INSERT INTO signal_outcomes (signal_id, session, status, entry_session, entry_price,
            exit_session, exit_price, r_multiple, mfe_r, mae_r, bars_held, hit_target_50,
            hit_target_75, hit_target_100, as_of, cost_r, net_r_multiple)
        VALUES ('{HAND_BUILT_SIGNAL}', '2024-01-02', 'win', '2024-01-03', 100, '2024-01-05',
            104, 1.0, 1.0, 0.0, 3, true, false, false, '2024-01-05', 0.05, 0.95)"""
    ]
    if confidence is not None:
        sql.append(
            f"""INSERT INTO signal_scores (signal_id, session, side, experiment_id, confidence,
                expected_value, decision, reason, regime)
            VALUES ('{HAND_BUILT_SIGNAL}', '2024-01-02', 'long', 'x', {confidence}, 0.1,
                'trade', 'test', '{{}}')"""
        )
    return sql


def test_one_signal_spread_r_in_debit_units_matches_a_hand_replay(settings):
    bars, days, closes = _hand_built_bars()
    seed_hand_built(settings.database_url, bars, _outcome_sql())
    config = settings.options
    result = _materialize(settings)
    rows = read_table(settings.database_url, RESULTS).set_index(["variant", "side"])

    # By hand: IV = realised vol of the last 20 log returns x 1.1, the chain priced at 100.
    at = days.index(SIGNAL_DAY)
    returns = np.diff(np.log(closes[at - 20 : at + 1]))
    iv = float(np.std(returns, ddof=1) * math.sqrt(252)) * config.iv_multiplier
    # Expiry: the first Friday on or after the session min_dte (20) sessions out; strikes are
    # listed every $2.50 above $100: 105 is nearest the 50% target 104, 107.5 the 100% one 108.
    sessions = nyse_sessions(SIGNAL_DAY, date(2024, 3, 1))
    min_expiry = sessions[config.min_dte]
    expiry = min_expiry + timedelta(days=(4 - min_expiry.weekday()) % 7)
    assert expiry == date(2024, 2, 2) and expiry in sessions

    def spread(spot: float, day: date) -> float:
        t = (expiry - day).days / 365.0
        return vollib_bs("c", spot, 105.0, t, config.rate, iv) - vollib_bs(
            "c", spot, 107.5, t, config.rate, iv
        )

    debit = spread(100.0, SIGNAL_DAY) + config.slippage
    exit_day = days[at + 6]  # the first close at or above the trigger (the 100% target, 108)
    assert closes[at + 6] == 108.5 and max(closes[at + 1 : at + 6]) < 108
    value = spread(108.5, exit_day) - config.slippage
    r = (value - debit) / debit

    spread_row = rows.loc[("debit spread", "long")]
    assert (spread_row["signals"], spread_row["trades"], spread_row["wins"]) == (1, 1, int(r > 0))
    assert spread_row["expectancy_r"] == pytest.approx(r, rel=1e-9)
    assert spread_row["sum_r"] == pytest.approx(r, rel=1e-9)
    assert spread_row["detail"]["exits"] == {"trigger": 1, "expiry": 0}
    assert spread_row["detail"]["skipped"] == 0
    assert spread_row["detail"]["confidence_from_model"] == 0  # the constant 0.5
    stock_row = rows.loc[("stock, same signals", "long")]
    assert (stock_row["trades"], stock_row["expectancy_r"]) == (1, 1.0)
    assert stock_row["expectancy_net_r"] == pytest.approx(0.95)
    assert rows.loc[("debit spread", "short")]["signals"] == 0

    meta = result.asset_materializations_for_node("options_backtest")[0].metadata
    sample = meta["trades_sample"].value
    assert "105" in sample and "107.5" in sample and "2024-02-02" in sample
    assert f"{debit:.4f}" in sample


def test_a_model_confidence_from_signal_scores_decides_the_ev(settings):
    """The scored signal's confidence is used: at 0.05 the spread's EV is negative: skipped."""
    bars, _, _ = _hand_built_bars()
    seed_hand_built(settings.database_url, bars, _outcome_sql(confidence=0.05))
    result = _materialize(settings)
    rows = read_table(settings.database_url, RESULTS).set_index(["variant", "side"])
    detail = rows.loc[("debit spread", "long")]["detail"]
    assert rows.loc[("debit spread", "long")]["trades"] == 0
    assert detail["skip_reasons"] == [["EV <= 0", 1]]
    assert detail["confidence_from_model"] == 1
    meta = result.asset_materializations_for_node("options_backtest")[0].metadata
    assert "signal_scores' model confidence where scored (1 signals)" in meta["confidence"].value


@pytest.fixture(scope="module")
def labelled_sample(pg_server, dagster_instance):
    """The bundled real sample: bars 2020-2021, signals and outcomes from June 2020."""
    settings = load_settings(database_url=new_database(pg_server), files_dir=SAMPLE_DIR)
    run_assets(
        settings, ["market_bars", "index_bars", "ticker_reference"], "2020-01-02", "2021-12-31"
    )
    run_assets(settings, ["breakout_signals", "signal_outcomes"], "2020-06-01", "2021-12-31")
    return settings


def test_sample_run_writes_every_labelled_signal_and_rerun_is_identical(labelled_sample):
    settings = labelled_sample
    result = _materialize(settings)
    first = read_table(settings.database_url, RESULTS)
    labelled = read_table(
        settings.database_url,
        """SELECT s.side, count(*) AS n, count(*) FILTER (WHERE o.status IN ('win', 'loss',
               'expired')) AS trades
           FROM signal_outcomes o JOIN breakout_signals s USING (signal_id)
           WHERE o.status <> 'pending' GROUP BY s.side""",
    ).set_index("side")
    assert len(first) == 4  # spreads and the stock trades of the same signals, per side
    spreads = first[first["variant"] == "debit spread"].set_index("side")
    stock = first[first["variant"] == "stock, same signals"].set_index("side")
    for side in ("long", "short"):
        row, detail = spreads.loc[side], spreads.loc[side]["detail"]
        assert row["signals"] == labelled.loc[side, "n"]
        accounted = (
            row["trades"] + detail["skipped"] + detail["not_entered"] + detail["open_at_data_end"]
        )
        assert accounted == row["signals"]
        assert sum(n for _, n in detail["skip_reasons"]) == detail["skipped"]
        assert row["trades"] > 10 and 0 < row["win_rate"] < 1
        assert -1.0 <= row["expectancy_r"]  # a spread never loses more than its debit
        assert stock.loc[side, "signals"] == row["trades"]
        assert stock.loc[side, "trades"] <= labelled.loc[side, "trades"]
    meta = result.asset_materializations_for_node("options_backtest")[0].metadata
    assert "mean_r_debit" in meta["summary"].value and "stock_mean_r" in meta["summary"].value
    assert "data:image/png;base64," in meta["equity_curve"].value
    assert "x iv_multiplier" in meta["approximation"].value

    _materialize(settings)
    pd.testing.assert_frame_equal(first, read_table(settings.database_url, RESULTS))

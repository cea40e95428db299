"""`option_spreads` and `option_orders` materialised for real (issue 11 items 3, 4, acceptance
"kill switch, dry-run and approval hold for spreads exactly as for brackets").

TEST's hand-built history (a quiet walk to 100 before the 2024-01-02 long signal: entry 100,
targets 104 / 106 / 108) with its score written straight into `signal_scores`; the model
option chain, the real simulated broker, real Postgres and Dagster.
"""

from __future__ import annotations

import math
from datetime import date

import pytest

from breakout_assets.approvals import decide
from breakout_assets.core.option_pricing import realised_vol
from breakout_assets.definitions import build_resources
from breakout_assets.partitions import nyse_sessions
from breakout_assets.settings import load_settings
from breakout_assets_tests.conftest import new_database
from breakout_assets_tests.helpers import HAND_BUILT_SIGNAL, read_table, seed_hand_built
from breakout_assets_tests.test_broker_safety import _execute, materialize_assets, simulated

REF = "BRK-TEST-20240102-L-SPRD"
SCORE = """INSERT INTO signal_scores (signal_id, session, side, experiment_id, confidence,
               expected_value, tier, decision, reason, regime)
           VALUES (:signal, '2024-01-02', 'long', 'test', :conf, 0.3, 'GOOD', 'trade', 'test',
                   '{}')"""
SPREADS = """SELECT order_ref, signal_id, session, option_right, expiry, long_strike,
                    short_strike, net_debit, width, contracts, max_loss, max_gain, ev,
                    close_trigger, status, reason, mode, dry_run, sent_at
             FROM option_spreads ORDER BY order_ref"""


def _bars() -> list[tuple]:
    """40 sessions of a gentle zig-zag ending at 100 on 2024-01-02, then a drift up to 109."""
    before = nyse_sessions(date(2023, 10, 30), date(2024, 1, 2))[-40:]
    bars = []
    for i, day in enumerate(before):
        close = 100.0 + (1.0 if i % 2 else -1.0) * (0 if day == before[-1] else 0.8)
        bars.append((day.isoformat(), close, close + 0.5, close - 0.5, close))
    after = nyse_sessions(date(2024, 1, 3), date(2024, 2, 29))
    for i, day in enumerate(after):
        close = 100.0 + 0.25 * (i + 1)
        bars.append((day.isoformat(), close - 0.1, close + 0.3, close - 0.3, close))
    return bars


@pytest.fixture
def options_market(pg_server, dagster_instance, tmp_path):
    def make(confidence: float = 0.6, **overrides):
        url = new_database(pg_server)
        seed_hand_built(url, _bars())
        _execute(url, SCORE, signal=HAND_BUILT_SIGNAL, conf=confidence)
        return load_settings(database_url=url, kill_switch_path=tmp_path / "KILL", **overrides)

    return make


def _plan(settings):
    materialize_assets(settings, ["option_spreads"], "2024-01-02")
    return read_table(settings.database_url, SPREADS)


def test_a_traded_signal_gets_a_call_spread_around_its_targets(options_market):
    settings = options_market()
    [spread] = _plan(settings).itertuples()
    assert (spread.order_ref, spread.signal_id) == (REF, HAND_BUILT_SIGNAL)
    assert (spread.option_right, spread.status, spread.mode) == ("C", "pending_approval", "paper")
    assert abs(spread.long_strike - 104) <= 1.0 and abs(spread.short_strike - 108) <= 1.0
    assert spread.short_strike > spread.long_strike and spread.close_trigger == 108
    calendar = nyse_sessions(date(2024, 1, 2), date(2024, 6, 28))
    assert spread.expiry >= calendar[settings.options.min_dte]  # outlives the trade
    assert 0 < spread.net_debit < spread.width == spread.short_strike - spread.long_strike
    equity = settings.simulated_starting_equity
    budget = equity * settings.options.risk_pct / 100
    assert spread.contracts == math.floor(budget / (spread.net_debit * 100) + 1e-9)
    assert spread.max_loss <= budget + 1e-6
    assert spread.max_loss + spread.max_gain == pytest.approx(spread.width * 100 * spread.contracts)
    assert spread.ev == pytest.approx(
        0.6 * (spread.width - spread.net_debit) - 0.4 * spread.net_debit
    )
    # the chain priced at the session's close with the realised vol x the multiplier
    closes = [b[4] for b in _bars() if b[0] <= "2024-01-02"]
    assert realised_vol(closes, settings.options.vol_window) > 0
    first = _plan(settings)  # a re-run gives identical rows
    assert first.drop(columns=["sent_at"]).equals(
        read_table(settings.database_url, SPREADS).drop(columns=["sent_at"])
    )


def test_a_spread_with_no_edge_is_skipped_with_its_reason(options_market):
    settings = options_market(confidence=0.05)
    [spread] = _plan(settings).itertuples()
    assert spread.status == "skipped" and spread.contracts == 0
    assert "EV" in spread.reason or "ev" in spread.reason.lower()


def test_mode_off_plans_nothing(options_market):
    settings = options_market(options={"mode": "off"})
    assert _plan(settings).empty


def test_decided_spreads_survive_a_re_run(options_market):
    settings = options_market()
    _plan(settings)
    decide(build_resources(settings)["postgres"], date(2024, 1, 2), False, "tester")
    again = _plan(settings)
    assert again["status"].tolist() == ["rejected"]


def _approved(settings):
    _plan(settings)
    decided = decide(build_resources(settings)["postgres"], date(2024, 1, 2), True, "tester")
    assert REF in decided


def test_dry_run_sends_nothing_and_keeps_the_spread_approved(options_market):
    settings = options_market()  # dry-run, the default
    _approved(settings)
    materialize_assets(settings, ["option_orders"], "2024-01-02")
    [spread] = read_table(settings.database_url, SPREADS).itertuples()
    assert (spread.status, spread.dry_run) == ("approved", True)
    assert read_table(settings.database_url, "SELECT * FROM sim_spread_orders").empty


def test_an_approved_spread_goes_out_once_as_one_combo(options_market):
    settings = options_market(dry_run=False)
    _approved(settings)
    materialize_assets(settings, ["option_orders"], "2024-01-02")
    [spread] = read_table(settings.database_url, SPREADS).itertuples()
    assert spread.status == "sent" and spread.sent_at is not None and not spread.dry_run
    sim = read_table(settings.database_url, "SELECT order_ref FROM sim_spread_orders")
    assert sim["order_ref"].tolist() == [REF]
    materialize_assets(settings, ["option_orders"], "2024-01-02")  # a re-run: nothing twice
    assert len(read_table(settings.database_url, "SELECT * FROM sim_spread_orders")) == 1


def test_unapproved_spreads_never_leave(options_market):
    settings = options_market(dry_run=False)
    _plan(settings)
    materialize_assets(settings, ["option_orders"], "2024-01-02")
    assert read_table(settings.database_url, "SELECT * FROM sim_spread_orders").empty


def test_the_kill_switch_halts_spreads(options_market, tmp_path):
    settings = options_market(dry_run=False)
    _approved(settings)
    (tmp_path / "KILL").write_text("test")
    materialize_assets(settings, ["option_orders"], "2024-01-02")
    assert read_table(settings.database_url, "SELECT * FROM sim_spread_orders").empty
    [spread] = read_table(settings.database_url, SPREADS).itertuples()
    assert spread.status == "approved"
    halts = read_table(settings.database_url, "SELECT source FROM halt_events")
    assert halts["source"].tolist() == ["option_orders"]


def test_a_stale_spread_is_expired_never_sent(options_market):
    settings = options_market(dry_run=False)
    _approved(settings)
    simulated(settings).sync(date(2024, 1, 9))
    materialize_assets(settings, ["option_orders"], "2024-01-02")
    [spread] = read_table(settings.database_url, SPREADS).itertuples()
    assert spread.status == "expired" and "2024-01-09" in spread.reason
    assert read_table(settings.database_url, "SELECT * FROM sim_spread_orders").empty


def test_live_without_a_promotion_is_refused_naming_the_command(options_market):
    settings = options_market(dry_run=False, options={"mode": "live"})
    _approved(settings)
    result = materialize_assets(settings, ["option_orders"], "2024-01-02", raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    assert "breakout options promote" in error.cause.message
    assert read_table(settings.database_url, "SELECT * FROM sim_spread_orders").empty


def test_a_live_chain_refuses_to_plan_a_past_session(options_market, monkeypatch):
    """Polygon's chain snapshot is today's: pricing 2024-01-02 with it would be wrong, so the
    run fails and nothing is written (the model chain backfills past sessions)."""
    monkeypatch.setenv("BREAKOUT_POLYGON_API_KEY", "test-key")
    settings = options_market(options={"chain_source": "polygon"})
    simulated(settings).sync(date(2024, 1, 9))
    result = materialize_assets(settings, ["option_spreads"], "2024-01-02", raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    assert "cannot price past sessions" in error.cause.message
    assert read_table(settings.database_url, SPREADS).empty


def test_a_full_open_positions_cap_skips_the_spread(options_market):
    """The spreads share the book's caps: with every position slot taken, none is planned."""
    settings = options_market(sizing={"max_open_positions": 1})
    _execute(
        settings.database_url,
        """INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side, quantity, entry,
               stop, take_profit, risk_dollars, tier, confidence, expected_value, status, reason)
           VALUES ('BRK-OTHER-20240102-L', 'OTHER', '2024-01-02', 'OTHER', 'long', 10, 50, 48,
                   52, 20, 'GOOD', 0.6, 0.2, 'pending_approval', 'test')""",
    )
    [spread] = _plan(settings).itertuples()
    assert spread.status == "skipped" and spread.reason.startswith("max_open_positions")

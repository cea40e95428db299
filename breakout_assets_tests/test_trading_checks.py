"""The asset checks on the trading tables: each passes on good rows and fails on bad rows written
straight into the database, executed by Dagster as the UI's "Execute checks" would."""

from __future__ import annotations

import pytest
from dagster import AssetSelection, Definitions, define_asset_job
from sqlalchemy import create_engine, text

from breakout_assets.definitions import build_assets, build_resources
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.settings import load_settings
from breakout_assets.trading_checks import build_trading_checks
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import new_database
from breakout_assets_tests.helpers import HAND_BUILT_SIGNAL, seed_hand_built

REF = "BRK-TEST-20240102-L"
BARS = [("2024-01-02", 99.0, 100.2, 98.8, 100.0), ("2024-01-03", 100.5, 101.0, 99.8, 100.6)]


def _plan(ref=REF, quantity=100, risk=400.0, status="sent", tier="GOOD", session="2024-01-02"):
    # entry 100, stop 96: 100 shares risk $400 (GOOD: 1% of $100,000 = $1,000), $10,000 notional
    return f"""INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side, quantity,
                   entry, stop, take_profit, risk_dollars, tier, status, reason)
               VALUES ('{ref}', '{ref}', '{session}', 'TEST', 'long', {quantity}, 100, 96, 104,
                       {risk}, '{tier}', '{status}', 'test')"""


def _order(ref=REF, dry_run=False, status="submitted", ids='["1"]'):
    return f"""INSERT INTO broker_orders (order_ref, session, broker, dry_run, broker_order_ids,
                   status, sent_at, bracket)
               VALUES ('{ref}', '2024-01-02', 'simulated', {dry_run}, '{ids}', '{status}', now(),
                       '{{}}')"""


def _update(session, action, old, new, dry_run=False, status="applied", ref=REF):
    return f"""INSERT INTO stop_updates (order_ref, session, action, old_stop, new_stop,
                   old_quantity, new_quantity, reason, dry_run, status)
               VALUES ('{ref}', '{session}', '{action}', {old}, {new}, 100, 100, 'test',
                       {dry_run}, '{status}')"""


FINAL = f"""INSERT INTO signal_outcomes (signal_id, session, status, entry_session, entry_price,
                exit_session, exit_price, r_multiple, bars_held, hit_target_50, hit_target_75,
                hit_target_100, as_of)
            VALUES ('{HAND_BUILT_SIGNAL}', '2024-01-02', 'win', '2024-01-03', 100, '2024-01-05',
                    104, 1.0, 3, true, false, false, '2024-01-05')"""


@pytest.fixture
def settings(pg_server, tmp_path):
    url = new_database(pg_server)
    seed_hand_built(url, BARS)
    return load_settings(database_url=url, kill_switch_path=tmp_path / "K")


def execute(settings, *statements) -> dict[tuple[str, str], bool]:
    """Write `statements`, run every trading check in one Dagster run, return pass/fail by
    (asset, check)."""
    engine = create_engine(with_driver(settings.database_url, "psycopg"))
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()
    checks = build_trading_checks(settings)
    defs = Definitions(
        assets=build_assets(settings),
        asset_checks=checks,
        resources=build_resources(settings),
        jobs=[define_asset_job("checks", AssetSelection.checks(*checks))],
    )
    result = defs.resolve_job_def("checks").execute_in_process(
        instance=helpers.DEFAULT_INSTANCE, raise_on_error=False
    )
    return {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }


def failed(results: dict[tuple[str, str], bool]) -> set[tuple[str, str]]:
    return {key for key, passed in results.items() if not passed}


def test_clean_records_pass_every_check(settings):
    results = execute(
        settings,
        _plan(),
        _order(),
        FINAL,
        _update("2024-01-04", "breakeven", 96, 100),
        _update("2024-01-05", "trail", 100, 101),
    )
    assert len(results) == 12 and failed(results) == set()


def test_an_add_on_sent_twice_fails_no_order_ref_twice(settings):
    results = execute(
        settings,
        _plan(),
        _order(),
        _update("2024-01-04", "add_on", 96, 96),
        _update("2024-01-05", "add_on", 96, 96),
    )
    assert failed(results) == {("stop_updates", "no_order_ref_twice")}


def test_one_broker_order_id_under_two_refs_fails_no_order_ref_twice(settings):
    results = execute(settings, _order(), _order(ref="BRK-OTHER-20240102-L"))
    assert failed(results) == {("broker_orders", "no_order_ref_twice")}


def test_a_dry_run_marked_sent_fails(settings):
    results = execute(
        settings,
        _plan(status="sent"),
        _order(dry_run=True, status="submitted"),
        _update("2024-01-04", "breakeven", 96, 100, dry_run=True),
    )
    assert failed(results) == {
        (table, "no_dry_run_marked_sent")
        for table in ("broker_orders", "trade_plan", "stop_updates")
    }


def _spread(ref: str = "BRK-TEST-20240102-L-SPRD", **answer) -> str:
    """An approved call spread, with the broker's answer columns as given."""
    columns = {
        "broker": "'simulated'",
        "dry_run": "false",
        "status": "'sent'",
        "broker_order_ids": "'[\"S1\"]'",
        "sent_at": "now()",
        **answer,
    }
    return f"""INSERT INTO option_spreads (order_ref, signal_id, session, ticker, side,
        option_right, expiry, long_strike, short_strike, net_debit, width, contracts, max_loss,
        max_gain, ev, confidence, close_trigger, reason, mode, decided_by, decided_at,
        {", ".join(columns)})
        VALUES ('{ref}', '{ref}', '2024-01-02', 'TEST', 'long', 'C', '2024-02-16', 104, 108,
        1.2, 4, 8, 960, 2240, 0.5, 0.6, 108, 'test', 'paper', 'test', now(),
        {", ".join(columns.values())})"""


def test_a_dry_run_spread_marked_sent_fails(settings):
    assert failed(execute(settings, _spread())) == set()
    assert failed(execute(settings, _spread(ref="X-SPRD", dry_run="true"))) == {
        ("option_orders", "no_dry_run_marked_sent"),
        ("option_orders", "no_order_ref_twice"),  # and S1 is now under two refs
    }


def test_a_plan_beyond_its_caps_fails(settings):
    # 300 shares: $1,200 at risk (over GOOD's $1,000) and $30,000 notional (over 20%)
    results = execute(settings, _plan(quantity=300, risk=1200.0, status="pending_approval"))
    assert failed(results) == {("trade_plan", "plans_within_caps")}


def test_a_session_over_its_open_risk_fails(settings):
    # eight plans of 200 shares, each within its own caps ($800 at risk, $20,000 notional):
    # $6,400 at risk together, over 6% of $100,000
    plans = [
        _plan(ref=f"BRK-T{i}-20240102-L", quantity=200, risk=800.0, status="approved")
        for i in range(8)
    ]
    assert failed(execute(settings, *plans)) == {("trade_plan", "plans_within_caps")}
    assert (
        failed(
            execute(
                settings,
                "DELETE FROM trade_plan WHERE order_ref = 'BRK-T0-20240102-L'",
                "UPDATE trade_plan SET status = 'rejected' WHERE order_ref = 'BRK-T1-20240102-L'",
            )
        )
        == set()
    )


def test_too_many_positions_in_a_session_fails(settings):
    plans = [_plan(ref=f"BRK-T{i}-20240102-L", status="approved") for i in range(11)]
    assert failed(execute(settings, *plans)) == {("trade_plan", "plans_within_caps")}


def test_a_rewritten_final_fails_and_a_redefined_signal_does_not(settings):
    assert failed(execute(settings, FINAL)) == set()
    results = execute(
        settings, "UPDATE signal_outcomes SET status = 'loss', r_multiple = -1.0, exit_price = 96"
    )
    assert failed(results) == {("signal_outcomes", "finals_never_rewritten")}
    # the same final written back: nothing rewritten any more
    assert (
        failed(
            execute(
                settings,
                "UPDATE signal_outcomes SET status = 'win', r_multiple = 1.0, exit_price = 104",
            )
        )
        == set()
    )
    # a final deleted and written again with another result is a rewrite too
    results = execute(settings, "DELETE FROM signal_outcomes", FINAL.replace("1.0, 3", "1.5, 3"))
    assert failed(results) == {("signal_outcomes", "finals_never_rewritten")}
    # new scanner settings redefine the signal (another stop): its final is a new one
    results = execute(
        settings,
        "DELETE FROM signal_outcomes",
        "UPDATE breakout_signals SET stop = 95",
        FINAL.replace("1.0, 3", "0.8, 3"),
    )
    assert failed(results) == set()


def test_a_loosened_stop_fails(settings):
    results = execute(
        settings,
        _plan(),
        _order(),
        _update("2024-01-04", "breakeven", 96, 100),
        _update("2024-01-05", "trail", 100, 98),
    )
    assert failed(results) == {("stop_updates", "stops_never_loosened")}


def test_a_stop_moved_from_a_looser_level_than_in_force_fails(settings):
    # each change tightens its own old stop, but the second starts below the stop in force
    results = execute(
        settings,
        _plan(),
        _order(),
        _update("2024-01-04", "breakeven", 96, 100),
        _update("2024-01-05", "trail", 97, 99),
    )
    assert failed(results) == {("stop_updates", "stops_never_loosened")}

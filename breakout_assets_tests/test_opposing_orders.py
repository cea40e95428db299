"""`fade_plan` and `opposing_orders` on hand-built bars against the simulated broker, real
Postgres and Dagster.

A long primary scored 0.40 (an opposing candidate): entry 100, stop 96, booked target = 50%
target 104 (t75 106, t100 108). The fade is a short: stop at the 50% line 104, take-profit at
the primary's stop 96; run level and 75% limit at 103. The run prints 103.5 on 01-03, the next
bar closes below that bar's low on 01-04: the alert arms there at its low, 100.8.
"""

from __future__ import annotations

from datetime import date

import pytest
from dagster import materialize

from breakout_assets.approvals import decide
from breakout_assets.definitions import build_assets, build_resources
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import new_database
from breakout_assets_tests.helpers import read_table, seed_hand_built

REF = "OPP-TEST-20240102-S"
RUN = [  # session, open, high, low, close
    ("2024-01-02", 99.0, 100.2, 98.8, 100.0),
    ("2024-01-03", 101.0, 103.5, 101.5, 103.0),
]
ALERT = ("2024-01-04", 102.5, 102.8, 100.8, 101.0)
AFTER = [("2024-01-05", 100.9, 101.2, 100.1, 100.4), ("2024-01-08", 100.3, 100.6, 98.0, 98.5)]
FADES = "SELECT * FROM opposing_orders ORDER BY order_ref"
SCORE = """INSERT INTO signal_scores (signal_id, session, side, experiment_id, confidence,
                expected_value, tier, decision, reason, regime)
            VALUES ('TEST:2024-01-02:long', '2024-01-02', 'long', 'long-test', 0.40, -0.2,
                NULL, 'opposing', 'test', '{}')"""


def _seed(url: str, bars) -> None:
    seed_hand_built(url, bars, [SCORE])


@pytest.fixture
def market(pg_server, tmp_path):
    def make(bars, **overrides):
        url = new_database(pg_server)
        _seed(url, bars)
        return load_settings(database_url=url, kill_switch_path=tmp_path / "K", **overrides)

    return make


def fade(settings, session):
    """The fade's plan, then its orders, as the daily pipeline and the broker job run them."""
    assets = [
        a
        for a in build_assets(settings)
        if a.key.to_user_string() in ("fade_plan", "opposing_orders")
    ]
    return materialize(
        assets,
        resources=build_resources(settings),
        partition_key=session,
        instance=helpers.DEFAULT_INSTANCE,
    )


def test_fade_is_planned_on_the_session_its_alert_arms(market):
    settings = market([*RUN, ALERT])
    fade(settings, "2024-01-03")
    assert read_table(settings.database_url, FADES).empty  # the run, but no alert yet
    fade(settings, "2024-01-04")
    [plan] = read_table(settings.database_url, FADES).itertuples()
    assert (plan.order_ref, plan.side, plan.status) == (REF, "short", "pending_approval")
    assert (plan.alert_level, plan.limit_level, plan.stop, plan.take_profit) == (
        100.8,
        103.0,
        104.0,
        96.0,
    )
    risk = 0.005 * settings.simulated_starting_equity
    assert plan.alert_quantity == int(risk // 3.2) and plan.limit_quantity == int(risk // 1.0)
    before = read_table(settings.database_url, FADES)
    fade(settings, "2024-01-04")  # a re-run plans nothing new
    assert read_table(settings.database_url, FADES).equals(before)


def test_no_alert_no_trade(market):
    flat = ("2024-01-04", 103.0, 103.8, 102.2, 103.6)  # the run goes on: no reversal
    settings = market([*RUN, flat])
    fade(settings, "2024-01-04")
    assert read_table(settings.database_url, FADES).empty


def test_approved_fade_goes_out_once_as_two_oca_legs_and_only_one_fills(market):
    settings = market([*RUN, ALERT, *AFTER], dry_run=False)
    fade(settings, "2024-01-04")
    fade(settings, "2024-01-04")  # pending approval: nothing sent
    assert read_table(settings.database_url, "SELECT * FROM sim_orders").empty
    decide(build_resources(settings)["postgres"], date(2024, 1, 4), True, "test")
    fade(settings, "2024-01-04")
    sim = read_table(settings.database_url, "SELECT * FROM sim_orders ORDER BY order_ref")
    assert sim["order_ref"].tolist() == [f"{REF}-ALT", f"{REF}-LIM"]
    assert set(sim["oca_group"]) == {REF} and sim["entry_type"].tolist() == ["stop", "limit"]
    assert read_table(settings.database_url, FADES)["status"].tolist() == ["sent"]
    fade(settings, "2024-01-04")  # sent: never again
    assert len(read_table(settings.database_url, "SELECT * FROM sim_orders")) == 2
    broker = build_resources(settings)["broker"].build()
    broker.sync(date(2024, 1, 8))
    sim = read_table(
        settings.database_url, "SELECT order_ref, status FROM sim_orders ORDER BY order_ref"
    )
    assert sim["status"].tolist() == ["filled", "cancelled"]  # the alert leg filled; OCA
    fills = read_table(settings.database_url, "SELECT * FROM sim_fills ORDER BY session")
    assert fills["order_ref"].unique().tolist() == [f"{REF}-ALT"]


def test_dry_run_and_kill_switch_send_nothing(market):
    settings = market([*RUN, ALERT])
    fade(settings, "2024-01-04")
    decide(build_resources(settings)["postgres"], date(2024, 1, 4), True, "test")
    fade(settings, "2024-01-04")  # dry-run (the default)
    [plan] = read_table(settings.database_url, FADES).itertuples()
    assert plan.status == "approved" and plan.dry_run
    live = settings.model_copy(update={"dry_run": False})
    live.kill_switch_path.write_text("{}")
    fade(live, "2024-01-04")
    assert read_table(settings.database_url, "SELECT * FROM sim_orders").empty
    assert read_table(settings.database_url, FADES)["status"].tolist() == ["approved"]


def test_a_filled_fade_is_managed_by_the_opposing_rules(market):
    settings = market([*RUN, ALERT, *AFTER], dry_run=False)
    fade(settings, "2024-01-04")
    decide(build_resources(settings)["postgres"], date(2024, 1, 4), True, "test")
    fade(settings, "2024-01-04")
    [stop_updates] = [a for a in build_assets(settings) if a.key.to_user_string() == "stop_updates"]
    for session in ("2024-01-05", "2024-01-08"):
        result = materialize(
            [stop_updates],
            resources=build_resources(settings),
            partition_key=session,
            instance=helpers.DEFAULT_INSTANCE,
        )
        metadata = result.asset_materializations_for_node("stop_updates")[0].metadata
        assert metadata["unknown_positions"].value == []  # the fade leg is ours
    updates = read_table(settings.database_url, "SELECT * FROM stop_updates ORDER BY action")
    # short from 100.8, R = 3.2: the 98.0 low is +0.875R, so the stop comes down to breakeven
    breakeven = updates[updates["action"] == "breakeven"].iloc[0]
    assert (breakeven.order_ref, breakeven.old_stop, breakeven.new_stop) == (
        f"{REF}-ALT",
        104.0,
        100.8,
    )
    stop = read_table(
        settings.database_url, f"SELECT stop FROM sim_orders WHERE order_ref = '{REF}-ALT'"
    )["stop"][0]
    assert stop <= 100.8

"""`stop_updates` against the simulated broker on hand-built bars, real Postgres and Dagster.

One long: signal on 2024-01-02 (entry 100, stop 96, R = 4, targets 104 / 106 / 108). It fills
at 100 on the 3rd, reaches +0.5R on the 4th (stop to breakeven at that close) and holds into the
third session on the 5th (the day-2 add-on, take-profit to the 100% target).
"""

from __future__ import annotations

import pytest
from dagster import materialize
from sqlalchemy import create_engine, text

from breakout_assets.definitions import build_assets, build_resources
from breakout_assets.resources.broker.base import BracketOrder
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import new_database
from breakout_assets_tests.helpers import read_table, seed_hand_built

REF = "BRK-TEST-20240102-L"
BARS = [  # session, open, high, low, close
    ("2024-01-02", 99.0, 100.2, 98.8, 100.0),
    ("2024-01-03", 100.5, 101.0, 99.8, 100.6),
    ("2024-01-04", 100.7, 102.5, 100.4, 102.2),
    ("2024-01-05", 102.3, 103.4, 101.9, 103.0),
    ("2024-01-08", 103.1, 103.9, 102.6, 103.5),
]
UPDATES = "SELECT * FROM stop_updates ORDER BY session, action"
PLAN = f"""INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side, quantity, entry,
                stop, take_profit, risk_dollars, tier, status, reason)
            VALUES ({REF!r}, 'TEST:2024-01-02:long', '2024-01-02', 'TEST', 'long', 100, 100, 96,
                104, 400, 'GOOD', 'sent', 'test')"""


def _seed(url: str) -> None:
    seed_hand_built(url, BARS, [PLAN])


@pytest.fixture
def live(pg_server, tmp_path):
    url = new_database(pg_server)
    _seed(url)
    settings = load_settings(database_url=url, dry_run=False, kill_switch_path=tmp_path / "K")
    broker = build_resources(settings)["broker"].build()
    from datetime import date

    broker.place_bracket(
        BracketOrder(REF, "TEST", "long", 100, 100.0, 96.0, 104.0, date(2024, 1, 2))
    )
    return settings


def manage(settings, session):
    [asset] = [a for a in build_assets(settings) if a.key.to_user_string() == "stop_updates"]
    return materialize(
        [asset],
        resources=build_resources(settings),
        partition_key=session,
        instance=helpers.DEFAULT_INSTANCE,
    )


def _sim(settings, sql):
    return read_table(settings.database_url, sql)


def test_breakeven_then_add_on_reach_the_simulated_bracket_and_reruns_change_nothing(live):
    manage(live, "2024-01-03")  # filled today: nothing to do yet
    assert _sim(live, UPDATES).empty
    manage(live, "2024-01-04")
    updates = _sim(live, UPDATES)
    assert updates[["action", "old_stop", "new_stop", "status"]].values.tolist() == [
        ["breakeven", 96.0, 100.0, "applied"]
    ]
    assert _sim(live, f"SELECT stop FROM sim_orders WHERE order_ref = '{REF}'")["stop"][0] == 100.0
    manage(live, "2024-01-05")
    updates = _sim(live, UPDATES)
    add_on = updates[updates["action"] == "add_on"].iloc[0]
    assert add_on.new_quantity > add_on.old_quantity == 100 and add_on.price == 103.0
    added = _sim(live, f"SELECT * FROM sim_orders WHERE order_ref = '{REF}-ADD'")
    assert len(added) == 1 and added["quantity"][0] == add_on.new_quantity - 100
    tp = updates[updates["action"] == "take_profit"]
    assert len(tp) == 1 and tp["new_take_profit"].iloc[0] == 108.0
    assert (
        _sim(live, f"SELECT take_profit FROM sim_orders WHERE order_ref = '{REF}'")["take_profit"][
            0
        ]
        == 108.0
    )
    before = (_sim(live, UPDATES), _sim(live, "SELECT * FROM sim_orders ORDER BY order_ref"))
    manage(live, "2024-01-05")  # a re-run changes nothing
    after = (_sim(live, UPDATES), _sim(live, "SELECT * FROM sim_orders ORDER BY order_ref"))
    for b, a in zip(before, after, strict=True):
        assert b.drop(columns=["recorded_at", "updated_at"], errors="ignore").equals(
            a.drop(columns=["recorded_at", "updated_at"], errors="ignore")
        )


def test_dry_run_records_and_touches_nothing(live):
    dry = live.model_copy(update={"dry_run": True})
    manage(dry, "2024-01-03")
    manage(dry, "2024-01-04")
    updates = _sim(dry, UPDATES)
    assert updates["status"].tolist() == ["dry_run"] and updates["dry_run"].all()
    assert _sim(dry, f"SELECT stop FROM sim_orders WHERE order_ref = '{REF}'")["stop"][0] == 96.0


def test_kill_switch_halts_management_and_a_later_run_applies_it(live):
    manage(live, "2024-01-03")
    live.kill_switch_path.write_text("{}")
    manage(live, "2024-01-04")
    assert _sim(live, UPDATES)["status"].tolist() == ["halted"]
    assert _sim(live, f"SELECT stop FROM sim_orders WHERE order_ref = '{REF}'")["stop"][0] == 96.0
    live.kill_switch_path.unlink()
    manage(live, "2024-01-04")
    assert _sim(live, UPDATES)["status"].tolist() == ["applied"]
    assert _sim(live, f"SELECT stop FROM sim_orders WHERE order_ref = '{REF}'")["stop"][0] == 100.0


def test_unknown_positions_are_reported_not_adopted(live):
    engine = create_engine(with_driver(live.database_url, "psycopg"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE trade_plan SET status = 'approved'"))  # we forget the plan
    engine.dispose()
    manage(live, "2024-01-03")
    result = manage(live, "2024-01-04")
    metadata = result.asset_materializations_for_node("stop_updates")[0].metadata
    assert metadata["unknown_positions"].value == [REF]
    assert _sim(live, UPDATES).empty

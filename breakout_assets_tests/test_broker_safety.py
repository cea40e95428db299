"""No stale or orphaned order reaches a broker (issue 14, items 1, 2 and 4).

Hand-built bars of TEST (tests/helpers.seed_hand_built) and plans written straight into
`trade_plan` / `opposing_orders`, real Postgres and Dagster. The simulated broker is real; IBKR
runs its real adapter against `FakeIB` of test_ibkr_broker.py, the only mocked part (an IB
Gateway cannot run here), with the adapter's wall clock set by the test.
"""

from __future__ import annotations

import os
from datetime import date, datetime

import pandas as pd
import pytest
from dagster import DagsterRun, DagsterRunStatus, materialize
from sqlalchemy import create_engine, text

from breakout_assets.definitions import build_assets, build_definitions, build_resources
from breakout_assets.partitions import nyse_calendar
from breakout_assets.resources.broker import IbkrBrokerResource, ibkr
from breakout_assets.resources.broker.simulated import SimulatedBroker
from breakout_assets.resources.kill_switch import KillSwitch
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.run_guard import RunGuard
from breakout_assets.sensors import BROKER_TAG
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests import test_ibkr_broker as fake_ib
from breakout_assets_tests.conftest import new_database
from breakout_assets_tests.helpers import HAND_BUILT_SIGNAL, read_table, seed_hand_built

REF = "BRK-TEST-20240102-L"
BARS = [  # session, open, high, low, close: the 01-02 signal (entry 100, stop 96, booked 104)
    ("2024-01-02", 99.0, 100.2, 98.8, 100.0),
    ("2024-01-03", 100.5, 101.0, 99.5, 100.8),  # the entry limit 100 fills
    ("2024-01-04", 100.8, 101.4, 100.4, 101.2),
    ("2024-01-05", 101.2, 101.6, 100.9, 101.4),  # day 2: the close holds above the fill
    ("2024-01-08", 101.4, 101.7, 101.0, 101.3),
    ("2024-01-09", 101.3, 101.8, 101.1, 101.5),
    ("2024-01-10", 101.5, 101.9, 101.2, 101.6),
]
PLAN = """INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side, quantity, entry,
              stop, take_profit, risk_dollars, tier, confidence, expected_value, status, reason,
              decided_by, decided_at)
          VALUES (:ref, :signal, :session, 'TEST', 'long', 10, 100, 96, 104, 40, 'GOOD', 0.6,
                  0.2, 'approved', 'test', 'test', now())"""
FADE = """INSERT INTO opposing_orders (order_ref, signal_id, session, signal_session, ticker, side,
              confidence, alert_level, alert_quantity, limit_level, limit_quantity, stop,
              take_profit, risk_dollars, valid_sessions, status, reason, decided_by, decided_at)
          VALUES ('OPP-TEST-20240102-S', 'TEST:2024-01-02:long', '2024-01-04', '2024-01-02',
                  'TEST', 'short', 0.4, 100.8, 10, 103, 10, 104, 96, 32, 1, 'approved', 'test',
                  'test', now())"""
ORDERS = "SELECT order_ref, status, dry_run, error FROM broker_orders ORDER BY order_ref"


def _execute(url: str, sql: str, **params) -> None:
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.begin() as conn:
        conn.execute(text(sql), params)
    engine.dispose()


@pytest.fixture
def market(pg_server, dagster_instance, tmp_path):
    """Settings on a fresh database holding TEST's bars and the 01-02 signal."""

    def make(**overrides):
        url = new_database(pg_server)
        seed_hand_built(url, BARS)
        return load_settings(database_url=url, kill_switch_path=tmp_path / "KILL", **overrides)

    return make


def approve_plans(url: str, session: str = "2024-01-02", count: int = 1) -> list[str]:
    """`count` approved plans of TEST on `session` (distinct refs and signal ids)."""
    refs = [REF if i == 0 else f"{REF}-{i}" for i in range(count)]
    for i, ref in enumerate(refs):  # the first one is the hand-built signal's own plan
        _execute(
            url,
            PLAN,
            ref=ref,
            signal=HAND_BUILT_SIGNAL if i == 0 else f"{REF}-{i}",
            session=session,
        )
    return refs


def materialize_assets(settings, names, partition, resources=None, raise_on_error=True):
    assets = [a for a in build_assets(settings) if a.key.to_user_string() in names]
    return materialize(
        assets,
        resources=resources or build_resources(settings),
        partition_key=partition,
        instance=helpers.DEFAULT_INSTANCE,
        raise_on_error=raise_on_error,
    )


def simulated(settings) -> SimulatedBroker:
    return build_resources(settings)["broker"].build()


# -- 1. stale plans: simulated broker --------------------------------------------------------


def test_stale_plan_is_expired_never_sent_to_the_simulated_broker(market):
    """The account stands at 01-09: the 01-02 plan's one-session entry window passed long
    ago. Before: the simulator refused it as an order (a rejected sim order, the plan left
    approved and retried by every run)."""
    settings = market(dry_run=False)
    approve_plans(settings.database_url)
    simulated(settings).sync(date(2024, 1, 9))
    materialize_assets(settings, ["broker_orders"], "2024-01-02")
    [order] = read_table(settings.database_url, ORDERS).itertuples()
    assert (order.order_ref, order.status, order.dry_run) == (REF, "expired", False)
    assert "2024-01-09" in order.error and "never sent" in order.error
    assert read_table(settings.database_url, "SELECT * FROM sim_orders").empty
    plan = read_table(settings.database_url, "SELECT status FROM trade_plan")
    assert plan["status"].tolist() == ["expired"]
    materialize_assets(settings, ["broker_orders"], "2024-01-02")  # never retried
    assert read_table(settings.database_url, "SELECT * FROM sim_orders").empty
    assert read_table(settings.database_url, ORDERS)["status"].tolist() == ["expired"]


def test_current_plan_goes_out_to_the_simulated_broker(market):
    settings = market(dry_run=False)
    approve_plans(settings.database_url)
    materialize_assets(settings, ["broker_orders"], "2024-01-02")
    assert read_table(settings.database_url, ORDERS)["status"].tolist() == ["submitted"]
    sim = read_table(settings.database_url, "SELECT order_ref, status FROM sim_orders")
    assert sim["order_ref"].tolist() == [REF]


def test_stale_fade_is_expired_never_sent(market):
    """A fade approved on 01-04 whose one-session window passed (the account is at 01-09).
    Before: both legs went to the simulator (refused there) and the fade was marked sent."""
    settings = market(dry_run=False)
    _execute(settings.database_url, FADE)
    simulated(settings).sync(date(2024, 1, 9))
    materialize_assets(settings, ["opposing_orders"], "2024-01-04")
    fade = read_table(settings.database_url, "SELECT * FROM opposing_orders").iloc[0]
    assert fade["status"] == "expired" and "never sent" in fade["error"]
    assert read_table(settings.database_url, "SELECT * FROM sim_orders").empty


def _filled_position(settings) -> None:
    """The 01-02 plan sent and filled on 01-03 (limit 100), as broker_orders leaves it."""
    approve_plans(settings.database_url)
    materialize_assets(settings, ["broker_orders"], "2024-01-02")
    simulated(settings).sync(date(2024, 1, 4))
    assert simulated(settings).positions()[0].order_ref == REF


def test_stale_add_on_is_expired_never_sent(market):
    """Day 2 (01-05) holds above the fill: an add-on. Managed for 01-05 when the account
    already stands at 01-10, the add-on's window has passed. Before: it was sent (the simulator
    refused it) and recorded as applied."""
    settings = market(dry_run=False)
    _filled_position(settings)
    simulated(settings).sync(date(2024, 1, 10))
    materialize_assets(settings, ["stop_updates"], "2024-01-05")
    updates = read_table(
        settings.database_url,
        "SELECT action, status, error FROM stop_updates WHERE action = 'add_on'",
    )
    assert updates["status"].tolist() == ["expired"]
    assert "never sent" in updates["error"][0]
    refs = read_table(settings.database_url, "SELECT order_ref FROM sim_orders")["order_ref"]
    assert refs.tolist() == [REF]  # no add-on order


def test_current_add_on_goes_out(market):
    settings = market(dry_run=False)
    _filled_position(settings)
    materialize_assets(settings, ["stop_updates"], "2024-01-05")
    updates = read_table(
        settings.database_url, "SELECT status FROM stop_updates WHERE action = 'add_on'"
    )
    assert updates["status"].tolist() == ["applied"]
    refs = read_table(settings.database_url, "SELECT order_ref FROM sim_orders ORDER BY seq")
    assert refs["order_ref"].tolist() == [REF, f"{REF}-ADD"]


# -- 1. stale plans: IBKR ---------------------------------------------------------------------


class ClockedIbkr(IbkrBrokerResource):
    """IBKR's real adapter on FakeIB, its wall clock set by the test."""

    def build(self):
        return ibkr.IbkrBroker(
            "127.0.0.1",
            4002,
            7,
            fake_ib.ACCOUNT,
            connect_timeout_s=1,
            request_timeout_s=0.2,
            ib_factory=lambda: FAKES[0],
            clock=lambda: FAKES[1],
        )


FAKES: list = []


def after_close(session: str) -> datetime:
    close = nyse_calendar().session_close(pd.Timestamp(session))
    return (close + pd.Timedelta(hours=1)).to_pydatetime()


@pytest.fixture
def ibkr_resources(monkeypatch):
    monkeypatch.setattr(
        fake_ib.ib_async.IB, "connect", lambda *a, **k: pytest.fail("real IB connection attempted")
    )
    monkeypatch.setitem(fake_ib.CONIDS, "TEST", 424242)

    def make(settings, now: datetime):
        fake = fake_ib.FakeIB()
        fake.min_ticks["TEST"] = 0.01
        FAKES[:] = [fake, now]
        resources = build_resources(settings)
        resources["broker"] = ClockedIbkr(account=fake_ib.ACCOUNT)
        return fake, resources

    return make


def test_stale_plan_never_reaches_ibkr(market, ibkr_resources):
    """The issue's probe: an approved, never-sent plan of an old session, IBKR, dry-run off.
    Before: placed at IBKR as a DAY bracket at the old prices."""
    settings = market(dry_run=False)
    approve_plans(settings.database_url)
    fake, resources = ibkr_resources(settings, after_close("2024-01-10"))
    materialize_assets(settings, ["broker_orders"], "2024-01-02", resources=resources)
    assert fake.placed == []
    [order] = read_table(settings.database_url, ORDERS).itertuples()
    assert order.status == "expired" and "2024-01-10" in order.error
    assert (
        read_table(settings.database_url, "SELECT status FROM trade_plan")["status"][0] == "expired"
    )


def test_current_plan_reaches_ibkr_until_the_next_close(market, ibkr_resources):
    """The plan of 01-02 goes out that evening, before the open of 01-03 and during it; after
    the close of 01-03 its window has passed."""
    for now, placed in (
        (after_close("2024-01-02"), 3),
        (datetime.fromisoformat("2024-01-03T15:00:00+00:00"), 3),
        (after_close("2024-01-03"), 0),
    ):
        settings = market(dry_run=False)
        approve_plans(settings.database_url)
        fake, resources = ibkr_resources(settings, now)
        materialize_assets(settings, ["broker_orders"], "2024-01-02", resources=resources)
        assert len(fake.placed) == placed, now


def test_plan_before_its_session_closed_waits(market, ibkr_resources):
    """During the signal's own session its levels are not final: not sent, not expired."""
    settings = market(dry_run=False)
    approve_plans(settings.database_url)
    fake, resources = ibkr_resources(settings, datetime.fromisoformat("2024-01-02T15:00:00+00:00"))
    result = materialize_assets(settings, ["broker_orders"], "2024-01-02", resources=resources)
    assert fake.placed == []
    assert read_table(settings.database_url, ORDERS).empty
    assert (
        read_table(settings.database_url, "SELECT status FROM trade_plan")["status"][0]
        == "approved"
    )
    metadata = result.asset_materializations_for_node("broker_orders")[0].metadata
    assert metadata["by_status"].value == {"not_yet": 1}


def test_dry_run_expires_stale_plans_so_they_do_not_accumulate(market, ibkr_resources):
    """Dry-run sends nothing but still expires what is stale: the plan of the run's own
    session, and an approved plan of an earlier session that no run covers any more. Before:
    both stayed approved for ever, ready to go out the day dry-run is switched off."""
    settings = market()  # dry-run, the default
    approve_plans(settings.database_url)
    _execute(
        settings.database_url,
        PLAN,
        ref="BRK-TEST-20240103-L",
        signal="TEST:2024-01-03:long",
        session="2024-01-03",
    )
    fake, resources = ibkr_resources(settings, after_close("2024-01-10"))
    materialize_assets(settings, ["broker_orders"], "2024-01-03", resources=resources)
    assert fake.placed == [] and fake.connects == []  # dry-run never talks to IBKR
    orders = read_table(settings.database_url, ORDERS)
    assert orders["order_ref"].tolist() == [REF, "BRK-TEST-20240103-L"]
    assert orders["status"].tolist() == ["expired", "expired"] and orders["dry_run"].all()
    plans = read_table(settings.database_url, "SELECT status FROM trade_plan")
    assert set(plans["status"]) == {"expired"}


def test_dry_run_records_a_current_plan_and_keeps_it_approved(market, ibkr_resources):
    settings = market()
    approve_plans(settings.database_url)
    fake, resources = ibkr_resources(settings, after_close("2024-01-02"))
    materialize_assets(settings, ["broker_orders"], "2024-01-02", resources=resources)
    assert read_table(settings.database_url, ORDERS)["status"].tolist() == ["dry_run"]
    assert (
        read_table(settings.database_url, "SELECT status FROM trade_plan")["status"][0]
        == "approved"
    )


# -- 2. a dead parent or a stopped run stops the sending -------------------------------------


def test_run_guard_stops_for_the_kill_switch_a_dead_parent_and_a_stopped_run(
    tmp_path, dagster_instance
):
    switch = KillSwitch(tmp_path / "KILL")
    run = dagster_instance.add_run(
        DagsterRun(job_name="guard_test", status=DagsterRunStatus.STARTED)
    )
    guard = RunGuard(dagster_instance, run.run_id, switch)
    assert guard.stop() is None
    switch.engage("test", by="pytest")
    assert guard.stop().reason.startswith("kill switch") and not guard.stop().orphaned
    switch.release()
    orphan = RunGuard(dagster_instance, run.run_id, switch, parent_pid=os.getppid() + 1)
    assert orphan.stop().orphaned and "parent process" in orphan.stop().reason
    dagster_instance.report_run_canceling(run)
    assert guard.stop().orphaned and "CANCELING" in guard.stop().reason


def test_a_dead_parent_stops_sending_before_the_next_order(market, monkeypatch):
    """The parent dies after the second of five orders (the step is re-parented): the rest
    are recorded as halted, never sent, and the step fails. Before: all five went out."""
    settings = market(dry_run=False)
    refs = approve_plans(settings.database_url, count=5)
    parent, placed = os.getppid(), []
    real_place = SimulatedBroker.place_bracket

    def place_then_lose_the_parent(self, order):
        placed.append(order.order_ref)
        return real_place(self, order)

    monkeypatch.setattr(SimulatedBroker, "place_bracket", place_then_lose_the_parent)
    monkeypatch.setattr(os, "getppid", lambda: parent if len(placed) < 2 else 1)
    result = materialize_assets(settings, ["broker_orders"], "2024-01-02", raise_on_error=False)
    assert not result.success
    assert len(placed) == 2
    sim = read_table(settings.database_url, "SELECT order_ref FROM sim_orders ORDER BY seq")
    assert sim["order_ref"].tolist() == placed
    orders = read_table(settings.database_url, ORDERS).set_index("order_ref")
    halted = orders[orders["status"] == "halted"]
    assert sorted(halted.index) == sorted(set(refs) - set(placed))
    assert halted["error"].str.contains("parent process").all()
    halt = read_table(settings.database_url, "SELECT source, detail FROM halt_events")
    assert halt["source"].tolist() == ["broker_orders"]
    assert "parent process" in halt["detail"][0]["reason"]


# -- 4. broker assets only in broker-tagged jobs --------------------------------------------

# Assets that read the broker's account (equity for sizing) but never send, change or cancel an
# order: they belong to the after-close pipeline.
ACCOUNT_READERS = {"trade_plan", "fade_plan", "option_spreads", "journal"}


def test_every_broker_asset_runs_only_in_broker_tagged_jobs():
    """An asset that needs the broker is either an account reader or tagged as a broker asset
    (in the broker pool), and every job holding a broker asset carries the run tag that the
    kill-switch sensor cancels and the one-broker-run limit counts. Before: opposing_orders
    sent fades from `daily_pipeline`, which has no such tag."""
    defs = build_definitions(load_settings())
    repository = defs.get_repository_def()
    broker_assets = set()
    for node in repository.asset_graph.asset_nodes:
        name = node.key.to_user_string()
        needs_broker = "broker" in node.assets_def.required_resource_keys
        tagged = node.tags.get(BROKER_TAG) == "true"
        if needs_broker and name not in ACCOUNT_READERS:
            assert tagged, f"{name} can reach the broker but is not tagged {BROKER_TAG}"
        if tagged:
            assert needs_broker and node.pools == {"broker"}, name
            broker_assets.add(name)
    assert broker_assets == {"broker_orders", "opposing_orders", "stop_updates", "option_orders"}
    for job in repository.get_all_jobs():
        if job.name.startswith("__ASSET_JOB"):
            continue  # the implicit job of ad-hoc materialisations: the broker pool covers it
        selected = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
        if selected & broker_assets:
            assert job.tags.get(BROKER_TAG) == "true", (
                f"job {job.name} runs {sorted(selected & broker_assets)} without {BROKER_TAG}"
            )
    daily = {
        k.to_user_string()
        for k in defs.resolve_job_def("daily_pipeline").asset_layer.executable_asset_keys
    }
    assert {"trade_plan", "fade_plan", "option_spreads"} <= daily and not daily & broker_assets

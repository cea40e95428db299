"""Scores, plans, approval, orders and the kill switch on the bundled sample, real Postgres.

Models are trained once per module (quick config, promotion rules relaxed so both sides serve);
each test clones the labelled database. The simulated broker is real (Postgres). IBKR is
exercised through the asset with the `FakeIB` of test_ibkr_broker.py at the adapter boundary:
an IB Gateway cannot run here, and that fake is the only mocked part.
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import urlparse

import pandas as pd
import pytest
from click.testing import CliRunner
from dagster import DagsterRun, DagsterRunStatus, build_sensor_context, materialize
from sqlalchemy import create_engine, text

from breakout_assets.approvals import approve_trades
from breakout_assets.cli import main
from breakout_assets.core.planning import order_ref
from breakout_assets.core.scanner import ScannerConfig
from breakout_assets.definitions import build_assets, build_resources
from breakout_assets.ml.registry import PromotionRules
from breakout_assets.partitions import nyse_calendar
from breakout_assets.resources.broker import IbkrBrokerResource, ibkr
from breakout_assets.resources.kill_switch import KillSwitch
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.resources.postgres import _engine
from breakout_assets.sensors import BROKER_TAG, build_kill_switch_sensor
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests import test_ibkr_broker as fake_ib
from breakout_assets_tests.conftest import SAMPLE_DIR, new_database
from breakout_assets_tests.helpers import RANGE_END, RANGE_START, read_table, run_assets, run_totals

SCANNER = ScannerConfig()  # the production defaults (50% booked target: both label classes)
QUICK = {
    "trials": 3,
    "folds": 2,
    "max_rounds": 1,
    "min_features": 10,
    "split": "random",
    "test_fraction": 0.3,
}
FIRST, LAST = "2022-01-03", "2024-03-08"
PLANS = "SELECT * FROM trade_plan ORDER BY order_ref"


@pytest.fixture(scope="module")
def labelled(pg_server, dagster_instance, tmp_path_factory):
    """(template database, model store) with active long and short models."""
    url = new_database(pg_server)
    store = tmp_path_factory.mktemp("store")
    settings = load_settings(
        database_url=url,
        files_dir=SAMPLE_DIR,
        scanner=SCANNER,
        model_store_dir=store,
        promotion=PromotionRules(min_auc_margin=-0.5, min_gated_trades=1, must_beat_scanner=False),
    )
    run_assets(settings, ["market_bars", "index_bars", "ticker_reference"], "2018-01-02", LAST)
    run_assets(
        settings, ["daily_features", "breakout_signals", "signal_outcomes"], "2018-06-01", LAST
    )
    helpers.train_and_serve(settings, url, QUICK)
    _engine(url).dispose()
    return urlparse(url).path.lstrip("/"), store


@pytest.fixture
def settings_for(pg_server, labelled, tmp_path):
    template, store = labelled
    url = new_database(pg_server, template=template)

    def make(**overrides):
        return load_settings(
            database_url=url,
            files_dir=SAMPLE_DIR,
            scanner=SCANNER,
            model_store_dir=store,
            kill_switch_path=tmp_path / "KILL",
            **overrides,
        )

    return make


def run(settings, names, first=FIRST, last=LAST, resources=None):
    assets = [a for a in build_assets(settings) if a.key.to_user_string() in names]
    return materialize(
        assets,
        resources=resources or build_resources(settings),
        tags={RANGE_START: first, RANGE_END: last},
        instance=helpers.DEFAULT_INSTANCE,
    )


def _execute(settings, sql):
    engine = create_engine(with_driver(settings.database_url, "psycopg"))
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


def scored_and_planned(settings):
    run(settings, ["signal_scores", "trade_plan"])
    return read_table(settings.database_url, PLANS)


def test_scores_follow_ev_tiers_and_the_gate_and_plans_respect_the_caps(settings_for):
    settings = settings_for()
    plans = scored_and_planned(settings)
    scores = read_table(
        settings.database_url,
        """
        SELECT sc.*, s.reward_risk, s.ticker FROM signal_scores sc JOIN breakout_signals s
        USING (signal_id) ORDER BY signal_id""",
    )
    signals = read_table(
        settings.database_url,
        f"""
        SELECT signal_id FROM breakout_signals WHERE session BETWEEN '{FIRST}' AND '{LAST}'""",
    )
    assert sorted(scores["signal_id"]) == sorted(signals["signal_id"]) and len(scores) >= 10
    gross = scores["confidence"] * scores["reward_risk"] - (1 - scores["confidence"])
    assert (gross - scores["gross_expected_value"]).abs().max() < 1e-9
    # EV, tiers and decisions are net of each signal's expected costs (core.costs)
    assert (scores["cost_r"] > 0).all()
    assert (gross - scores["cost_r"] - scores["expected_value"]).abs().max() < 1e-9
    assert ((scores["confidence"] < 0.5) == (scores["decision"] == "opposing")).all()
    assert (scores.loc[scores["decision"] == "trade", "tier"].notna()).all()
    assert set(scores["decision"]) >= {"trade", "opposing"}
    # one plan per trade/skip decision, none for opposing candidates
    planned = scores[scores["decision"] != "opposing"]
    assert sorted(plans["signal_id"]) == sorted(planned["signal_id"])
    assert set(plans["status"]) <= {"pending_approval", "skipped"}
    pending = plans[plans["status"] == "pending_approval"]
    assert len(pending) and (pending["quantity"] > 0).all()
    assert (pending["risk_dollars"] <= 0.025 * settings.simulated_starting_equity + 1e-6).all()
    risk = (pending["entry"] - pending["stop"]).abs() * pending["quantity"]
    assert ((risk - pending["risk_dollars"]).abs() < 1e-6).all()
    assert (pending["decided_by"].isna()).all()
    row = plans.iloc[0]
    assert row.order_ref == order_ref(row.ticker, row.session, row.side)
    # a re-run rewrites nothing it should not
    pd.testing.assert_frame_equal(plans, scored_and_planned(settings))


def test_a_side_without_a_serving_model_is_not_scored(settings_for, tmp_path):
    """A side whose model never passed the rules does not trade; the other side still does,
    and the run says which signals went unscored."""
    import shutil

    settings = settings_for()
    store = tmp_path / "store"
    shutil.copytree(settings.model_store_dir, store)
    active = json.loads((store / "ACTIVE_MODELS.json").read_text())
    active.pop("short")
    (store / "ACTIVE_MODELS.json").write_text(json.dumps(active))
    settings = settings.model_copy(update={"model_store_dir": store})
    result = run(settings, ["signal_scores"])
    scores = read_table(settings.database_url, "SELECT side FROM signal_scores")
    shorts = read_table(
        settings.database_url,
        f"""
        SELECT count(*) AS n FROM breakout_signals
        WHERE side = 'short' AND session BETWEEN '{FIRST}' AND '{LAST}'""",
    ).n.iloc[0]
    assert set(scores["side"]) == {"long"} and shorts > 0
    assert run_totals(result, "signal_scores")["unscored_no_active_model"] == {"short": int(shorts)}


def test_approval_by_cli_and_job_survives_reruns_and_dry_run_sends_nothing(settings_for):
    settings = settings_for()
    pending = scored_and_planned(settings).query("status == 'pending_approval'")
    assert len(pending) >= 2
    first, second = pending.iloc[0], pending.iloc[1]
    env = {"BREAKOUT_DATABASE_URL": settings.database_url}
    approved = CliRunner(env=env).invoke(
        main, ["approve", str(first.session), "--ref", first.order_ref, "--by", "alice"]
    )
    assert approved.exit_code == 0, approved.output
    twice = CliRunner(env=env).invoke(
        main, ["approve", str(first.session), "--ref", first.order_ref]
    )
    assert twice.exit_code != 0 and "already decided" in twice.output
    result = approve_trades.execute_in_process(
        resources={"postgres": build_resources(settings)["postgres"]},
        instance=helpers.DEFAULT_INSTANCE,
        run_config={
            "ops": {
                "decide_trade_plans": {
                    "config": {
                        "session": str(second.session),
                        "approve": False,
                        "refs": [second.order_ref],
                        "decided_by": "bob",
                    }
                }
            }
        },
    )
    assert result.success
    plans = scored_and_planned(settings).set_index("order_ref")  # the re-run keeps decisions
    assert plans.loc[first.order_ref, "status"] == "approved"
    assert plans.loc[first.order_ref, "decided_by"] == "alice (cli)"
    assert plans.loc[second.order_ref, "status"] == "rejected"
    assert plans.loc[second.order_ref, "decided_by"].startswith("bob (dagster run ")
    assert plans.loc[[first.order_ref, second.order_ref], "decided_at"].notna().all()
    # dry-run (the default) records exactly the approved bracket and sends nothing
    run(settings, ["broker_orders"])
    orders = read_table(settings.database_url, "SELECT * FROM broker_orders")
    assert list(orders["order_ref"]) == [first.order_ref]
    assert orders["dry_run"].all() and (orders["status"] == "dry_run").all()
    assert orders["bracket"].iloc[0]["quantity"] == first.quantity
    assert read_table(settings.database_url, "SELECT count(*) AS n FROM sim_orders")["n"][0] == 0


def _approve_all(settings, plans):
    postgres = build_resources(settings)["postgres"]
    from breakout_assets.approvals import decide

    for session in sorted(set(plans.loc[plans["status"] == "pending_approval", "session"])):
        decide(postgres, session, True, "test")


def test_live_orders_reach_the_simulated_broker_once(settings_for):
    settings = settings_for(dry_run=False)
    plans = scored_and_planned(settings)
    _approve_all(settings, plans)
    approved = (plans["status"] == "pending_approval").sum()
    run(settings, ["broker_orders"])
    sim = read_table(settings.database_url, "SELECT * FROM sim_orders ORDER BY order_ref")
    assert len(sim) == approved
    orders = read_table(settings.database_url, "SELECT * FROM broker_orders ORDER BY order_ref")
    assert set(orders["status"]) <= {"submitted", "rejected"} and not orders["dry_run"].any()
    run(settings, ["broker_orders"])  # again: nothing is sent twice
    # ... even after a crash between sending and marking the plans sent
    _execute(settings, "UPDATE trade_plan SET status = 'approved' WHERE status = 'sent'")
    run(settings, ["broker_orders"])
    plan_statuses = read_table(settings.database_url, "SELECT status FROM trade_plan")["status"]
    assert "approved" not in set(plan_statuses)  # found at the broker: marked sent, not re-sent
    again = read_table(settings.database_url, "SELECT * FROM sim_orders ORDER BY order_ref")
    assert len(again) == approved
    pd.testing.assert_series_equal(sim["seq"], again["seq"])
    after = read_table(settings.database_url, "SELECT status FROM trade_plan")
    assert "approved" not in set(after["status"]) or (orders["status"] == "rejected").any()
    fills = read_table(settings.database_url, "SELECT count(*) AS n FROM sim_fills")["n"][0]
    assert fills > 0  # the simulated broker filled them on the following real bars


def test_nothing_is_sent_without_approval(settings_for):
    settings = settings_for(dry_run=False)
    scored_and_planned(settings)
    run(settings, ["broker_orders"])
    assert read_table(settings.database_url, "SELECT count(*) AS n FROM sim_orders")["n"][0] == 0
    assert read_table(settings.database_url, "SELECT count(*) AS n FROM broker_orders")["n"][0] == 0


def test_kill_switch_stops_orders_and_the_sensor_cancels_broker_runs(settings_for):
    settings = settings_for(dry_run=False)
    plans = scored_and_planned(settings)
    _approve_all(settings, plans)
    switch = KillSwitch(settings.kill_switch_path)
    switch.engage("test halt", by="pytest")
    run(settings, ["broker_orders"])
    assert read_table(settings.database_url, "SELECT count(*) AS n FROM sim_orders")["n"][0] == 0
    orders = read_table(settings.database_url, "SELECT status FROM broker_orders")
    assert len(orders) and set(orders["status"]) == {"halted"}
    halts = read_table(settings.database_url, "SELECT * FROM halt_events ORDER BY id")
    assert halts["source"].tolist() == ["broker_orders"]
    # the sensor (a real Dagster instance) cancels a running broker run and records the halt
    instance = helpers.DEFAULT_INSTANCE
    running = DagsterRunStatus.STARTED
    queued = instance.add_run(
        DagsterRun(job_name="submit_orders", status=running, tags={BROKER_TAG: "true"})
    )
    other = instance.add_run(DagsterRun(job_name="daily_pipeline", status=running))
    sensor = build_kill_switch_sensor(switch)
    context = build_sensor_context(
        instance=instance, resources={"postgres": build_resources(settings)["postgres"]}
    )
    sensor(context)
    assert instance.get_run_by_id(queued.run_id).status == DagsterRunStatus.CANCELED
    assert instance.get_run_by_id(other.run_id).status == running
    halts = read_table(settings.database_url, "SELECT * FROM halt_events ORDER BY id")
    assert halts["source"].tolist() == ["broker_orders", "sensor"]
    assert queued.run_id in halts["detail"].iloc[-1]["cancelled_runs"]
    switch.release()
    assert "off" in str(
        sensor(
            build_sensor_context(
                instance=instance, resources={"postgres": build_resources(settings)["postgres"]}
            )
        )
    )


def test_kill_switch_cli(settings_for):
    settings = settings_for()
    runner = CliRunner(env={"BREAKOUT_KILL_SWITCH_PATH": str(settings.kill_switch_path)})
    assert "off" in runner.invoke(main, ["kill-switch", "status"]).output
    assert "KILL SWITCH ON" in runner.invoke(main, ["kill-switch", "on", "--reason", "x"]).output
    assert json.loads(settings.kill_switch_path.read_text())["reason"] == "x"
    assert "ON since" in runner.invoke(main, ["kill-switch", "status"]).output
    assert "off" in runner.invoke(main, ["kill-switch", "off"]).output
    assert not settings.kill_switch_path.exists()


class FakeIbkrResource(IbkrBrokerResource):
    """The broker resource with IBKR's adapter talking to FakeIB (no gateway can run here),
    its wall clock set by the test (IBKR's current session is the calendar's at that time)."""

    def build(self):
        return ibkr.IbkrBroker(
            "127.0.0.1",
            4002,
            7,
            fake_ib.ACCOUNT,
            connect_timeout_s=1,
            request_timeout_s=0.2,
            ib_factory=lambda: SHARED_FAKE[0],
            clock=lambda: SHARED_CLOCK[0],
        )


SHARED_FAKE: list = []
SHARED_CLOCK: list = []


def after_close(session) -> datetime:
    """An hour after the session's close: IBKR's current session is then `session`."""
    close = nyse_calendar().session_close(pd.Timestamp(session))
    return (close + pd.Timedelta(hours=1)).to_pydatetime()


def test_ibkr_adapter_through_the_asset_sends_each_bracket_once(settings_for, monkeypatch):
    monkeypatch.setattr(
        fake_ib.ib_async.IB, "connect", lambda *a, **k: pytest.fail("real IB connection attempted")
    )
    settings = settings_for(dry_run=False)
    plans = scored_and_planned(settings)  # sized against the simulated account
    _approve_all(settings, plans)
    approved = plans[plans["status"] == "pending_approval"]
    latest = approved["session"].max()
    current, stale = approved[approved["session"] == latest], approved[approved["session"] < latest]
    assert len(current) and len(stale)
    fake = fake_ib.FakeIB()
    for i, ticker in enumerate(sorted(set(approved["ticker"]))):
        monkeypatch.setitem(fake_ib.CONIDS, ticker, 500_000 + i)
        fake.min_ticks[ticker] = 0.01
    SHARED_FAKE[:] = [fake]
    SHARED_CLOCK[:] = [after_close(latest)]  # the evening of the latest plans' session
    resources = build_resources(settings)
    resources["broker"] = FakeIbkrResource(account=fake_ib.ACCOUNT)
    run(settings, ["broker_orders"], resources=resources)
    placed_once = len(fake.placed)
    assert placed_once == 3 * len(current)  # parent, take-profit, stop per bracket
    parents = [o for _, o in fake.placed if o.parentId == 0]
    assert sorted(o.orderRef for o in parents) == sorted(current["order_ref"])
    # the plans of earlier sessions are past their entry window at IBKR: expired, never sent
    expired = read_table(
        settings.database_url, "SELECT order_ref, error FROM broker_orders WHERE status = 'expired'"
    )
    assert sorted(expired["order_ref"]) == sorted(stale["order_ref"])
    assert expired["error"].str.contains("never sent").all()
    run(settings, ["broker_orders"], resources=resources)  # sent plans are not sent again
    assert len(fake.placed) == placed_once
    # a crash after sending, before the plans were marked sent: the broker is asked first
    _execute(settings, "UPDATE trade_plan SET status = 'approved' WHERE status = 'sent'")
    run(settings, ["broker_orders"], resources=resources)
    assert len(fake.placed) == placed_once
    orders = read_table(settings.database_url, "SELECT status FROM broker_orders")
    assert set(orders["status"]) <= {"submitted", "already_at_broker", "expired"}
    plan_statuses = read_table(settings.database_url, "SELECT status FROM trade_plan")["status"]
    assert "approved" not in set(plan_statuses)


def test_unattended_mode_is_explicit_and_loud(settings_for):
    settings = settings_for(auto_approve=True)
    result = run(settings, ["signal_scores", "trade_plan"])
    assert run_totals(result, "trade_plan")["unattended_mode"] is True
    plans = read_table(settings.database_url, PLANS)
    sized = plans[plans["quantity"] > 0]
    assert len(sized) and (sized["status"] == "approved").all()
    assert sized["decided_by"].str.contains("UNATTENDED MODE").all()
    warnings = helpers.DEFAULT_INSTANCE.all_logs(result.run_id)
    assert any("UNATTENDED MODE" in (e.user_message or "") for e in warnings)


def test_backtests_write_results_and_the_static_bracket_is_the_labels(settings_for):
    settings = settings_for()
    assets = [
        a
        for a in build_assets(settings)
        if a.key.to_user_string() in ("primary_backtest", "opposing_backtest")
    ]
    result = materialize(
        assets, resources=build_resources(settings), instance=helpers.DEFAULT_INSTANCE
    )
    results = read_table(settings.database_url, "SELECT * FROM backtest_results")
    primary = results[results["backtest"] == "primary_daily"].set_index(["variant", "side"])
    assert len(primary) == 10
    labels = read_table(
        settings.database_url,
        """
        SELECT s.side, sum(o.r_multiple) AS sum_r, count(*) AS trades,
               sum(o.net_r_multiple) AS sum_net_r
        FROM signal_outcomes o JOIN breakout_signals s USING (signal_id)
        WHERE o.status IN ('win', 'loss', 'expired') GROUP BY s.side""",
    ).set_index("side")
    holding = settings.outcomes.max_holding_sessions
    expiring = read_table(
        settings.database_url,
        f"""
        SELECT s.side,
               count(*) FILTER (WHERE o.status IN ('win', 'loss') AND o.bars_held <= {holding})
                   AS closed_in_time,
               count(*) FILTER (WHERE o.bars_held > {holding}) AS past_the_limit
        FROM signal_outcomes o JOIN breakout_signals s USING (signal_id)
        WHERE o.entry_session IS NOT NULL GROUP BY s.side""",
    ).set_index("side")
    for side in ("long", "short"):
        # the book as labelled IS the labels, gross and net
        as_labelled = primary.loc[("labels: target or stop", side)]
        assert as_labelled.trades == labels.loc[side, "trades"]
        assert as_labelled.sum_r == pytest.approx(labels.loc[side, "sum_r"], abs=1e-9)
        assert as_labelled.sum_net_r == pytest.approx(labels.loc[side, "sum_net_r"], abs=1e-6)
        # one exit rule: the static bracket closes what the labels close within the holding
        # limit, and expires every trade the labels held longer
        static = primary.loc[("static bracket", side)]
        assert static.trades == (
            expiring.loc[side, "closed_in_time"] + expiring.loc[side, "past_the_limit"]
        )
    assert (primary["sum_net_r"] < primary["sum_r"]).all()
    assert (primary["expectancy_net_r"] < primary["expectancy_r"]).all()
    # the opposing book, gross and net; 1-hour bars where stored, daily bars elsewhere
    opposing = results[results["backtest"].isin(["opposing_hourly", "opposing_daily"])]
    traded = opposing[opposing["trades"] > 0]
    assert len(traded) and (traded["sum_net_r"] < traded["sum_r"]).all()
    assert (opposing.loc[opposing["trades"] == 0, "sum_net_r"] == 0).all()
    for name in ("opposing_hourly", "opposing_daily"):
        book = opposing[opposing["backtest"] == name]
        assert set(book["variant"]) == {"all", "limit", "alert"}
        assert set(book["side"]) == {"long", "short"}  # the fades' sides
    every = opposing[opposing["variant"] == "all"]
    coverage = every["detail"].tolist()
    assert all(d["data_source"] == "files" and d["bars"] in ("hourly", "daily") for d in coverage)
    for fade in ("long", "short"):  # every faded signal is replayed on exactly one frequency
        rows = every[every["side"] == fade]
        d = rows["detail"].iloc[0]
        assert rows["signals"].sum() == d["scored_below_gate"]
        assert d["with_hourly_bars"] + d["without_hourly_bars"] == d["scored_below_gate"]
    assert every.loc[every["backtest"] == "opposing_daily", "signals"].sum() > 0
    for name in ("primary_backtest", "opposing_backtest"):
        metadata = result.asset_materializations_for_node(name)[0].metadata
        assert "data:image/png;base64," in metadata["expectancy_plot"].value
    primary_meta = result.asset_materializations_for_node("primary_backtest")[0].metadata
    assert "expectancy_net_r" in primary_meta["results"].value  # the table shows both
    assert "sum_net_r" in primary_meta["results"].value
    assert "data:image/png;base64," in primary_meta["expectancy_net_plot"].value
    assert primary_meta["costs"].value["commission_per_share"] == 0.005

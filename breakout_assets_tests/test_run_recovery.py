"""Runs that died: found, marked failed, their pool slots freed (issue 14, items 2 and 3).

The unit tests record runs, processes and slots in the Postgres-backed test instance and call
`recover_dead_runs` and `breakout runs recover`. The fault-injection test drives the real CLI:
`breakout dagster asset materialize --select broker_orders` against the simulated broker,
SIGKILLs that process (the parent of the live step) mid-send, and shows that no order follows
the kill, that the orphaned step stops, and that a plain re-run recovers the dead run, frees its
slot of the "broker" pool and sends the rest once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from dagster import (
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    MetadataValue,
    build_sensor_context,
)
from dagster._core.events import EngineEventData
from sqlalchemy import create_engine, text

from breakout_assets import runtime
from breakout_assets.cli import main
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.run_guard import (
    HOST_TAG,
    process_alive,
    recover_dead_runs,
    this_host,
)
from breakout_assets.sensors import build_dead_runs_sensor
from breakout_assets.settings import PROJECT_ROOT, load_settings
from breakout_assets_tests.conftest import new_database
from breakout_assets_tests.helpers import HAND_BUILT_SIGNAL, read_table, seed_hand_built
from breakout_assets_tests.test_broker_safety import BARS, PLAN, REF

POOL = "broker"


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def started_run(
    instance, pid: int, host: str | None = None, step: str = "broker_orders", claim: bool = True
) -> DagsterRun:
    """A STARTED run whose recorded process is `pid` (as the multiprocess executor records its
    orchestrator), holding a slot of the broker pool."""
    tags = {HOST_TAG: host} if host else {}
    run = instance.add_run(
        DagsterRun(job_name="submit_orders", status=DagsterRunStatus.STARTED, tags=tags)
    )
    instance.report_engine_event(
        f"Executing steps using multiprocess executor: parent process (pid: {pid})",
        run,
        EngineEventData(metadata={"pid": MetadataValue.text(str(pid))}),
    )
    if claim:  # as the orchestrator claims it: the pool sized from dagster.yaml's default
        if POOL not in instance.event_log_storage.get_concurrency_keys():
            instance.event_log_storage.initialize_concurrency_limit_to_default(POOL)
        instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, step)
    return run


def slot_holders(instance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(POOL)
    return {s.run_id for s in info.claimed_slots} | {p.run_id for p in info.pending_steps}


def claimed(instance) -> list[str]:
    return [s.run_id for s in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots]


@pytest.fixture
def instance(dagster_instance):
    """The test instance with no broker slot held (tests before may have left runs)."""
    for run_id in slot_holders(dagster_instance):
        dagster_instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return dagster_instance


def test_a_dead_run_is_marked_failed_and_its_slot_freed(instance):
    run = started_run(instance, dead_pid(), host=this_host())
    assert claimed(instance) == [run.run_id]  # the next broker step would wait for ever
    blocked = started_run(instance, os.getpid(), host=this_host(), step="stop_updates")
    assert claimed(instance) == [run.run_id] and blocked.run_id in slot_holders(instance)
    [verdict] = [v for v in recover_dead_runs(instance) if v.run_id == run.run_id]
    assert verdict.action == "marked failed" and "is alive" in verdict.detail
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    # the freed slot goes to the step that was waiting for it
    instance.event_log_storage.claim_concurrency_slot(POOL, blocked.run_id, "stop_updates")
    assert claimed(instance) == [blocked.run_id]
    instance.report_run_failed(blocked)


def test_a_live_run_is_left_alone(instance):
    run = started_run(instance, os.getpid(), host=this_host())
    [verdict] = [v for v in recover_dead_runs(instance) if v.run_id == run.run_id]
    assert verdict.action == "left alone" and str(os.getpid()) in verdict.detail
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
    assert run.run_id in slot_holders(instance)


def test_runs_of_another_host_or_of_no_known_host_are_left_alone(instance):
    elsewhere = started_run(instance, dead_pid(), host="some-other-host", claim=False)
    unknown = started_run(instance, dead_pid(), claim=False)
    verdicts = {v.run_id: v for v in recover_dead_runs(instance)}
    assert "some-other-host" in verdicts[elsewhere.run_id].detail
    assert "no host recorded" in verdicts[unknown.run_id].detail
    assert not verdicts[elsewhere.run_id].changed and not verdicts[unknown.run_id].changed
    dry = {v.run_id: v for v in recover_dead_runs(instance, assume_local=True, dry_run=True)}
    assert dry[unknown.run_id].action == "marked failed"
    assert instance.get_run_by_id(unknown.run_id).status == DagsterRunStatus.STARTED
    recover_dead_runs(instance, assume_local=True)
    assert instance.get_run_by_id(unknown.run_id).status == DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(elsewhere.run_id).status == DagsterRunStatus.STARTED
    instance.report_run_failed(instance.get_run_by_id(elsewhere.run_id))


def test_a_finished_run_still_holding_a_slot_frees_it(instance):
    run = started_run(instance, os.getpid(), host=this_host())
    instance.report_run_canceled(run)  # without the daemon nobody frees its slot
    assert run.run_id in slot_holders(instance)
    [verdict] = [v for v in recover_dead_runs(instance) if v.run_id == run.run_id]
    assert verdict.action == "slots freed"
    assert slot_holders(instance) == set()


def test_the_dead_runs_sensor_recovers_with_the_daemon(instance):
    run = started_run(instance, dead_pid(), host=this_host())
    sensor = build_dead_runs_sensor()
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert "recovered" in str(sensor(build_sensor_context(instance=instance)))
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    assert "no dead run" in str(sensor(build_sensor_context(instance=instance)))


def test_process_liveness_sees_zombies_and_recycled_pids():
    assert process_alive(os.getpid(), time.time())
    assert not process_alive(os.getpid(), time.time() - 86_400)  # started after: recycled
    assert not process_alive(dead_pid(), time.time())
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 30
    while Path(f"/proc/{zombie.pid}/stat").read_text().split(") ")[1][0] != "Z":
        assert time.time() < deadline
        time.sleep(0.05)
    assert not process_alive(zombie.pid, time.time())  # exited, not reaped yet
    zombie.wait()


def test_runs_recover_command(instance, tmp_path, pg_server):
    """`breakout runs recover` on the project's instance (DAGSTER_HOME and the storage URL
    derived from the settings, as `breakout dagster` does)."""
    run = started_run(instance, dead_pid(), host=this_host())
    url = instance.run_storage.postgres_url  # the test instance's storage
    env = {
        "BREAKOUT_DAGSTER_DATABASE_URL": url,
        "BREAKOUT_DATABASE_URL": new_database(pg_server),
        "BREAKOUT_DAGSTER_HOME": str(tmp_path / "home"),
        # set by the command for Dagster; listed so the runner restores them afterwards
        "DAGSTER_HOME": None,
        runtime.DAGSTER_URL_VAR: None,
    }
    dry = CliRunner(env=env).invoke(main, ["runs", "recover", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"WOULD BE {run.run_id}" in dry.output and "marked failed" in dry.output
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
    done = CliRunner(env=env).invoke(main, ["runs", "recover"])
    assert done.exit_code == 0, done.output
    assert run.run_id in done.output and "recovered" in done.output
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    assert slot_holders(instance) == set()


# -- fault injection: SIGKILL the parent of a live broker_orders step ------------------------

BREAKOUT = str(Path(sys.executable).with_name("breakout"))
PLANS = 80  # tens of orders a second at most: the kill lands mid-send
IN_PROCESS = "execution:\n  config:\n    in_process: {}\n"


@pytest.fixture
def killable(pg_server, tmp_path):
    """A live simulated-broker setup for the CLI: TEST's bars and PLANS approved plans of
    2024-01-02, the project's dagster.yaml (the "broker" pool limited to one step)."""
    data_url = new_database(pg_server)
    dagster_url = new_database(pg_server, template="template1")
    seed_hand_built(data_url, BARS)
    engine = create_engine(with_driver(data_url, "psycopg"))
    with engine.begin() as conn:
        conn.execute(
            text(PLAN),
            [
                dict(
                    ref=f"{REF}-{i:03d}",
                    signal=HAND_BUILT_SIGNAL if i == 0 else f"sig-{i}",
                    session="2024-01-02",
                )
                for i in range(PLANS)
            ],
        )
    settings = load_settings(
        database_url=data_url, dagster_database_url=dagster_url, dagster_home=tmp_path / "home"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKOUT_")}
    env.update(runtime.dagster_environment(settings))
    env.update(
        BREAKOUT_DATABASE_URL=data_url,
        BREAKOUT_DAGSTER_DATABASE_URL=dagster_url,
        BREAKOUT_DAGSTER_HOME=str(tmp_path / "home"),
        BREAKOUT_DRY_RUN="false",
        BREAKOUT_KILL_SWITCH_PATH=str(tmp_path / "KILL"),
    )
    yield env, data_url, engine, dagster_url
    engine.dispose()


def _materialize(env, log: Path, *extra: str) -> subprocess.Popen:
    """The CLI, its output (and its step's, which inherits it) to a file nobody must drain."""
    with log.open("w") as out:
        return subprocess.Popen(
            [
                BREAKOUT,
                "dagster",
                "asset",
                "materialize",
                "--select",
                "broker_orders",
                "--partition",
                "2024-01-02",
                "-m",
                "breakout_assets.definitions",
                *extra,
            ],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _scalar(engine, sql: str):
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_killing_the_parent_of_a_live_send_stops_it_and_a_rerun_recovers(killable, tmp_path):
    """The issue's probe: SIGKILL to `breakout dagster asset materialize` during broker_orders.
    Before: the orphaned step kept sending, the run stayed STARTED holding the broker slot, and
    every later broker run waited for it for ever."""
    env, data_url, data, dagster_url = killable
    orders = "SELECT count(*) FROM sim_orders"
    first = _materialize(env, tmp_path / "first.log")  # multiprocess: the step is a child
    _wait(lambda: _scalar(data, orders) >= 3, 180, "the first orders")
    first.send_signal(signal.SIGKILL)  # `breakout dagster` exec'd into dagster: the parent
    first.wait()  # dead and reaped: from here the step has no parent
    at_kill = _scalar(data, orders)
    step = int(
        json.loads(
            read_table(
                dagster_url,
                "SELECT event FROM event_logs WHERE dagster_event_type = 'STEP_WORKER_STARTED'",
            )["event"][0]
        )["dagster_event"]["pid"]
    )
    # the orphaned step notices before its next order and stops
    _wait(lambda: not process_alive(step, time.time()), 60, "the orphaned step to stop")
    sent = _scalar(data, orders)
    assert sent <= at_kill + 1 < PLANS  # at most the order in flight when the parent died
    halted = read_table(
        data_url,
        "SELECT count(*) AS n, min(error) AS error FROM broker_orders WHERE status = 'halted'",
    )
    assert halted["n"][0] == PLANS - sent and "parent process" in halted["error"][0]
    killed = read_table(dagster_url, "SELECT run_id, status FROM runs")
    assert killed["status"].tolist() == ["STARTED"]  # nobody recorded its end ...
    held = read_table(
        dagster_url,
        "SELECT run_id FROM concurrency_slots "
        "WHERE concurrency_key = 'broker' AND run_id IS NOT NULL",
    )
    assert held["run_id"].tolist() == killed["run_id"].tolist()  # ... and it holds the slot

    # a plain re-run (in-process: one interpreter less to start) recovers the dead run at its
    # start, before its step waits for the slot, and sends the rest, each plan once
    config = tmp_path / "in_process.yaml"
    config.write_text(IN_PROCESS)
    second = _materialize(env, tmp_path / "second.log", "--config", str(config))
    second.wait(timeout=300)
    output = (tmp_path / "second.log").read_text()
    assert second.returncode == 0, output[-3000:]
    assert "RECOVERED" in output and "marked failed" in output
    runs = read_table(dagster_url, "SELECT status FROM runs ORDER BY create_timestamp")
    assert runs["status"].tolist() == ["FAILURE", "SUCCESS"]
    assert read_table(
        dagster_url, "SELECT run_id FROM concurrency_slots WHERE run_id IS NOT NULL"
    ).empty
    sim = read_table(data_url, "SELECT order_ref, count(*) AS n FROM sim_orders GROUP BY 1")
    assert len(sim) == PLANS and (sim["n"] == 1).all()  # every plan once, no duplicate
    statuses = read_table(data_url, "SELECT status, count(*) AS n FROM broker_orders GROUP BY 1")
    assert set(statuses["status"]) <= {"submitted", "rejected"}
    assert statuses["n"].sum() == PLANS

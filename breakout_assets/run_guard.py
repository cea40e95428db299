"""Runs that talk to the broker: stop when orphaned, and clean up after runs that died.

A step of a multiprocess run is a child of the run's orchestrating process (`breakout dagster
asset materialize`, or a run worker). When that parent is killed the step keeps running with
nobody to watch it, cancel it or record the run's end. `RunGuard.stop` is asked before every
order: the kill switch, a parent that is gone (the step was re-parented) or a run that was
cancelled or failed stop the sending before the next order.

A killed run also stays STARTED and keeps its slot of the "broker" pool, so every later broker
run would wait for ever. Dagster records the pid of every process of a run in its events;
`recover_dead_runs` marks failed the unfinished runs none of whose processes is alive on this
host and frees their slots (and those of finished runs that still hold one). It runs from
`breakout runs recover`, at the start of every run (`guarded_executor`, before any step waits
for a slot), at the start of every broker step and, with the daemon, from the `dead_runs`
sensor. Pids mean something only on the host that recorded them, so runs are tagged with it
(`HOST_TAG`) and a run of another host is left alone.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    Executor,
    ExecutorDefinition,
    Failure,
    RunsFilter,
    multi_or_in_process_executor,
)

from breakout_assets.resources.kill_switch import KillSwitch

HOST_TAG = "breakout/host"
_UNFINISHED = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
_STOPPED = {DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED, DagsterRunStatus.FAILURE}
_FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
# Events emitted by the run's own processes (their `pid`), and engine events whose metadata
# names a process of the run (the orchestrator, a run worker started by a code server).
_OWN_EVENTS = {
    DagsterEventType.RUN_START,
    DagsterEventType.STEP_WORKER_STARTED,
    DagsterEventType.STEP_START,
}
_PROCESS_EVENTS = _OWN_EVENTS | {DagsterEventType.ENGINE_EVENT}
_START_SLACK_S = 2.0  # /proc start times are in clock ticks since a boot time in whole seconds


def this_host() -> str:
    return socket.gethostname()


# -- inside a step ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    """Why sending stops. `orphaned`: the run is dead or cancelled, so the step fails after
    recording what it did not send; the kill switch is an orderly halt (the step succeeds)."""

    reason: str
    orphaned: bool

    def raise_if_orphaned(self) -> None:
        if self.orphaned:
            raise Failure(description=f"stopped sending: {self.reason}")


class RunGuard:
    """Asked before every order: stop for the kill switch, a dead parent or a stopped run."""

    def __init__(
        self,
        instance: DagsterInstance,
        run_id: str,
        kill_switch: KillSwitch,
        parent_pid: int | None = None,
    ) -> None:
        self.instance, self.run_id, self.kill_switch = instance, run_id, kill_switch
        self.parent_pid = os.getppid() if parent_pid is None else parent_pid

    @classmethod
    def start(cls, context, kill_switch: KillSwitch) -> RunGuard:
        """At a broker step's start: the run names its host, dead runs are cleaned up."""
        instance, run_id = context.instance, context.run.run_id
        instance.add_run_tags(run_id, {HOST_TAG: this_host()})
        for verdict in recover_dead_runs(instance, exclude={run_id}):
            if verdict.changed:
                context.log.warning(f"RECOVERED {verdict}")
        return cls(instance, run_id, kill_switch)

    def stop(self) -> Stop | None:
        if self.kill_switch.engaged():
            return Stop(f"kill switch engaged ({self.kill_switch.path})", orphaned=False)
        parent = os.getppid()
        if parent != self.parent_pid:
            return Stop(
                f"the run's parent process {self.parent_pid} is gone (this step now "
                f"belongs to pid {parent})",
                orphaned=True,
            )
        run = self.instance.get_run_by_id(self.run_id)
        if run is None or run.status in _STOPPED:
            status = "deleted" if run is None else run.status.value
            return Stop(f"run {self.run_id} is {status}", orphaned=True)
        return None


# -- recovery -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunVerdict:
    """What recovery found for one run and what it did."""

    run_id: str
    job_name: str
    status: str  # before recovery
    action: str  # 'marked failed' | 'marked canceled' | 'slots freed' | 'left alone'
    detail: str

    @property
    def changed(self) -> bool:
        return self.action != "left alone"

    def __str__(self) -> str:
        return f"{self.run_id} ({self.job_name}, {self.status}): {self.action}: {self.detail}"


def _proc_state(pid: int) -> tuple[str, float] | None:
    """(state, start time as epoch seconds) from Linux's /proc; None where there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3
    return fields[0], boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # starttime: field 22


def process_alive(pid: int, seen_at: float) -> bool:
    """`pid` still runs as the process Dagster saw at `seen_at` (epoch seconds): it exists, is
    not a zombie, and did not start after it was seen (a recycled pid is another process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    state = _proc_state(pid)
    if state is None:
        return True
    kind, started = state
    return kind not in ("Z", "X") and started <= seen_at + _START_SLACK_S


def run_processes(instance: DagsterInstance, run_id: str) -> dict[int, float]:
    """Every process Dagster recorded for the run: pid -> when it was first seen."""
    seen: dict[int, float] = {}
    for entry in instance.all_logs(run_id, of_type=_PROCESS_EVENTS):
        event = entry.dagster_event
        if event is None:
            continue
        pids = [event.pid] if event.event_type in _OWN_EVENTS else []
        data = event.event_specific_data
        pid_value = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid_value is not None:
            pids.append(int(str(pid_value.value)))
        for pid in pids:
            if pid is not None and pid not in seen:
                seen[int(pid)] = entry.timestamp
    return seen


def _slot_holders(instance: DagsterInstance) -> set[str]:
    """Runs holding a concurrency slot or waiting for one (a pending step gets the next free
    slot, so a dead run's pending step would take it and keep it)."""
    storage = instance.event_log_storage
    holders: set[str] = set()
    for key in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(key)
        holders |= {s.run_id for s in info.claimed_slots}
        holders |= {p.run_id for p in info.pending_steps}
    return holders


def _judge(instance: DagsterInstance, run, host: str, assume_local: bool) -> tuple[bool, str]:
    """(dead, why): dead when every process recorded for the run is gone from this host."""
    recorded = run.tags.get(HOST_TAG)
    if recorded is None and not assume_local:
        return False, "no host recorded (use --assume-local if it ran on this host)"
    if recorded is not None and recorded != host:
        return False, f"it runs on host {recorded}: recover it there"
    processes = run_processes(instance, run.run_id)
    if not processes:
        return False, "no process of the run is recorded yet"
    alive = sorted(pid for pid, at in processes.items() if process_alive(pid, at))
    if alive:
        return False, f"its process(es) {', '.join(map(str, alive))} are alive"
    return True, (
        f"none of its processes (pids {', '.join(map(str, sorted(processes)))}) is alive on {host}"
    )


def recover_dead_runs(
    instance: DagsterInstance,
    *,
    exclude: Iterable[str] = (),
    assume_local: bool = False,
    dry_run: bool = False,
) -> list[RunVerdict]:
    """Mark failed (a cancelling run: canceled) every unfinished run of this host whose
    processes are all gone, and free the concurrency slots of runs that are over. Runs of
    another host, or with no host recorded (unless `assume_local`), are left alone."""
    host, skip = this_host(), set(exclude)
    verdicts: list[RunVerdict] = []
    for run in instance.get_runs(RunsFilter(statuses=_UNFINISHED)):
        if run.run_id in skip:
            continue
        dead, why = _judge(instance, run, host, assume_local)
        if not dead:
            verdicts.append(
                RunVerdict(run.run_id, run.job_name, run.status.value, "left alone", why)
            )
            continue
        canceling = run.status == DagsterRunStatus.CANCELING
        if not dry_run:
            message = f"recovered by breakout: {why}; the run died without recording its end"
            if canceling:
                instance.report_run_canceled(run, message=message)
            else:
                instance.report_run_failed(run, message=message)
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        verdicts.append(
            RunVerdict(
                run.run_id,
                run.job_name,
                run.status.value,
                "marked canceled" if canceling else "marked failed",
                f"{why}; its concurrency slots freed",
            )
        )
    judged = {v.run_id for v in verdicts}
    for run_id in sorted(_slot_holders(instance) - judged - skip):
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status not in _FINISHED:
            continue  # queued or alive: its slot is in use
        if not dry_run:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        verdicts.append(
            RunVerdict(
                run_id,
                run.job_name if run else "?",
                run.status.value if run else "deleted",
                "slots freed",
                "the run is over but still held a concurrency slot",
            )
        )
    return verdicts


# -- the run-start hook -------------------------------------------------------------------------


class _GuardedExecutor(Executor):
    """Dagster's default executor, preceded by `recover_dead_runs` in the orchestrating process:
    before any step of this run waits for a slot that a dead run still holds."""

    def __init__(self, inner: Executor) -> None:
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan) -> Iterator[DagsterEvent]:
        instance, run_id = plan_context.instance, plan_context.run_id
        instance.add_run_tags(run_id, {HOST_TAG: this_host()})
        for verdict in recover_dead_runs(instance, exclude={run_id}):
            if verdict.changed:
                plan_context.log.warning(f"RECOVERED {verdict}")
        yield from self._inner.execute(plan_context, execution_plan)


def _guarded(init_context) -> Executor:
    return _GuardedExecutor(multi_or_in_process_executor.executor_creation_fn(init_context))


guarded_executor = ExecutorDefinition(
    name="guarded_multi_or_in_process",
    config_schema=multi_or_in_process_executor.config_schema,
    requirements=multi_or_in_process_executor.get_requirements,
    executor_creation_fn=_guarded,
    description="Dagster's default executor (multiprocess unless configured in-process), "
    "after recovering dead runs of this host and tagging the run with its host.",
)

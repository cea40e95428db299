"""`make demo`: the bundled sample through every asset, as runs recorded in Dagster.

The runs are created against the code location of workspace.yaml, as the UI and the daemon
create them, in the project's Dagster instance (Postgres storage): `make ui` shows each under its
job, the ranges under Backfills, and any of them can be re-executed from the UI. No daemon runs
during the demo, so the demo executes its runs itself (start the UI after it, not during).

The models are trained with the production settings (the booked-target label, the
chronological split, the unchanged promotion rules) and fewer Optuna trials and elimination
rounds, printed as such: the 150-ticker sample gives ~400 labelled trades a side. A side whose
model fails the promotion rules does not serve, and the demo says so loudly; its signals are
then not scored or traded (unless an earlier run's model still serves). Research on the whole
universe runs `breakout research`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path

from dagster import AssetKey, DagsterInstance, DagsterRunStatus, Definitions
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.execution.api import execute_run
from dagster._core.execution.asset_backfill import execute_asset_backfill_iteration
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.execution.job_backfill import execute_job_backfill_iteration
from dagster._core.execution.plan.resume_retry import ReexecutionStrategy
from dagster._core.storage.dagster_run import DagsterRun, RunsFilter
from dagster._core.utils import make_new_backfill_id
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._time import get_current_timestamp

from breakout_assets import runtime
from breakout_assets.approvals import decide
from breakout_assets.assets.common import OBSERVE_GROUP
from breakout_assets.definitions import build_definitions, build_resources
from breakout_assets.partitions import nyse_sessions, sessions_to_keys
from breakout_assets.resources.sql import query
from breakout_assets.settings import PROJECT_ROOT, BreakoutSettings

DEMO_TRAINING = {"trials": 10, "max_rounds": 3}  # fewer than production; nothing else differs

WORKSPACE_YAML = PROJECT_ROOT / "workspace.yaml"
LOCATION = "breakout"  # the code location's name in workspace.yaml
_LOG = logging.getLogger("breakout.demo")


def demo_range(settings: BreakoutSettings) -> tuple[str, str]:
    source = build_resources(settings)["market_data"].source()
    last = source.last_session() or date.today()
    sessions = nyse_sessions(settings.start_date, last)
    if not sessions:
        raise RuntimeError(f"no NYSE sessions between {settings.start_date} and {last}")
    first_key, *_, last_key = sessions_to_keys(sessions)
    return first_key, last_key


TRADING_ASSETS = ("signal_scores", "trade_plan", "fade_plan", "option_spreads")
DEMO_TRADING_SESSIONS = 250  # the last year of the sample goes through scoring and orders
DEMO_MANAGED_SESSIONS = 40  # ... and its last sessions run day by day, managing positions
# Steps in the run's own process (as the demo always ran them): the multiprocess default would
# load the code location once more for every step.
_RUN_CONFIG = {
    "loggers": {"console": {"config": {"log_level": "INFO"}}},
    "execution": {"config": {"in_process": {}}},
}


class CodeLocationLauncher:
    """Runs created against the code location of workspace.yaml, the way the UI and the daemon
    create them (remote job origin, snapshots from the location), so each one shows under its
    job and can be re-executed from the UI; a range goes through a job backfill, shown under
    Backfills. No daemon runs in the demo, so the launcher also takes the runs off the queue and
    executes them itself, in this process: a subprocess per run would load the code location
    (~9 s) for each of the demo's ~45 runs."""

    def __init__(
        self,
        instance: DagsterInstance,
        workspace_file: Path = WORKSPACE_YAML,
        location: str = LOCATION,
    ):
        self.instance = instance
        self.location = location
        self._process = WorkspaceProcessContext(
            instance, WorkspaceFileTarget(paths=[str(workspace_file)])
        )

    def __enter__(self) -> CodeLocationLauncher:
        return self

    def __exit__(self, *exc) -> None:
        self._process.__exit__(*exc)

    def _code_location(self):
        workspace = self._process.create_request_context()
        return workspace, workspace.get_code_location(self.location)

    def remote_job(self, job_name: str, selection: Sequence[AssetKey] | None = None):
        _, location = self._code_location()
        (repo_name,) = location.get_repositories()
        return location.get_job(
            JobSubsetSelector(
                location_name=self.location,
                repository_name=repo_name,
                job_name=job_name,
                op_selection=None,
                asset_selection=selection or None,
            )
        )

    def run(
        self,
        defs: Definitions,
        job_name: str,
        selection: Sequence[AssetKey] | None = None,
        run_config: Mapping | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> DagsterRun:
        """Create one run of the job (as `dagster job launch` does) and execute it."""
        _, location = self._code_location()
        remote_job = self.remote_job(job_name, selection)
        run_config = dict(run_config or {})
        plan = location.get_execution_plan(
            remote_job,
            run_config,
            step_keys_to_execute=None,
            known_state=None,
            instance=self.instance,
        )
        run = self.instance.create_run(
            job_name=job_name,
            run_id=None,
            run_config=run_config,
            resolved_op_selection=None,
            step_keys_to_execute=None,
            op_selection=None,
            status=DagsterRunStatus.NOT_STARTED,
            root_run_id=None,
            parent_run_id=None,
            tags={**remote_job.tags, **(tags or {})},
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=frozenset(selection) if selection else None,
            asset_check_selection=None,
            asset_graph=location.get_repository(
                remote_job.repository_handle.repository_name
            ).asset_graph,
        )
        return self.execute(defs, run)

    def backfill(
        self,
        defs: Definitions,
        job_name: str,
        first: str,
        last: str,
        selection: Sequence[AssetKey] | None = None,
        run_config: Mapping | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> list[DagsterRun]:
        """A job backfill of first..last (what the UI's "Launch backfill" records): the daemon's
        own iteration submits its runs (one for the range: the assets' single-run policy), this
        executes them, and the next iteration marks the backfill complete."""
        _, location = self._code_location()
        (repo_name,) = location.get_repositories()
        repo = location.get_repository(repo_name)
        partition_set = next(p for p in repo.get_partition_sets() if p.job_name == job_name)
        keys = sessions_to_keys(nyse_sessions(date.fromisoformat(first), date.fromisoformat(last)))
        backfill = PartitionBackfill(
            backfill_id=make_new_backfill_id(),
            status=BulkActionStatus.REQUESTED,
            from_failure=False,
            tags=dict(tags or {}),
            backfill_timestamp=get_current_timestamp(),
            asset_selection=list(selection) if selection else None,
            run_config=dict(run_config or {}),
            partition_set_origin=partition_set.get_remote_origin(),
            partition_names=keys,
        )
        self.instance.add_backfill(backfill)
        runs = []
        while True:
            execute_job_backfill_iteration(backfill, _LOG, self._process, None, self.instance)
            queued = self.instance.get_runs(
                RunsFilter(
                    tags=DagsterRun.tags_for_backfill_id(backfill.backfill_id),
                    statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED],
                )
            )
            if not queued:
                break
            runs += [self.execute(defs, run) for run in reversed(queued)]
        state = self.instance.get_backfill(backfill.backfill_id)
        if state is None or state.status != BulkActionStatus.COMPLETED_SUCCESS:
            raise RuntimeError(
                f"backfill {backfill.backfill_id} of {job_name} ended "
                f"{state.status if state else 'missing'}"
            )
        return runs

    def submit_asset_backfill(
        self,
        selection: Sequence[AssetKey],
        first: str,
        last: str,
        tags: Mapping[str, str] | None = None,
        run_config: Mapping | None = None,
    ) -> str:
        """Record an asset backfill of first..last, as the UI's "Materialize" of a partition
        range does: the daemon's iteration splits it by the assets' backfill policies
        (BREAKOUT_BACKFILL_CHUNK_SESSIONS) and submits a chunk only once the chunks it reads
        are materialized; the queued coordinator runs up to max_concurrent_runs side by side."""
        workspace, _ = self._code_location()
        graph = workspace.asset_graph
        keys = sessions_to_keys(nyse_sessions(date.fromisoformat(first), date.fromisoformat(last)))
        # Exactly these sessions of each asset (and the unpartitioned ones once): Dagster's
        # partition-name form would also target every session the ranges' history maps to.
        target = {
            AssetKeyPartitionKey(key, partition)
            for key in selection
            for partition in (keys if graph.get(key).is_partitioned else [None])
        }
        backfill = PartitionBackfill.from_asset_graph_subset(
            backfill_id=make_new_backfill_id(),
            backfill_timestamp=get_current_timestamp(),
            tags=dict(tags or {}),
            dynamic_partitions_store=self.instance,
            asset_graph_subset=AssetGraphSubset.from_asset_partition_set(target, graph),
            title=None,
            description=None,
            run_config=dict(run_config) if run_config else None,
        )
        self.instance.add_backfill(backfill)
        return backfill.backfill_id

    def asset_backfill(
        self,
        defs: Definitions,
        selection: Sequence[AssetKey],
        first: str,
        last: str,
        tags: Mapping[str, str] | None = None,
        on_run: Callable[[DagsterRun], None] = lambda run: None,
    ) -> list[DagsterRun]:
        """An asset backfill driven here, without a daemon: the daemon's own iteration decides
        what to submit, this executes the submitted runs one after another in this process."""
        backfill_id = self.submit_asset_backfill(selection, first, last, tags, _RUN_CONFIG)
        runs: list[DagsterRun] = []
        while True:
            current = self.instance.get_backfill(backfill_id)
            if current is None or current.status != BulkActionStatus.REQUESTED:
                break
            asyncio.run(
                execute_asset_backfill_iteration(current, _LOG, self._process, self.instance)
            )
            queued = self.instance.get_runs(
                RunsFilter(
                    tags=DagsterRun.tags_for_backfill_id(backfill_id),
                    statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED],
                )
            )
            for run in reversed(queued):
                runs.append(self.execute(defs, run))
                on_run(runs[-1])
        state = self.instance.get_backfill(backfill_id)
        if state is None or state.status != BulkActionStatus.COMPLETED_SUCCESS:
            status = state.status if state else "missing"
            raise RuntimeError(f"asset backfill {backfill_id} ended {status}")
        return runs

    def execute(self, defs: Definitions, run: DagsterRun) -> DagsterRun:
        """Take a created (or queued) run and execute it here, as the run worker would: the run
        goes STARTING, then through the job of `defs`, built from the same code and settings as
        the location's (the demo's orders runs differ only in sending to the simulated broker)."""
        self.instance.report_dagster_event(
            DagsterEvent(
                event_type_value=DagsterEventType.PIPELINE_STARTING.value, job_name=run.job_name
            ),
            run_id=run.run_id,
        )
        starting = self.instance.get_run_by_id(run.run_id)
        execute_run(InMemoryJob(defs.resolve_job_def(run.job_name)), starting, self.instance)
        return self.instance.get_run_by_id(run.run_id)

    def reexecute_from_failure(self, defs: Definitions, parent: DagsterRun) -> DagsterRun:
        """What the UI's "Re-execute from failure" does with a failed run, then executed here."""
        workspace, location = self._code_location()
        remote_job = self.remote_job(parent.job_name, sorted(parent.asset_selection or []))
        run = self.instance.create_reexecuted_run(
            parent_run=parent,
            request_context=workspace,
            code_location=location,
            remote_job=remote_job,
            strategy=ReexecutionStrategy.FROM_FAILURE,
            use_parent_run_tags=True,
        )
        return self.execute(defs, run)


def _execute(
    launcher: CodeLocationLauncher,
    defs: Definitions,
    job_name: str,
    echo,
    selection=None,
    first=None,
    last=None,
    run_config=None,
) -> None:
    """One run of `job_name`, or a backfill of first..last; stops the demo on a failure."""
    run_config = {**_RUN_CONFIG, **(run_config or {})}
    tags = {"breakout/preset": "demo"}
    if first and first != last:
        runs = launcher.backfill(defs, job_name, first, last, selection, run_config, tags)
    elif first:
        runs = [
            launcher.run(
                defs, job_name, selection, run_config, {**tags, "dagster/partition": first}
            )
        ]
    else:
        runs = [launcher.run(defs, job_name, selection, run_config, tags)]
    for run in runs:
        if run.status != DagsterRunStatus.SUCCESS:
            raise RuntimeError(
                f"run {run.run_id} ({job_name}) ended {run.status.value}: "
                "see it in the Dagster UI (`make ui`)"
            )
        backfill = run.tags.get("dagster/backfill")
        echo(
            f"      run {run.run_id} ({job_name}{', backfill ' + backfill if backfill else ''})"
            " succeeded"
        )


def run_demo(settings: BreakoutSettings, echo: Callable[[str], None] = print) -> dict:
    started = time.perf_counter()
    echo("[1/6] starting Postgres and Dagster's instance storage ...")
    runtime.apply_dagster_environment(settings)
    echo(f"      data: {runtime.data_url(settings)}")
    defs = build_definitions(settings)
    first, last = demo_range(settings)
    echo(
        f"[2/6] backfilling {first}..{last} from '{settings.data_source}': bars, features, "
        "signals, outcomes, as one run ..."
    )
    observe = observe_assets(defs)
    history = [
        k
        for k in defs.resolve_job_def("daily_pipeline").asset_layer.executable_asset_keys
        if k.to_user_string() not in TRADING_ASSETS and k not in observe
    ]
    with DagsterInstance.get() as instance, CodeLocationLauncher(instance) as launcher:
        _execute(launcher, defs, "daily_pipeline", echo, selection=history, first=first, last=last)
        train_demo_models(settings, echo, launcher)
        first_trade, last_trade = trade_demo_year(settings, last, echo, launcher)
        observe_demo_year(settings, first_trade, last_trade, echo, launcher)
    echo("[6/6] summary")
    summary = _summary(settings, first, last)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    for key, value in summary.items():
        echo(
            f"      {key:>20}: {value:,}" if isinstance(value, int) else f"      {key:>20}: {value}"
        )
    echo("Open the Dagster UI with `make ui` (http://127.0.0.1:3000) to see the runs and assets.")
    echo(
        "Start the operator dashboard with `make dashboard` (http://127.0.0.1:8501): journal, "
        "equity, positions, approvals, kill switch, models, drift, runs."
    )
    return summary


def observe_assets(defs: Definitions) -> set[AssetKey]:
    """The observe layer's assets (journal, daily report, drift watch): run after the trades."""
    graph = defs.resolve_asset_graph()
    return {key for key in graph.get_all_asset_keys() if graph.get(key).group_name == OBSERVE_GROUP}


def observe_demo_year(
    settings: BreakoutSettings,
    first_trade: str,
    last_trade: str,
    echo: Callable[[str], None],
    launcher: CodeLocationLauncher,
) -> None:
    """The journal, a daily report per trading session and the drift watch, as one range run."""
    echo(f"[5/6] journal, daily reports and drift watch for {first_trade}..{last_trade} ...")
    defs = build_definitions(settings)
    _execute(
        launcher,
        defs,
        "daily_pipeline",
        echo,
        selection=sorted(observe_assets(defs)),
        first=first_trade,
        last=last_trade,
    )
    report = settings.reports_dir / last_trade / "report.html"
    echo(f"      the last session's report: {report}" + ("" if report.exists() else " (missing)"))
    echo(
        "      email: "
        + (
            f"sent through {settings.smtp_host} to {', '.join(settings.smtp_to)}"
            if settings.smtp_host and settings.smtp_to
            else "not configured (set BREAKOUT_SMTP_HOST and BREAKOUT_SMTP_TO to receive it)"
        )
    )


def train_demo_models(
    settings: BreakoutSettings, echo: Callable[[str], None], launcher: CodeLocationLauncher
) -> None:
    echo(f"[3/6] training both models with the production settings, fewer trials: {DEMO_TRAINING}")
    defs = build_definitions(settings)
    run_config = {"ops": {f"{side}_model": {"config": DEMO_TRAINING} for side in ("long", "short")}}
    _execute(launcher, defs, "train_models", echo, run_config=run_config)
    postgres = build_resources(settings)["postgres"]
    with postgres.transaction() as conn:
        latest = conn.execute(query("demo.latest_experiments")).mappings().all()
    for run in latest:
        metrics = run["metrics"]["metrics"]
        echo(
            f"      {run['side']}: {run['experiment_id']} AUC {metrics['roc_auc']:.3f}, "
            f"ECE {metrics['ece']:.3f}: "
            f"{'PROMOTED, it serves' if run['promoted'] else 'not promoted'}"
        )
        if not run["promoted"]:
            failed = [c["rule"] for c in run["promotion"]["checks"] if not c["passed"]]
            echo(
                f"      !!! THE {run['side'].upper()} MODEL FAILED THE PROMOTION RULES "
                f"({'; '.join(failed)}): it does not serve. {run['side']} signals are scored "
                "only by a model an earlier run promoted, else not at all."
            )


def trade_demo_year(
    settings: BreakoutSettings,
    last: str,
    echo: Callable[[str], None],
    launcher: CodeLocationLauncher,
) -> tuple[str, str]:
    """Score, plan, approve and send the last year's signals to the simulated broker; returns
    the first and last trading session."""
    if settings.broker != "simulated":
        raise RuntimeError("the demo sends orders, so it only runs with the simulated broker")
    sessions = nyse_sessions(
        date.fromisoformat(last) - timedelta(days=400), date.fromisoformat(last)
    )[-DEMO_TRADING_SESSIONS:]
    first_trade, last_trade = str(sessions[0]), str(sessions[-1])
    echo(f"[4/6] trading {first_trade}..{last_trade}: scores and plans, approval, orders")
    postgres = build_resources(settings)["postgres"]
    if settings.database_url:  # never wipe decisions in a database the demo does not own
        echo("      external database: the trading tables are kept as they are")
    else:
        with postgres.transaction() as conn:
            conn.execute(query("demo.reset_trading"))
        echo("      the demo's simulated account starts fresh (demo tables reset)")
    defs = build_definitions(settings)
    trading = [
        k
        for k in defs.resolve_job_def("daily_pipeline").asset_layer.executable_asset_keys
        if k.to_user_string() in TRADING_ASSETS
    ]
    _execute(
        launcher,
        defs,
        "daily_pipeline",
        echo,
        selection=trading,
        first=first_trade,
        last=last_trade,
    )
    approved = sum(
        len(decide(postgres, session, True, "demo (make demo approves on your behalf)"))
        for session in sessions
    )
    echo(f"      APPROVED BY THE DEMO on your behalf: {approved} plans (stock, fades, spreads)")
    echo(
        f"      option spreads in {settings.options.mode} mode on the "
        f"{settings.options.chain_source} option chain, sent in the day-by-day sessions below "
        "(BREAKOUT_OPTIONS__MODE=off: none)"
    )
    echo("      orders go to the SIMULATED broker (not dry-run): nothing leaves this machine")
    live_sim = build_definitions(settings.model_copy(update={"dry_run": False}))
    # The fresh account opens on the first trading session, so the fades of the range run
    # (sent after the primaries' step) never fall before the account's first session.
    with build_resources(settings)["broker"].session() as connected:
        connected.sync(sessions[0])
    head, tail = sessions[:-DEMO_MANAGED_SESSIONS], sessions[-DEMO_MANAGED_SESSIONS:]
    orders_only = [
        k
        for k in live_sim.resolve_job_def("submit_orders").asset_layer.executable_asset_keys
        # the spreads go out day by day below: one simulated account clock cannot serve two
        # sending assets walking the same range (the second would find its orders stale)
        if k.to_user_string() in ("broker_orders", "opposing_orders")
    ]
    _execute(
        launcher,
        live_sim,
        "submit_orders",
        echo,
        selection=orders_only,
        first=str(head[0]),
        last=str(head[-1]),
    )
    echo(
        f"      then day by day for the last {len(tail)} sessions: orders and position "
        "management (breakeven, add-on, trail, take-profit, expiry)"
    )
    for session in tail:
        _execute(
            launcher,
            live_sim,
            "submit_orders",
            lambda _: None,
            first=str(session),
            last=str(session),
        )
    return first_trade, last_trade


def _summary(settings: BreakoutSettings, first: str, last: str) -> dict:
    postgres = build_resources(settings)["postgres"]
    with postgres.transaction() as conn:
        row = conn.execute(query("demo.summary")).mappings().one()
        trading = conn.execute(query("demo.trading_summary")).mappings().one()
    return {"range": f"{first}..{last}", **row, **trading}

"""`make demo`: the bundled sample through every asset, as runs recorded in Dagster.

The runs go into the project's Dagster instance (Postgres storage), so `make ui` shows them
afterwards like any run launched from the UI.

The models are trained with the production settings (the booked-target label, the
chronological split, the unchanged promotion rules) and fewer Optuna trials and elimination
rounds, printed as such: the 150-ticker sample gives ~400 labelled trades a side. A side whose
model fails the promotion rules does not serve, and the demo says so loudly; its signals are
then not scored or traded (unless an earlier run's model still serves). Research on the whole
universe runs `breakout research`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta

from dagster import DagsterInstance

from breakout_assets import runtime
from breakout_assets.approvals import decide
from breakout_assets.definitions import build_definitions, build_resources
from breakout_assets.partitions import nyse_sessions, sessions_to_keys
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings

DEMO_TRAINING = {"trials": 10, "max_rounds": 3}  # fewer than production; nothing else differs

_RANGE_START = "dagster/asset_partition_range_start"
_RANGE_END = "dagster/asset_partition_range_end"


def demo_range(settings: BreakoutSettings) -> tuple[str, str]:
    source = build_resources(settings)["market_data"].source()
    last = source.last_session() or date.today()
    sessions = nyse_sessions(settings.start_date, last)
    if not sessions:
        raise RuntimeError(f"no NYSE sessions between {settings.start_date} and {last}")
    first_key, *_, last_key = sessions_to_keys(sessions)
    return first_key, last_key


TRADING_ASSETS = ("signal_scores", "trade_plan", "fade_plan")
DEMO_TRADING_SESSIONS = 250  # the last year of the sample goes through scoring and orders
DEMO_MANAGED_SESSIONS = 40  # ... and its last sessions run day by day, managing positions
_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _execute(defs, job_name: str, echo, selection=None, first=None, last=None,
             run_config=None, tags=None) -> None:
    job = defs.resolve_job_def(job_name)
    range_tags = {_RANGE_START: first, _RANGE_END: last} if first else {}
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, asset_selection=selection, run_config={**_LOGS, **(run_config or {})},
            tags={**range_tags, "breakout/preset": "demo", **(tags or {})})
    echo(f"      run {result.run_id} ({job_name}) succeeded")


def run_demo(settings: BreakoutSettings, echo: Callable[[str], None] = print) -> dict:
    started = time.perf_counter()
    echo("[1/5] starting Postgres and Dagster's instance storage ...")
    runtime.apply_dagster_environment(settings)
    echo(f"      data: {runtime.data_url(settings)}")
    defs = build_definitions(settings)
    first, last = demo_range(settings)
    echo(f"[2/5] backfilling {first}..{last} from '{settings.data_source}': bars, features, "
         "signals, outcomes, as one run ...")
    history = [k for k in defs.resolve_job_def("daily_pipeline").asset_layer.executable_asset_keys
               if k.to_user_string() not in TRADING_ASSETS]
    _execute(defs, "daily_pipeline", echo, selection=history, first=first, last=last)
    train_demo_models(settings, echo)
    trade_demo_year(settings, last, echo)
    echo("[5/5] summary")
    summary = _summary(settings, first, last)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    for key, value in summary.items():
        echo(f"      {key:>20}: {value:,}" if isinstance(value, int) else f"      {key:>20}: {value}")
    echo("Open the Dagster UI with `make ui` (http://127.0.0.1:3000) to see the runs and assets.")
    return summary


def train_demo_models(settings: BreakoutSettings, echo: Callable[[str], None]) -> None:
    echo("[3/5] training both models with the production settings, fewer trials: "
         f"{DEMO_TRAINING}")
    defs = build_definitions(settings)
    run_config = {"ops": {f"{side}_model": {"config": DEMO_TRAINING} for side in ("long", "short")}}
    _execute(defs, "train_models", echo, run_config=run_config)
    postgres = build_resources(settings)["postgres"]
    with postgres.transaction() as conn:
        latest = conn.execute(query("demo.latest_experiments")).mappings().all()
    for run in latest:
        metrics = run["metrics"]["metrics"]
        echo(f"      {run['side']}: {run['experiment_id']} AUC {metrics['roc_auc']:.3f}, "
             f"ECE {metrics['ece']:.3f}: "
             f"{'PROMOTED, it serves' if run['promoted'] else 'not promoted'}")
        if not run["promoted"]:
            failed = [c["rule"] for c in run["promotion"]["checks"] if not c["passed"]]
            echo(f"      !!! THE {run['side'].upper()} MODEL FAILED THE PROMOTION RULES "
                 f"({'; '.join(failed)}): it does not serve. {run['side']} signals are scored "
                 "only by a model an earlier run promoted, else not at all.")


def trade_demo_year(settings: BreakoutSettings, last: str, echo: Callable[[str], None]) -> None:
    """Score, plan, approve and send the last year's signals to the simulated broker."""
    if settings.broker != "simulated":
        raise RuntimeError("the demo sends orders, so it only runs with the simulated broker")
    sessions = nyse_sessions(date.fromisoformat(last) - timedelta(days=400),
                             date.fromisoformat(last))[-DEMO_TRADING_SESSIONS:]
    first_trade, last_trade = str(sessions[0]), str(sessions[-1])
    echo(f"[4/5] trading {first_trade}..{last_trade}: scores and plans, approval, orders")
    postgres = build_resources(settings)["postgres"]
    if settings.database_url:  # never wipe decisions in a database the demo does not own
        echo("      external database: the trading tables are kept as they are")
    else:
        with postgres.transaction() as conn:
            conn.execute(query("demo.reset_trading"))
        echo("      the demo's simulated account starts fresh (demo tables reset)")
    defs = build_definitions(settings)
    trading = [k for k in defs.resolve_job_def("daily_pipeline").asset_layer.executable_asset_keys
               if k.to_user_string() in TRADING_ASSETS]
    _execute(defs, "daily_pipeline", echo, selection=trading, first=first_trade, last=last_trade)
    approved = sum(len(decide(postgres, session, True, "demo (make demo approves on your behalf)"))
                   for session in sessions)
    echo(f"      APPROVED BY THE DEMO on your behalf: {approved} plans")
    echo("      orders go to the SIMULATED broker (not dry-run): nothing leaves this machine")
    live_sim = build_definitions(settings.model_copy(update={"dry_run": False}))
    # The fresh account opens on the first trading session, so the fades of the range run
    # (sent after the primaries' step) never fall before the account's first session.
    with build_resources(settings)["broker"].session() as connected:
        connected.sync(sessions[0])
    head, tail = sessions[:-DEMO_MANAGED_SESSIONS], sessions[-DEMO_MANAGED_SESSIONS:]
    orders_only = [k for k in live_sim.resolve_job_def("submit_orders").asset_layer
                   .executable_asset_keys
                   if k.to_user_string() in ("broker_orders", "opposing_orders")]
    _execute(live_sim, "submit_orders", echo, selection=orders_only, first=str(head[0]),
             last=str(head[-1]))
    echo(f"      then day by day for the last {len(tail)} sessions: orders and position "
         "management (breakeven, add-on, trail, take-profit, expiry)")
    for session in tail:
        _execute(live_sim, "submit_orders", lambda _: None, first=str(session),
                 last=str(session))


def _summary(settings: BreakoutSettings, first: str, last: str) -> dict:
    postgres = build_resources(settings)["postgres"]
    with postgres.transaction() as conn:
        row = conn.execute(query("demo.summary")).mappings().one()
        trading = conn.execute(query("demo.trading_summary")).mappings().one()
    return {"range": f"{first}..{last}", **row, **trading}

"""The whole market end to end through Dagster itself, printed as figures (issue 15).

A synthetic market (default 10,000 tickers x 10 years, BREAKOUT_DATA_SOURCE=synthetic) in a
temporary embedded Postgres, each part run the way a user runs it:

1. **Full backfill**, `market_bars`, `index_bars`, `ticker_reference`, `daily_features`,
   `breakout_signals`, `signal_outcomes` over the whole range, as an asset backfill submitted
   like `breakout backfill` and executed by a real `dagster-daemon` with the repo's dagster.yaml
   (queued coordinator, max_concurrent_runs 2, a subprocess per run), twice, each into its own
   databases:
   - single-run: one run per asset over the whole range (BREAKOUT_BACKFILL_CHUNK_SESSIONS unset);
   - chunked: runs of `--chunk` sessions, up to two at once (the 2 local workers).
   Per asset: the seconds its steps ran (summed over its runs) and the wall-clock span from its
   first run's start to its last run's end; the total is submit -> backfill complete.
2. **One live session** of every ticker in the single-run database, after a model per side was
   trained on that history (`train_models`, few trials) and served (forced past the promotion
   rules if a random-walk market fails them: the timing needs a model, not an edge): one
   `daily_pipeline` run of market_bars, index_bars, daily_features, breakout_signals,
   signal_scores, trade_plan for the next session, in-process steps. Per asset: step seconds.

Run: `.venv/bin/python benchmarks/bench_end_to_end.py [--tickers N --years Y --chunk S
--skip-chunked --skip-live]`. Targets on 2 cores: full backfill <= 15 min, one session <= 5 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from breakout_assets.cli import HISTORY_ASSETS as HISTORY  # noqa: E402  what `breakout backfill` fills

LIVE = (
    "market_bars",
    "index_bars",
    "daily_features",
    "breakout_signals",
    "signal_scores",
    "trade_plan",
)
IN_PROCESS = {
    "execution": {"config": {"in_process": {}}},
    "loggers": {"console": {"config": {"log_level": "WARNING"}}},
}
TRAINING = {"trials": 3, "max_rounds": 1, "folds": 3}


def _line(label: str, value: str) -> None:
    print(f"{label:<58} {value}", flush=True)


def _environment(
    server_url: str, label: str, home: Path, args, last: date, *, fresh: bool = True
) -> None:
    """The variables a user sets, for this process and the daemon it starts; `fresh` creates
    the mode's databases anew, else the kept ones are used."""
    from breakout_assets import runtime
    from breakout_assets.resources import local_postgres
    from breakout_assets.settings import load_settings

    def database(name: str, dagster: bool = False) -> str:
        if fresh:
            return local_postgres.recreate_database(server_url, name, dagster=dagster)
        return local_postgres.with_database(server_url, name)

    os.environ.update(
        {
            "BREAKOUT_DATABASE_URL": database(f"e2e_{label}"),
            "BREAKOUT_DAGSTER_DATABASE_URL": database(f"dagster_{label}", dagster=True),
            "BREAKOUT_DAGSTER_HOME": str(home / label),
            "BREAKOUT_DATA_SOURCE": "synthetic",
            "BREAKOUT_SYNTHETIC_TICKERS": str(args.tickers),
            "BREAKOUT_START_DATE": args.first.isoformat(),
            "BREAKOUT_END_DATE": last.isoformat(),
        }
    )
    if label == "chunked":
        os.environ["BREAKOUT_BACKFILL_CHUNK_SESSIONS"] = str(args.chunk)
    else:
        os.environ.pop("BREAKOUT_BACKFILL_CHUNK_SESSIONS", None)
    runtime.apply_dagster_environment(load_settings())


def _stage_figures(instance, runs) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds each asset's steps ran (summed) and the wall span of its runs; the key "" holds
    the span from the first step's start to the last step's end over all runs."""
    busy: dict[str, float] = defaultdict(float)
    spans: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        for step in instance.get_run_step_stats(run.run_id):
            if step.start_time is None or step.end_time is None:
                continue
            busy[step.step_key] += step.end_time - step.start_time
            spans[step.step_key] += [step.start_time, step.end_time]
            spans[""] += [step.start_time, step.end_time]
    return busy, {key: max(times) - min(times) for key, times in spans.items()}


def backfill(label: str, first: date, last: date) -> None:
    """Submit the backfill as `breakout backfill` does; a real daemon runs it."""
    from dagster import AssetKey, DagsterInstance, RunsFilter
    from dagster._core.execution.backfill import BulkActionStatus

    from breakout_assets.demo import CodeLocationLauncher

    log = Path(os.environ["DAGSTER_HOME"]) / "daemon.log"
    with DagsterInstance.get() as instance, CodeLocationLauncher(instance) as launcher:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=ROOT,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            started = time.perf_counter()
            backfill_id = launcher.submit_asset_backfill(
                [AssetKey(name) for name in HISTORY], first.isoformat(), last.isoformat()
            )
            while True:
                state = instance.get_backfill(backfill_id)
                if state is not None and state.status != BulkActionStatus.REQUESTED:
                    break
                if daemon.poll() is not None:
                    raise RuntimeError(f"the daemon exited; see {log}")
                time.sleep(2)
            total = time.perf_counter() - started
        finally:
            daemon.terminate()
            daemon.wait(60)
        runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
        if state.status != BulkActionStatus.COMPLETED_SUCCESS:
            raise RuntimeError(f"backfill {backfill_id} ended {state.status}; see {log}")
        busy, spans = _stage_figures(instance, runs)
    for name in HISTORY:
        _line(f"  {name}", f"steps {busy.get(name, 0):7.1f}s   span {spans.get(name, 0):7.1f}s")
    _line(f"{label}: first step start -> last step end", f"{spans.get('', 0):.1f}s")
    _line(f"{label}: {len(runs)} runs, total (submit -> complete)", f"{total:.1f}s")


def live_session(session: date) -> None:
    """Train and serve a model per side on the stored history, then one session's run."""
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus

    from breakout_assets.definitions import build_definitions
    from breakout_assets.demo import CodeLocationLauncher
    from breakout_assets.model_admin import list_models, promote
    from breakout_assets.settings import load_settings

    settings = load_settings()
    defs = build_definitions(settings)
    with DagsterInstance.get() as instance, CodeLocationLauncher(instance) as launcher:
        started = time.perf_counter()
        config = {"ops": {f"{s}_model": {"config": TRAINING} for s in ("long", "short")}}
        run = launcher.run(defs, "train_models", run_config={**IN_PROCESS, **config})
        if run.status != DagsterRunStatus.SUCCESS:
            raise RuntimeError(f"train_models ended {run.status}")
        models = list_models(settings)
        for side in ("long", "short"):
            latest = models[models["side"] == side].iloc[-1]  # ordered by creation
            promote(settings, str(latest["experiment_id"]), force=True)
        _line(f"train_models ({TRAINING}) and serve", f"{time.perf_counter() - started:.1f}s")

        selection = [AssetKey(name) for name in LIVE]
        timings, steps = [], []
        for _ in range(2):  # the second is a re-run of the same session (the daily re-run)
            started = time.perf_counter()
            run = launcher.run(
                defs,
                "daily_pipeline",
                selection,
                IN_PROCESS,
                {"dagster/partition": session.isoformat()},
            )
            timings.append(time.perf_counter() - started)
            if run.status != DagsterRunStatus.SUCCESS:
                raise RuntimeError(f"daily_pipeline {session} ended {run.status}")
            steps.append(_stage_figures(instance, [run])[0])
    print("one live session, steps (first run / re-run):", flush=True)
    for name in LIVE:
        _line(f"  {name}", f"{steps[0].get(name, 0):.2f}s / {steps[1].get(name, 0):.2f}s")
    _line(
        "  sum of the steps (checks included)", " / ".join(f"{sum(b.values()):.2f}s" for b in steps)
    )
    _line(
        f"one session {session}, whole run with Dagster (first / re-run)",
        f"{timings[0]:.2f}s / {timings[1]:.2f}s",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=10_000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument(
        "--first", type=date.fromisoformat, default=date(2015, 1, 2), help="the synthetic origin"
    )
    parser.add_argument("--chunk", type=int, default=250, help="sessions per chunked run")
    parser.add_argument("--skip-chunked", action="store_true")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument(
        "--skip-backfill", action="store_true", help="only the live session, on a --keep DIR"
    )
    parser.add_argument("--keep", type=Path, help="keep the server and databases in DIR")
    args = parser.parse_args()
    if args.skip_backfill and args.keep is None:
        parser.error("--skip-backfill needs the --keep DIR of an earlier run")

    from breakout_assets.partitions import nyse_sessions
    from breakout_assets.resources import local_postgres

    sessions = nyse_sessions(args.first, date(args.first.year + args.years + 1, 1, 1))
    history, live = sessions[: args.years * 252], sessions[args.years * 252]
    first, last = history[0], history[-1]
    work = args.keep or Path(tempfile.mkdtemp(prefix="breakout-e2e-"))
    server = local_postgres.ensure_local_server(work / "pg")
    _line("market", f"{args.tickers:,} tickers x {len(history)} sessions {first}..{last}")
    try:
        modes = [] if args.skip_backfill else ["single"]
        modes += [] if args.skip_chunked or args.skip_backfill else ["chunked"]
        for label in modes:
            _environment(server, label, work, args, live)
            print(
                f"{label}: "
                + ("one run per asset" if label == "single" else f"runs of {args.chunk} sessions")
                + ", 2 concurrent runs",
                flush=True,
            )
            backfill(label, first, last)
        if not args.skip_live:
            _environment(server, "single", work, args, live, fresh=False)
            live_session(live)
    finally:
        if args.keep is None:
            local_postgres.stop_local_server(work / "pg")
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

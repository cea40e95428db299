"""`make demo`: the bundled sample through every asset, as one run recorded in Dagster.

The run goes into the project's Dagster instance (Postgres storage), so `make ui` shows it
afterwards like any run launched from the UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

from dagster import DagsterInstance

from breakout_assets import runtime
from breakout_assets.definitions import build_definitions, build_resources
from breakout_assets.partitions import nyse_sessions, sessions_to_keys
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings

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


def run_demo(settings: BreakoutSettings, echo: Callable[[str], None] = print) -> dict:
    started = time.perf_counter()
    echo("[1/3] starting Postgres and Dagster's instance storage ...")
    runtime.apply_dagster_environment(settings)
    echo(f"      data: {runtime.data_url(settings)}")
    defs = build_definitions(settings)
    first, last = demo_range(settings)
    echo(f"[2/3] backfilling {first}..{last} from '{settings.data_source}' as one run ...")
    job = defs.resolve_job_def("daily_pipeline")
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags={_RANGE_START: first, _RANGE_END: last},
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
    echo(f"      run {result.run_id} succeeded")
    echo("[3/3] summary")
    summary = _summary(settings, first, last)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    for key, value in summary.items():
        echo(f"      {key:>20}: {value:,}" if isinstance(value, int) else f"      {key:>20}: {value}")
    echo("Open the Dagster UI with `make ui` (http://127.0.0.1:3000) to see the run and assets.")
    return summary


def _summary(settings: BreakoutSettings, first: str, last: str) -> dict:
    postgres = build_resources(settings)["postgres"]
    with postgres.transaction() as conn:
        row = conn.execute(query("demo.summary")).mappings().one()
    return {"range": f"{first}..{last}", **row}

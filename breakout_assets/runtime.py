"""The process environment Dagster needs: DAGSTER_HOME and its storage URL.

The repo's `dagster.yaml` reads its Postgres URL from BREAKOUT_DAGSTER_PG_URL. Here that URL is
derived from the settings (the embedded server's `dagster` database by default) and
DAGSTER_HOME points at a git-ignored folder that links the repo's `dagster.yaml`.
"""

from __future__ import annotations

import os
from pathlib import Path

from breakout_assets.resources import local_postgres
from breakout_assets.resources.postgres import check_reachable, resolve_url
from breakout_assets.settings import PROJECT_ROOT, BreakoutSettings

DAGSTER_YAML = PROJECT_ROOT / "dagster.yaml"
DAGSTER_URL_VAR = "BREAKOUT_DAGSTER_PG_URL"


def data_url(settings: BreakoutSettings) -> str:
    return resolve_url(settings.database_url, settings.pg_data_dir)


def dagster_storage_url(settings: BreakoutSettings) -> str:
    """psycopg2 URL (dagster-postgres needs that driver) of Dagster's storage database."""
    if settings.dagster_database_url:
        url = settings.dagster_database_url
    elif settings.database_url:
        url = settings.database_url
    else:
        url = local_postgres.with_database(data_url(settings), local_postgres.DAGSTER_DATABASE)
    return local_postgres.with_driver(url, "psycopg2")


def prepare_dagster_home(settings: BreakoutSettings) -> Path:
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    link = home / "dagster.yaml"
    if not link.exists():
        link.symlink_to(DAGSTER_YAML)
    return home


def dagster_environment(settings: BreakoutSettings) -> dict[str, str]:
    """Variables to add to the environment of any Dagster process for this project."""
    return {
        "DAGSTER_HOME": str(prepare_dagster_home(settings)),
        DAGSTER_URL_VAR: dagster_storage_url(settings),
        # A range run emits one materialization per session per asset (thousands in a
        # backfill); storing them in batches turns minutes of event writes into seconds.
        "DAGSTER_EVENT_BATCH_SIZE": os.environ.get("DAGSTER_EVENT_BATCH_SIZE", "1000"),
        # DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS stays off: with it a failed range
        # run's sessions show as missing, not failed, on the asset's partitions.
    }


def apply_dagster_environment(settings: BreakoutSettings) -> dict[str, str]:
    """Set the variables for a Dagster process about to start. A configured storage URL must
    answer first: Dagster would retry it for a while, then fail without naming the variable."""
    for field in ("dagster_database_url", "database_url"):
        if url := getattr(settings, field):
            check_reachable(url, settings.env_name(field))
            break
    env = dagster_environment(settings)
    os.environ.update(env)
    return env

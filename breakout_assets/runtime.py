"""The process environment Dagster needs: DAGSTER_HOME and its storage URL.

The repo's `dagster.yaml` reads its Postgres URL from BREAKOUT_DAGSTER_PG_URL. Here that URL is
derived from the settings (the embedded server's `dagster` database by default). DAGSTER_HOME
is the project root, where `dagster.yaml` is (Dagster's own convention: `dagster dev` warns
that a dagster.yaml in the working directory "will not be used" whenever DAGSTER_HOME is
elsewhere); a BREAKOUT_DAGSTER_HOME set on purpose is a folder that links the repo's file.
Every `breakout` command that starts Dagster also writes both variables to the git-ignored
`.env`, which `dagster`/`dg` load from the working directory: plain `dagster ...` from the
project root then uses the same instance.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import pg_url_from_config

from breakout_assets.resources import local_postgres
from breakout_assets.resources.postgres import DatabaseUnreachable, check_reachable, resolve_url
from breakout_assets.settings import PROJECT_ROOT, BreakoutSettings

DAGSTER_YAML = PROJECT_ROOT / "dagster.yaml"
DAGSTER_URL_VAR = "BREAKOUT_DAGSTER_PG_URL"
DOTENV = PROJECT_ROOT / ".env"
_DEFAULT_HOME = BreakoutSettings.model_fields["dagster_home"].default


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
    """The project root unless another home is configured; that one links dagster.yaml."""
    if Path(settings.dagster_home).resolve() == Path(_DEFAULT_HOME).resolve():
        return PROJECT_ROOT
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
    if env["DAGSTER_HOME"] == str(PROJECT_ROOT):
        write_dotenv(env)
    return env


def write_dotenv(env: dict[str, str], path: Path = DOTENV) -> Path:
    """The variables for plain `dagster`/`dg` commands in the project root. Git-ignored and
    owner-only: a configured storage URL may hold a password. Each is a default
    (`${NAME:-value}`): Dagster lets `.env` override the environment, and a process that sets
    its own instance (`breakout dagster` with another home, the tests) must keep it. Lines of
    other variables a user keeps in the file stay."""
    kept = []
    if path.exists():
        kept = [
            line
            for line in path.read_text().splitlines()
            if line.partition("=")[0].strip() not in env
        ]
    lines = [*kept, *(f"{name}=${{{name}:-{value}}}" for name, value in env.items())]
    path.touch()
    path.chmod(0o600)
    path.write_text("\n".join(lines) + "\n")
    return path


class ProjectPostgresStorage(DagsterPostgresStorage):
    """dagster-postgres storage that names the fix when the embedded server is down.

    Plain `dagster ...` in the project root reads the URL from `.env`; with the embedded server
    stopped, dagster-postgres would retry for a while and end in a traceback. For a socket URL
    (the embedded server) one connection is tried first and a failure is one line on stderr, exit
    code 2. A networked server (docker-compose) keeps dagster-postgres' own retries.
    """

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        url = pg_url_from_config(config_value)
        if "host=/" in url:
            try:
                check_reachable(url, DAGSTER_URL_VAR, timeout_s=3)
            except DatabaseUnreachable as exc:
                sys.stderr.write(
                    f"Error: {exc}. Start the embedded server with "
                    "`make db-url` (or run `make demo`).\n"
                )
                raise SystemExit(2) from None
        return super().from_config_value(inst_data, config_value)

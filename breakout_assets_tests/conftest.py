"""Test fixtures: a real Postgres server for the whole session, a fresh database per test.

The server is the same embedded Postgres the project uses (pgserver), started in a temporary
directory and stopped at the end. Each test gets its own database cloned from a migrated
template, so tests are isolated and cheap.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from breakout_assets.resources import local_postgres
from breakout_assets.resources.migrations import apply_migrations
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.settings import PROJECT_ROOT, BreakoutSettings, load_settings
from breakout_assets_tests import helpers

# Range runs store their events in batches, as the project's instance does
# (runtime.dagster_environment).
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")
# The project plans one event per session of a range run (the partition-subset event off), so
# a failed session shows as failed; that costs ~3x the event writes of a long backfill. Most
# tests only need the rows a range run writes, so they plan the range as one event; the tests
# of partition status and of the demo's runs switch it off, as the project runs (`PER_SESSION`).
PARTITION_SUBSET_EVENTS = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
os.environ.setdefault(PARTITION_SUBSET_EVENTS, "true")


@pytest.fixture
def per_session_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Range runs plan one event per session, as the project's instance does."""
    monkeypatch.delenv(PARTITION_SUBSET_EVENTS, raising=False)


SAMPLE_DIR = PROJECT_ROOT / "sample_data"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
_TEMPLATE = "breakout_template"
_counter = itertools.count()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No BREAKOUT_* variable of the developer's shell leaks into a test, and no test writes
    into the repo's model_store/ or reports/."""
    for name in list(os.environ):
        if name.startswith("BREAKOUT_") or name in ("DATABASE_URL", "POLYGON_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BREAKOUT_MODEL_STORE_DIR", str(tmp_path / "model_store"))
    monkeypatch.setenv("BREAKOUT_REPORTS_DIR", str(tmp_path / "reports"))


MAX_CONNECTIONS = 400


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """libpq URL of a Postgres server (any database), up for the whole test session."""
    data_dir = Path(tempfile.mkdtemp(prefix="breakout-pg-"))
    url = local_postgres.ensure_local_server(data_dir)
    admin = create_engine(local_postgres.with_driver(url, "psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        # every test has a database of its own, and the pools of finished tests keep their idle
        # connections until collected: the default 100 runs out over the whole suite
        conn.execute(text(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}"))
    admin.dispose()
    local_postgres.restart_local_server(data_dir)
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {_TEMPLATE}"))
    template = create_engine(
        local_postgres.with_driver(local_postgres.with_database(url, _TEMPLATE), "psycopg")
    )
    apply_migrations(template)
    template.dispose()
    yield url
    admin.dispose()
    local_postgres.stop_local_server(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


def new_database(server_url: str, template: str = _TEMPLATE) -> str:
    name = f"t{os.getpid()}_{next(_counter)}"
    admin = create_engine(
        local_postgres.with_driver(server_url, "psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
    admin.dispose()
    return local_postgres.with_database(server_url, name)


@pytest.fixture(scope="session")
def dagster_instance(pg_server: str, tmp_path_factory: pytest.TempPathFactory):
    """A Dagster instance on Postgres, configured by the repo's own dagster.yaml.

    Dagster's ephemeral (SQLite) instance stores a range run's thousands of events one by one;
    the Postgres instance the project really uses batches them, and is what we want to test.
    """
    from dagster import DagsterInstance

    from breakout_assets import runtime

    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").symlink_to(runtime.DAGSTER_YAML)
    os.environ[runtime.DAGSTER_URL_VAR] = local_postgres.with_driver(
        new_database(pg_server, template="template1"), "psycopg2"
    )
    instance = DagsterInstance.from_config(str(home))
    helpers.DEFAULT_INSTANCE = instance
    yield instance
    helpers.DEFAULT_INSTANCE = None
    instance.dispose()


@pytest.fixture
def database_url(pg_server: str, dagster_instance) -> str:
    """A fresh, migrated database for this test."""
    return new_database(pg_server)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> BreakoutSettings:
    return load_settings(
        database_url=database_url,
        files_dir=SAMPLE_DIR,
        dagster_home=tmp_path / "dagster_home",
    )


@pytest.fixture
def postgres(database_url: str) -> PostgresResource:
    return PostgresResource(database_url=database_url, local_data_dir="unused")

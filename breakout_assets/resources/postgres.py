"""PostgresResource: the one door to the database (SQLAlchemy 2 + psycopg 3).

With no URL configured it starts the project's embedded server (see `local_postgres`). The
schema is migrated the first time a process touches a database, so every run sees the current
schema without a separate setup step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import Connection, Engine, create_engine

from breakout_assets.resources import local_postgres
from breakout_assets.resources.migrations import apply_migrations


@lru_cache(maxsize=None)
def _engine(url: str) -> Engine:
    engine = create_engine(
        local_postgres.with_driver(url, "psycopg"), pool_pre_ping=True, pool_size=4
    )
    apply_migrations(engine)
    return engine


@lru_cache(maxsize=None)
def resolve_url(database_url: str | None, local_data_dir: Path) -> str:
    """The configured URL, or the embedded server's (started if needed)."""
    if database_url:
        return database_url
    return local_postgres.ensure_local_server(local_data_dir)


class PostgresResource(ConfigurableResource):
    database_url: str | None = Field(
        default=None, description="Postgres URL; unset starts the embedded server."
    )
    local_data_dir: str = Field(description="Data directory of the embedded server.")

    @property
    def url(self) -> str:
        return resolve_url(self.database_url, Path(self.local_data_dir))

    @property
    def engine(self) -> Engine:
        return _engine(self.url)

    @property
    def display_url(self) -> str:
        return local_postgres.redact(self.url)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: everything inside commits together or not at all."""
        with self.engine.begin() as conn:
            yield conn

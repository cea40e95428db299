"""PostgresResource: the one door to the database (SQLAlchemy 2 + psycopg 3).

With no URL configured it starts the project's embedded server (see `local_postgres`). The
schema is migrated the first time a process touches a database, so every run sees the current
schema without a separate setup step. A configured URL is tried once per process with a short
timeout before use: a wrong port, host or database fails in seconds with a message naming the
variable that holds the URL (password masked), not a driver traceback minutes later.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import psycopg
from dagster import ConfigurableResource, EnvVar
from pydantic import Field
from sqlalchemy import Connection, Engine, create_engine

from breakout_assets.resources import local_postgres
from breakout_assets.resources.migrations import apply_migrations

DATABASE_URL_VARIABLE = "BREAKOUT_DATABASE_URL"
# Seconds to wait for a server to answer (libpq's connect_timeout): long enough for a busy
# server, short enough that a dropped packet or a dead host fails before anyone gives up.
CONNECT_TIMEOUT_S = 5


class DatabaseUnreachable(RuntimeError):
    """Postgres at a configured URL does not answer or refuses us; names the variable."""


def check_reachable(
    url: str, variable: str = DATABASE_URL_VARIABLE, timeout_s: int = CONNECT_TIMEOUT_S
) -> None:
    """Open and close one connection, or raise DatabaseUnreachable saying which variable to fix
    and what the server said (refused, unknown host, no such database, bad password)."""
    libpq_url = "postgresql://" + url.split("://", 1)[1]
    try:
        psycopg.connect(libpq_url, connect_timeout=timeout_s).close()
    except psycopg.OperationalError as exc:
        said = " ".join(str(exc).split())
        password = local_postgres.password_of(url)
        if password:
            said = said.replace(password, "***")
        raise DatabaseUnreachable(
            f"cannot connect to Postgres at {local_postgres.redact(url)} (from {variable}; "
            f"waited up to {timeout_s}s): {said} -> check {variable} (host, port, database, "
            "user, password) and that the server is running"
        ) from None


@cache
def _engine(url: str) -> Engine:
    engine = create_engine(
        local_postgres.with_driver(url, "psycopg"),
        pool_pre_ping=True,
        pool_size=4,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
    )
    apply_migrations(engine)
    return engine


@cache
def resolve_url(
    database_url: str | None, local_data_dir: Path, variable: str = DATABASE_URL_VARIABLE
) -> str:
    """The configured URL once it answers, or the embedded server's (started if needed)."""
    if database_url:
        check_reachable(database_url, variable)
        return database_url
    return local_postgres.ensure_local_server(local_data_dir)


def env_resolved(value: str | None) -> str | None:
    """A resource field's value: an EnvVar read now. Dagster resolves EnvVars when it
    initialises a resource for a run; the CLI and scripts use resources directly and must not
    take the variable's name for its value."""
    return value.get_value() if isinstance(value, EnvVar) else value


class PostgresResource(ConfigurableResource):
    database_url: str | None = Field(
        default=None,
        description="Postgres URL, set as an EnvVar so the UI shows the variable, "
        "not the password; unset starts the embedded server.",
    )
    local_data_dir: str = Field(description="Data directory of the embedded server.")
    database_url_variable: str = Field(
        default=DATABASE_URL_VARIABLE,
        description="The environment variable the URL came from: what an error tells to fix.",
    )

    @property
    def url(self) -> str:
        return resolve_url(
            env_resolved(self.database_url), Path(self.local_data_dir), self.database_url_variable
        )

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

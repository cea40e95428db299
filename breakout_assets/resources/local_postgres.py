"""The embedded Postgres the project starts for itself when no DATABASE_URL is configured.

pgserver ships the Postgres binaries as a wheel, runs the server as its own system user when we
are root, and answers on a unix socket inside (or next to) the data directory, so nothing listens
on a network port. The server outlives the process that started it and is reused by every later
command until `breakout db stop`.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from sqlalchemy import create_engine, text

APP_DATABASE = "breakout"
DAGSTER_DATABASE = "dagster"

# A local research server, not a replicated one: minimal WAL (no replicas to feed) and a larger
# WAL between checkpoints make multi-year bulk loads several times faster. Crash safety
# (fsync, full-page writes, synchronous commit) stays at Postgres's defaults.
_SERVER_SETTINGS = {
    "wal_level": "'minimal'",
    "max_wal_senders": "0",
    "max_wal_size": "'4GB'",
    "checkpoint_timeout": "'15min'",
}

logging.getLogger("pgserver").setLevel(logging.WARNING)
# pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it falls back to /tmp.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _server(data_dir: Path):
    import pgserver  # imported lazily: only the local mode needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(data_dir, cleanup_mode=None)


def ensure_local_server(data_dir: Path) -> str:
    """Start (or find) the server and its two databases; return a libpq URL of the app DB."""
    server = _server(data_dir)
    existing = server.psql("SELECT datname FROM pg_database;")
    for name in (APP_DATABASE, DAGSTER_DATABASE):
        if f" {name}\n" not in existing:
            server.psql(f"CREATE DATABASE {name};")
            if name == DAGSTER_DATABASE:
                # Dagster writes one small transaction per event (thousands in a backfill); not
                # waiting for each WAL flush makes that 10x faster. A crash can lose the last
                # fraction of a second of run logs, never trading data (a different database).
                server.psql(f"ALTER DATABASE {name} SET synchronous_commit = off;")
    if "minimal" not in server.psql("SHOW wal_level;"):
        for key, value in _SERVER_SETTINGS.items():
            server.psql(f"ALTER SYSTEM SET {key} = {value};")
        _pg_ctl(data_dir, "restart")
    return server.get_uri(APP_DATABASE)


def stop_local_server(data_dir: Path) -> bool:
    """Stop the server if it runs; True when one was stopped."""
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir) if data_dir.exists() else None
    if info is None or not info.is_running():
        return False
    _pg_ctl(data_dir, "stop")
    return True


def restart_local_server(data_dir: Path) -> None:
    """Restart the server (settings that need a restart, e.g. max_connections)."""
    _pg_ctl(data_dir, "restart")


def _pg_ctl(data_dir: Path, action: str) -> None:
    """pg_ctl as the user that owns the server (pgserver's own user when we are root)."""
    from pgserver._commands import pg_ctl

    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", action], pgdata=data_dir, user=user)


URL_FORM = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def check_url(url: str) -> None:
    """Raise ValueError saying what is wrong with a Postgres URL (never echoing its password),
    so a typo is caught when settings load instead of deep inside a driver."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # ArgumentError (no scheme) or ValueError (port not a number)
        raise ValueError(f"not a URL: expected {URL_FORM}") from None
    if parsed.drivername.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a Postgres URL (scheme {parsed.drivername!r}): expected {URL_FORM}")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ValueError(f"port {parsed.port} is not a TCP port (1-65535)")


def with_driver(url: str, driver: str) -> str:
    """`postgresql://...` -> `postgresql+DRIVER://...` (SQLAlchemy picks the DBAPI from it)."""
    scheme, rest = url.split("://", 1)
    if scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a Postgres URL: {redact(url)}")
    return f"postgresql+{driver}://{rest}"


def with_database(url: str, database: str) -> str:
    parsed = urlparse(url)
    return parsed._replace(path=f"/{database}").geturl()


def recreate_database(server_url: str, name: str, *, dagster: bool = False) -> str:
    """A new empty database `name` on the server (dropped first if it exists); its URL.
    `dagster`: not waiting for each WAL flush, as the embedded server's Dagster database."""
    admin = create_engine(with_driver(server_url, "psycopg"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            if dagster:
                conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    finally:
        admin.dispose()
    return with_database(server_url, name)


def password_of(url: str) -> str | None:
    """The URL's password (in the user part or a `password=` query parameter), to mask it."""
    parsed = urlparse(url)
    return parsed.password or next(iter(parse_qs(parsed.query).get("password", [])), None)


def redact(url: str) -> str:
    """The URL with any password replaced, for logs and metadata."""
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        parsed = parsed._replace(netloc=netloc)
    query = "&".join(
        f"{k}=***" if k == "password" else f"{k}={v}"
        for k, values in parse_qs(parsed.query).items()
        for v in values
    )
    return parsed._replace(query=query).geturl()

"""Versioned schema migrations from `sql/migrations/NNNN_name.sql`, applied once, in order.

Each file runs in the same transaction as its record in `schema_migrations`, under an advisory
lock, so concurrent starters cannot both apply it and a failing file leaves nothing behind. An
applied file that was edited afterwards is an error: history is never rewritten silently.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from breakout_assets.resources.sql import SQL_DIR, query

MIGRATIONS_DIR = SQL_DIR / "migrations"
_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"migration file name must be NNNN_name.sql: {path.name}")
        found.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return found


def apply_migrations(engine: Engine, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply what is missing; return the names applied now (empty when up to date)."""
    applied_now: list[str] = []
    with engine.begin() as conn:
        conn.execute(query("migrations.lock_migrations"))
        conn.execute(query("migrations.create_schema_migrations"))
        applied = {row.version: row for row in conn.execute(query("migrations.applied_migrations"))}
        for migration in discover(directory):
            done = applied.get(migration.version)
            if done is not None:
                if done.checksum != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.path.name} changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            conn.exec_driver_sql(migration.sql)
            conn.execute(
                query("migrations.record_migration"),
                {
                    "version": migration.version,
                    "name": migration.name,
                    "checksum": migration.checksum,
                },
            )
            applied_now.append(migration.path.name)
    return applied_now

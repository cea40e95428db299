"""Named SQL statements loaded from `sql/queries/*.sql` (SQL lives in files, not f-strings).

A file holds several statements, each introduced by a `-- name: NAME` line; `query("file.name")`
returns it as a SQLAlchemy `text()` with `:param` binds. A file elsewhere under `sql/` is named
by its path: `query("features/daily_features.compute")` reads `sql/features/daily_features.sql`.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import TextClause, text

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def _statements(file: str) -> dict[str, str]:
    source = _path(file).read_text()
    parts = _NAME.split(source)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def _path(file: str) -> Path:
    """`bars` -> sql/queries/bars.sql;
    `features/daily_features` -> sql/features/daily_features.sql."""
    return SQL_DIR / (f"{file}.sql" if "/" in file else f"queries/{file}.sql")


def raw_query(qualified: str) -> str:
    file, _, name = qualified.partition(".")
    try:
        return _statements(file)[name]
    except KeyError:
        where = _path(file).relative_to(SQL_DIR.parent)
        raise KeyError(f"no statement '-- name: {name}' in {where}") from None


def query(qualified: str) -> TextClause:
    return text(raw_query(qualified))

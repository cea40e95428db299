"""Named SQL statements loaded from `sql/queries/*.sql` (SQL lives in files, not f-strings).

A file holds several statements, each introduced by a `-- name: NAME` line; `query("file.name")`
returns it as a SQLAlchemy `text()` with `:param` binds.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from sqlalchemy import TextClause, text

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@lru_cache(maxsize=None)
def _statements(file: str) -> dict[str, str]:
    source = (SQL_DIR / "queries" / f"{file}.sql").read_text()
    parts = _NAME.split(source)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def raw_query(qualified: str) -> str:
    file, _, name = qualified.partition(".")
    try:
        return _statements(file)[name]
    except KeyError:
        raise KeyError(f"no statement '-- name: {name}' in sql/queries/{file}.sql") from None


def query(qualified: str) -> TextClause:
    return text(raw_query(qualified))

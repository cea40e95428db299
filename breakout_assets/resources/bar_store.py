"""Replacing whole sessions of a bar table, atomically.

A partition (or a range of them) is rewritten by delete-then-insert inside one transaction, so a
re-run yields identical rows and a crash mid-write leaves the previous rows in place. When the
range being written is all the table holds (a first load or a full reload) the table is
truncated, its indexes are dropped, and they are rebuilt once at the end: one sort instead of 25M
index insertions, and under `wal_level=minimal` no WAL for the load at all; the table is then
analysed so the first scan does not plan on an empty table's statistics. Both paths run in the
same transaction and roll back the same way.
"""

from __future__ import annotations

import time

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import pandas as pd
from sqlalchemy import Connection

from breakout_assets.core.bars import BAR_COLUMNS
from breakout_assets.core.quality import ValidatedBars
from breakout_assets.partitions import nyse_sessions
from breakout_assets.resources.pg_copy import BinaryCopyStream, copy_payload, encode_csv
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query, raw_query

BarTableName = Literal["market_bars", "index_bars"]


@dataclass
class WriteStats:
    rows: int = 0
    quarantined: int = 0
    tickers: set[str] = field(default_factory=set)
    reasons: dict[str, int] = field(default_factory=dict)
    bulk: bool = False
    copy_seconds: float = 0.0
    index_seconds: float = 0.0


class SessionWriter:
    """Valid rows stream into the table's COPY; quarantined rows are kept for one COPY after it."""

    def __init__(self, stream: BinaryCopyStream, bulk: bool):
        self._stream = stream
        self._quarantined: list[pd.DataFrame] = []
        self.stats = WriteStats(bulk=bulk)

    def write(self, checked: ValidatedBars) -> None:
        self._stream.write(checked.valid)
        self.stats.rows += len(checked.valid)
        self.stats.tickers.update(checked.valid["ticker"].unique())
        if len(checked.quarantined):
            self._quarantined.append(checked.quarantined)
            self.stats.quarantined += len(checked.quarantined)
            for reason, count in checked.reasons.items():
                self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + count

    def quarantine_frame(self, table: BarTableName, source: str) -> pd.DataFrame:
        rows = pd.concat(self._quarantined, ignore_index=True)
        return pd.DataFrame({"dataset": table, **{c: rows[c] for c in BAR_COLUMNS},
                             "reason": rows["reason"], "source": source})


@contextmanager
def replace_sessions(
    conn: Connection, table: BarTableName, sessions: Sequence[date], source: str
) -> Iterator[SessionWriter]:
    """Clear `sessions` from `table` and its quarantine; rows written through the writer replace them.

    Runs inside the caller's transaction; nothing is visible to others until it commits.
    """
    first, last = min(sessions), max(sessions)
    bounds = {"first_session": first, "last_session": last}
    whole_range = list(sessions) == nyse_sessions(first, last)
    bulk = whole_range and not conn.execute(query(f"bars.{table}_rows_outside"), bounds).scalar()
    conn.execute(query("bars.delete_quarantined"), {"dataset": table, "sessions": list(sessions)})
    if bulk:
        conn.execute(query(f"bars.truncate_{table}"))
        conn.exec_driver_sql(raw_query(f"bars.drop_indexes_{table}"))
    else:
        conn.execute(query(f"bars.delete_{table}"), {"sessions": list(sessions)})
    started = time.perf_counter()
    with BinaryCopyStream(conn, raw_query(f"bars.copy_{table}")) as stream:
        writer = SessionWriter(stream, bulk)
        yield writer
    if writer.stats.quarantined:
        copy_payload(conn, raw_query("bars.copy_quarantined"),
                     encode_csv(writer.quarantine_frame(table, source)))
    writer.stats.copy_seconds = time.perf_counter() - started
    if bulk:
        started = time.perf_counter()
        conn.exec_driver_sql(raw_query(f"bars.create_indexes_{table}"))
        writer.stats.index_seconds = time.perf_counter() - started


def write_bar_chunks(
    postgres: PostgresResource,
    table: BarTableName,
    sessions: Sequence[date],
    source: str,
    chunks: Iterator[ValidatedBars],
) -> WriteStats:
    """The whole range in one transaction: all chunks land, or none do."""
    with postgres.transaction() as conn, replace_sessions(conn, table, sessions, source) as writer:
        for checked in chunks:
            writer.write(checked)
    return writer.stats

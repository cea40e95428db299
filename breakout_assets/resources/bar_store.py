"""Replacing whole sessions of a bar table, atomically, and only with something usable.

A partition (or a range of them) is rewritten by delete-then-insert inside one transaction, so a
re-run yields identical rows and a crash mid-write leaves the previous rows in place. When the
range being written is all the table holds (a first load or a full reload) the table is
truncated, its indexes are dropped, and they are rebuilt once at the end: one sort instead of 25M
index insertions, and under `wal_level=minimal` no WAL for the load at all; the table is then
analysed so the first scan does not plan on an empty table's statistics. Both paths run in the
same transaction and roll back the same way.

Nothing is decided after the commit. Before it, in the same transaction: a session left without
a single valid row (all quarantined, or none delivered) refuses the whole run, and then the
caller's `verify` (the blocking quality checks) may refuse it; either way the stored rows stay
exactly as they were. Writers of one table take a transaction-scoped advisory lock first, so a
second run of the same partitions waits for the first to commit instead of colliding with it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import pandas as pd
from sqlalchemy import Connection

from breakout_assets.core.bars import BAR_COLUMNS
from breakout_assets.core.quality import RefusedSessionsError, ValidatedBars, refused_sessions
from breakout_assets.partitions import nyse_sessions
from breakout_assets.resources.market_data.base import answered_non_sessions
from breakout_assets.resources.pg_copy import BinaryCopyStream, copy_payload, encode_csv
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query, raw_query
from breakout_assets.resources.year_load import YearLoad, can_load_by_year, drop_stages

BarTableName = Literal["market_bars", "index_bars"]

_SHOWN = 10
# Control characters cannot be stored in a text column (NUL) or read in a listing: shown escaped.
_UNPRINTABLE = r"[\x00-\x1f\x7f-\x9f]"


@dataclass
class WriteStats:
    rows: int = 0
    quarantined: int = 0
    tickers: set[str] = field(default_factory=set)
    reasons: dict[str, int] = field(default_factory=dict)
    bulk: bool = False
    copy_seconds: float = 0.0
    index_seconds: float = 0.0
    valid_by_session: Counter = field(default_factory=Counter)
    quarantined_by_session: Counter = field(default_factory=Counter)


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
        self.stats.valid_by_session.update(_per_session(checked.valid))
        if len(checked.quarantined):
            self._quarantined.append(checked.quarantined)
            self.stats.quarantined += len(checked.quarantined)
            self.stats.quarantined_by_session.update(_per_session(checked.quarantined))
            for reason, count in checked.reasons.items():
                self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + count

    def quarantine_frame(self, table: BarTableName, source: str) -> pd.DataFrame:
        rows = pd.concat(self._quarantined, ignore_index=True)
        ticker = (
            rows["ticker"]
            .astype("string")
            .str.replace(
                _UNPRINTABLE, lambda m: m.group().encode("unicode_escape").decode(), regex=True
            )
        )
        return pd.DataFrame(
            {
                "dataset": table,
                **{c: rows[c] for c in BAR_COLUMNS},
                "ticker": ticker,
                "reason": rows["reason"],
                "source": source,
            }
        )


def _per_session(frame: pd.DataFrame) -> dict[date, int]:
    counts = frame["session"].dropna().value_counts()
    return {ts.date(): int(n) for ts, n in counts.items()}


@contextmanager
def replace_sessions(
    conn: Connection,
    table: BarTableName,
    sessions: Sequence[date],
    source: str,
    origin: str | None = None,
    on_wait: Callable[[str], None] | None = None,
    connections: int = 1,
) -> Iterator[SessionWriter]:
    """Clear `sessions` from `table` and its quarantine; rows written through the writer
    replace them.

    Runs inside the caller's transaction; nothing is visible to others until it commits, and it
    raises RefusedSessionsError (so the caller's transaction rolls back) for a session that
    would be left without a valid row. A bulk load over several years spreads them over
    `connections` (year_load); the swap into the table still happens in this transaction.
    """
    _lock(conn, table, on_wait)
    first, last = min(sessions), max(sessions)
    bounds = {"first_session": first, "last_session": last}
    whole_range = list(sessions) == nyse_sessions(first, last)
    bulk = whole_range and not conn.execute(query(f"bars.{table}_rows_outside"), bounds).scalar()
    years = sorted({s.year for s in sessions})
    by_year = bulk and can_load_by_year(conn, table, years, connections)
    answered = sorted({*sessions, *answered_non_sessions(sessions)})
    conn.execute(query("bars.delete_quarantined"), {"dataset": table, "days": answered})
    if bulk:
        conn.execute(query(f"bars.truncate_{table}"))
        conn.exec_driver_sql(raw_query(f"bars.drop_indexes_{table}"))
    else:
        conn.execute(query(f"bars.delete_{table}"), {"sessions": list(sessions)})
    started = time.perf_counter()
    stream: YearLoad | BinaryCopyStream = (
        YearLoad(conn.engine, table, years, connections)
        if by_year
        else BinaryCopyStream(conn, raw_query(f"bars.copy_{table}"))
    )
    with stream:
        writer = SessionWriter(stream, bulk)
        yield writer
    _refuse_empty_sessions(table, origin or source, sessions, writer.stats)
    if writer.stats.quarantined:
        copy_payload(
            conn,
            raw_query("bars.copy_quarantined"),
            encode_csv(writer.quarantine_frame(table, source)),
        )
    writer.stats.copy_seconds = time.perf_counter() - started
    if bulk:
        started = time.perf_counter()
        if isinstance(stream, YearLoad):
            stream.swap(conn)
        conn.exec_driver_sql(raw_query(f"bars.create_indexes_{table}"))
        writer.stats.index_seconds = time.perf_counter() - started


def _lock(conn: Connection, table: BarTableName, on_wait: Callable[[str], None] | None) -> None:
    """Hold the table's writer lock until this transaction ends (waiting for another run's)."""
    name = {"name": f"breakout:{table}"}
    if conn.execute(query("bars.try_lock_bar_table"), name).scalar():
        return
    if on_wait is not None:
        on_wait(f"another run is writing {table}; waiting for it to commit or roll back")
    conn.execute(query("bars.lock_bar_table"), name)


def _refuse_empty_sessions(
    table: BarTableName, origin: str, sessions: Sequence[date], stats: WriteStats
) -> None:
    refused = refused_sessions(sessions, stats.valid_by_session, stats.quarantined_by_session)
    if not refused:
        return
    more = f" and {len(refused) - _SHOWN} more" if len(refused) > _SHOWN else ""
    reasons = ", ".join(f"{why}: {n}" for why, n in sorted(stats.reasons.items()))
    raise RefusedSessionsError(
        f"{table} from {origin}: refusing to replace {len(refused)} session(s) with no valid "
        f"row ({'; '.join(refused[:_SHOWN])}{more}); quarantine reasons: {reasons or 'none'}. "
        f"Nothing was written: the stored rows of every session in the run are unchanged."
    )


def write_bar_chunks(
    postgres: PostgresResource,
    table: BarTableName,
    sessions: Sequence[date],
    source: str,
    chunks: Iterator[ValidatedBars],
    origin: str | None = None,
    verify: Callable[[Connection], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
    connections: int = 1,
) -> WriteStats:
    """The whole range in one transaction: all chunks land, or none do.

    `verify(conn)` runs after the rows are in place and before the commit; raising from it
    rolls the whole range back.
    """
    try:
        with postgres.transaction() as conn:
            with replace_sessions(
                conn, table, sessions, source, origin, on_wait, connections
            ) as writer:
                for checked in chunks:
                    writer.write(checked)
            if verify is not None:
                verify(conn)
    except BaseException:
        if connections > 1:  # staging tables of a load that did not land
            drop_stages(postgres.engine, table, sorted({s.year for s in sessions}))
        raise
    return writer.stats

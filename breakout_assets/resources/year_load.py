"""A bulk load of a bar table spread over several connections, one year at a time.

A first load or full reload of a decade is bound by the server parsing COPY on one backend. The
bar tables are partitioned by year (migration 0021), so each year's rows can be COPY'd on a
connection of its own into a staging table shaped like the partition (created in the loading
transaction: under wal_level=minimal no WAL), indexed there, and committed; the writing
transaction then swaps each staging table in for its year's partition (drop, rename, ATTACH
with a CHECK of the bounds, so no scan) and recreates the parent's keys, which adopt the
partitions' indexes. Nothing of the stored table changes before that transaction commits: if it
rolls back, the old partitions are untouched and `drop_stages` removes the staging tables.

Rows arrive in chronological chunks. Year Y goes to connection (Y - first year) mod N, each with
a queue of its own, so while one backend parses year Y the reader already feeds Y+1 to the next.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import Connection, Engine

from breakout_assets.resources.pg_copy import BinaryCopyStream
from breakout_assets.resources.sql import query, raw_query

# Chunks waiting per connection: enough for the reader to run a year ahead (a 50-session chunk
# of 10,000 tickers is ~30 MB of frame).
_QUEUED_CHUNKS = 8
_POLL_S = 0.5
_DONE = object()


class LoadAborted(RuntimeError):
    """The reader failed: a loading connection rolls back what it staged."""


@dataclass(frozen=True)
class YearStage:
    """The names one year's staging table and partition go by (from the table and the year)."""

    table: str
    year: int

    @property
    def names(self) -> dict[str, str]:
        stage = f"{self.table}_load_y{self.year}"
        partition = f"{self.table}_y{self.year}"
        return {
            "parent": self.table,
            "stage": stage,
            "bounds": f"{stage}_bounds",
            "stage_pkey": f"{stage}_pkey",
            "stage_session_idx": f"{stage}_session_idx",
            "partition": partition,
            "partition_pkey": f"{partition}_pkey",
            "partition_session_idx": f"{partition}_session_idx",
            "first": date(self.year, 1, 1).isoformat(),
            "after": date(self.year + 1, 1, 1).isoformat(),
        }

    def sql(self, statement: str) -> str:
        return raw_query(f"bars.{statement}").format(**self.names)


def can_load_by_year(conn: Connection, table: str, years: list[int], connections: int) -> bool:
    """Worth it and possible: more than one connection and year, each year a partition."""
    if connections < 2 or len(years) < 2:
        return False
    partitions = set(conn.execute(query("bars.year_partitions"), {"parent": table}).scalars())
    return all(YearStage(table, y).names["partition"] in partitions for y in years)


class _YearLoader(threading.Thread):
    """One connection: COPY each year it is given into that year's staging table, index them,
    commit. Any error (or an abort from the reader) rolls its staging tables back."""

    def __init__(self, engine: Engine, table: str):
        super().__init__(daemon=True)
        self._engine = engine
        self._table = table
        self.inbox: queue.Queue = queue.Queue(maxsize=_QUEUED_CHUNKS)
        self.years: list[int] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self._engine.begin() as conn:
                self._load(conn)
        except BaseException as error:  # reported to the writing thread, which raises it
            self.error = error
            self._drain()

    def _load(self, conn: Connection) -> None:
        stream: BinaryCopyStream | None = None
        current: int | None = None
        try:
            while (item := self.inbox.get()) is not _DONE:
                if isinstance(item, LoadAborted):
                    raise item
                year, frame = item
                if year != current:
                    if stream is not None:
                        stream, closing = None, stream
                        closing.__exit__(None, None, None)
                    stage = YearStage(self._table, year)
                    if year not in self.years:
                        conn.exec_driver_sql(stage.sql("create_year_stage"))
                        self.years.append(year)
                    stream = BinaryCopyStream(conn, stage.sql("copy_year_stage")).__enter__()
                    current = year
                assert stream is not None
                stream.write(frame)
        except BaseException as error:
            if stream is not None:
                stream.__exit__(type(error), error, error.__traceback__)
            raise
        if stream is not None:
            stream.__exit__(None, None, None)
        for year in self.years:
            conn.exec_driver_sql(YearStage(self._table, year).sql("index_year_stage"))

    def _drain(self) -> None:
        """Keep taking chunks so a reader blocked on this queue can see the error."""
        try:
            while True:
                self.inbox.get_nowait()
        except queue.Empty:
            pass


class YearLoad:
    """The stream a bulk load writes through (`write(frame)`), and the swap that makes it stored."""

    def __init__(self, engine: Engine, table: str, years: list[int], connections: int):
        self._engine = engine
        self._table = table
        self._years = sorted(years)
        self._loaders = [_YearLoader(engine, table) for _ in range(min(connections, len(years)))]

    def __enter__(self) -> YearLoad:
        drop_stages(self._engine, self._table, self._years)  # a crashed run's leftovers
        for loader in self._loaders:
            loader.start()
        return self

    def write(self, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        years = frame["session"].dt.year
        for year, part in frame.groupby(years, sort=True):
            loader = self._loaders[(int(year) - self._years[0]) % len(self._loaders)]
            self._put(loader, (int(year), part))

    def _put(self, loader: _YearLoader, item: object) -> None:
        while True:
            self._raise_failed()
            try:
                loader.inbox.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _raise_failed(self) -> None:
        for loader in self._loaders:
            if loader.error is not None:
                raise RuntimeError(
                    f"bulk load of {self._table}: a loading connection failed: {loader.error}"
                ) from loader.error

    def __exit__(self, exc_type, exc, tb) -> None:
        for loader in self._loaders:
            if loader.is_alive():
                message = _DONE if exc_type is None else LoadAborted(f"aborted: {exc}")
                self._put_final(loader, message)
        for loader in self._loaders:
            loader.join()
        if exc_type is None:
            self._raise_failed()

    def _put_final(self, loader: _YearLoader, message: object) -> None:
        while loader.is_alive():
            try:
                loader.inbox.put(message, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def swap(self, conn: Connection) -> None:
        """In the writing transaction, after the parent's indexes were dropped: each staged
        year replaces its partition."""
        for loader in self._loaders:
            for year in loader.years:
                conn.exec_driver_sql(YearStage(self._table, year).sql("swap_year_partition"))


def drop_stages(engine: Engine, table: str, years: list[int]) -> None:
    """Staging tables a rolled-back (or crashed) load left committed; none after a swap."""
    with engine.begin() as conn:
        for year in years:
            conn.exec_driver_sql(YearStage(table, year).sql("drop_year_stage"))

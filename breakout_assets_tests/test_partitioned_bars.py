"""The bar tables partitioned by year (migration 0021): rows land in their year's table, the
migration keeps every stored row, and the writers' bulk and incremental paths work across a
year boundary with the same keys and indexes as before."""

from __future__ import annotations

import copy
import shutil
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from breakout_assets.core.quality import validate_bars
from breakout_assets.definitions import build_resources
from breakout_assets.partitions import nyse_sessions
from breakout_assets.resources import local_postgres
from breakout_assets.resources.bar_store import write_bar_chunks
from breakout_assets.resources.market_data import FilesMarketData, MarketDataSource
from breakout_assets.resources.migrations import MIGRATIONS_DIR, apply_migrations
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets_tests.conftest import new_database
from breakout_assets_tests.helpers import read_table, run_assets

COLUMNS = ("ticker", "session", "open", "high", "low", "close", "volume")
PARTITIONED = "0021_partitioned_bars.sql"
BARS = "SELECT * FROM {table} ORDER BY ticker, session"
WHERE_ROWS_LIVE = (
    "SELECT ticker, session, tableoid::regclass::text AS partition FROM market_bars "
    "ORDER BY session, ticker"
)


def _engine(url: str):
    return create_engine(local_postgres.with_driver(url, "psycopg"))


def _insert(url: str, table: str, rows: list[tuple]) -> None:
    engine = _engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO {table} VALUES "
                "(:ticker, :session, :open, :high, :low, :close, :volume)"
            ),
            [dict(zip(COLUMNS, r, strict=True)) for r in rows],
        )
    engine.dispose()


def test_rows_land_in_their_years_table_and_the_key_still_holds(pg_server):
    url = new_database(pg_server)
    rows = [
        ("AAA", "1999-12-31", 10.0, 11.0, 9.0, 10.5, 100),
        ("AAA", "2015-06-01", 10.0, 11.0, 9.0, 10.5, 100),
        ("AAA", "2024-03-08", 10.0, 11.0, 9.0, 10.5, 100),
        ("BBB", "2024-12-31", 10.0, 11.0, 9.0, 10.5, 100),
        ("BBB", "2041-01-02", 10.0, 11.0, 9.0, 10.5, 100),
    ]
    _insert(url, "market_bars", rows)
    live = read_table(url, WHERE_ROWS_LIVE)
    assert list(live["partition"]) == [
        "market_bars_other",
        "market_bars_y2015",
        "market_bars_y2024",
        "market_bars_y2024",
        "market_bars_other",
    ]
    partitioned = read_table(
        url,
        "SELECT c.relname, p.partstrat FROM pg_partitioned_table p "
        "JOIN pg_class c ON c.oid = p.partrelid ORDER BY 1",
    )
    assert list(partitioned["relname"]) == ["index_bars", "market_bars"]
    assert set(partitioned["partstrat"]) == {"r"}
    duplicate_rejected = False
    try:
        _insert(url, "market_bars", rows[1:2])
    except Exception as error:  # the primary key is enforced across the partitions
        duplicate_rejected = "market_bars_y2015_pkey" in str(error)
    assert duplicate_rejected
    indexes = read_table(
        url, "SELECT indexname FROM pg_indexes WHERE tablename = 'market_bars' ORDER BY 1"
    )
    assert list(indexes["indexname"]) == ["market_bars_pkey", "market_bars_session_idx"]
    checks = read_table(
        url,
        "SELECT conname FROM pg_constraint WHERE conrelid = 'market_bars'::regclass "
        "AND contype = 'c' ORDER BY 1",
    )
    assert list(checks["conname"]) == [f"market_bars_{c}_check" for c in sorted(COLUMNS[2:])]


def test_the_migration_keeps_every_stored_row(pg_server, tmp_path):
    """A database at 0020 with bars in it, migrated: the same rows, now partitioned."""
    earlier = tmp_path / "migrations"
    earlier.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name < PARTITIONED:
            shutil.copy(path, earlier / path.name)
    url = new_database(pg_server, template="template1")
    engine = _engine(url)
    apply_migrations(engine, earlier)
    stock_rows = [
        (t, f"{y}-0{m}-1{d}", 10.0 + d, 12.0 + d, 9.0, 11.0, 1000 * d)
        for t in ("AAA", "BBB", "ZZZ")
        for y in (2016, 2019, 2024)
        for m in (1, 5)
        for d in (1, 2, 3)
    ]
    _insert(url, "market_bars", stock_rows)
    _insert(url, "index_bars", [r for r in stock_rows if r[0] == "AAA"])
    before = {t: read_table(url, BARS.format(table=t)) for t in ("market_bars", "index_bars")}
    assert apply_migrations(engine) == [
        path.name for path in sorted(MIGRATIONS_DIR.glob("*.sql")) if path.name >= PARTITIONED
    ]
    engine.dispose()
    for table, rows in before.items():
        pd.testing.assert_frame_equal(read_table(url, BARS.format(table=table)), rows)
    years = read_table(
        url, "SELECT DISTINCT tableoid::regclass::text AS partition FROM market_bars ORDER BY 1"
    )
    assert list(years["partition"]) == [
        "market_bars_y2016",
        "market_bars_y2019",
        "market_bars_y2024",
    ]
    assert read_table(url, "SELECT to_regclass('market_bars_unpartitioned') AS t")["t"][0] is None


def test_the_writers_cross_a_year_boundary(settings):
    """The bulk path (truncate, drop and rebuild the partitioned keys) and the incremental one
    (delete by session) on a range that spans two years' tables."""
    run_assets(settings, ["market_bars", "index_bars"], "2023-12-27", "2024-01-05")
    first = read_table(settings.database_url, BARS.format(table="market_bars"))
    per_year = read_table(
        settings.database_url,
        "SELECT tableoid::regclass::text AS partition, count(DISTINCT session) AS n "
        "FROM market_bars GROUP BY 1 ORDER BY 1",
    )
    assert per_year.to_dict("list") == {
        "partition": ["market_bars_y2023", "market_bars_y2024"],
        "n": [3, 4],
    }
    run_assets(settings, ["market_bars"], "2023-12-29")  # incremental: one session again
    pd.testing.assert_frame_equal(
        read_table(settings.database_url, BARS.format(table="market_bars")), first
    )
    indexes = read_table(
        settings.database_url,
        "SELECT indexname FROM pg_indexes WHERE tablename = 'market_bars_y2024' ORDER BY 1",
    )
    assert len(indexes) == 2  # the key and the session index on every year's table


STAGES = "SELECT relname FROM pg_class WHERE relname LIKE '%\\_load\\_y%' ORDER BY 1"
RANGE = ("2023-12-27", "2024-01-05")


class _CrashingSource(FilesMarketData):
    """Files that drop the connection once the load has reached the second year."""

    def source(self) -> MarketDataSource:
        inner = super().source()

        class Crashing(type(inner)):  # type: ignore[misc]
            def iter_daily_bars(self, sessions, chunk_sessions):
                for chunk in inner.iter_daily_bars(sessions, 1):
                    yield chunk
                    if (chunk["session"].dt.year == 2024).any():
                        raise ConnectionResetError("source connection dropped mid-backfill")

        crashing = copy.copy(inner)
        crashing.__class__ = Crashing
        return crashing


def _stored(url: str) -> pd.DataFrame:
    return read_table(url, BARS.format(table="market_bars"))


def test_a_crash_in_a_parallel_load_keeps_the_stored_rows(settings):
    """The years were loading on two connections when the source failed: the stored rows,
    partitions and keys are as they were and no staging table is left."""
    run_assets(settings, ["market_bars"], *RANGE)
    before = _stored(settings.database_url)
    resources = build_resources(settings)
    resources["market_data"] = _CrashingSource(**resources["market_data"].model_dump())
    result = run_assets(
        settings, ["market_bars"], *RANGE, resources=resources, raise_on_error=False
    )
    assert not result.success
    pd.testing.assert_frame_equal(_stored(settings.database_url), before)
    assert read_table(settings.database_url, STAGES).empty


def test_a_refusal_after_the_swap_rolls_the_swap_back(settings):
    """The blocking checks run after the staged years replaced the partitions, in the same
    transaction: refusing there restores the old partitions."""
    run_assets(settings, ["market_bars"], *RANGE)
    before = _stored(settings.database_url)
    sessions = nyse_sessions(date.fromisoformat(RANGE[0]), date.fromisoformat(RANGE[1]))
    source = build_resources(settings)["market_data"].source()
    chunks = (validate_bars(c, set(sessions)) for c in source.iter_daily_bars(sessions, 2))
    seen: list[int] = []

    def refuse(conn):
        seen.append(conn.execute(text("SELECT count(*) FROM market_bars")).scalar())
        raise RuntimeError("a blocking check failed")

    postgres = PostgresResource(database_url=settings.database_url, local_data_dir="unused")
    with pytest.raises(RuntimeError, match="a blocking check failed"):
        write_bar_chunks(
            postgres, "market_bars", sessions, "files", chunks, verify=refuse, connections=2
        )
    assert seen == [len(before)]  # the checks saw the swapped-in rows
    pd.testing.assert_frame_equal(_stored(settings.database_url), before)
    assert read_table(settings.database_url, STAGES).empty


def test_one_connection_and_two_give_the_same_table(settings):
    run_assets(settings, ["market_bars"], *RANGE)
    parallel = _stored(settings.database_url)
    one = build_resources(settings.model_copy(update={"bulk_load_connections": 1}))
    run_assets(settings, ["market_bars"], *RANGE, resources=one)
    pd.testing.assert_frame_equal(_stored(settings.database_url), parallel)

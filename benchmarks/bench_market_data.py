"""Market-data throughput, printed as figures (not a pass/fail test).

1. Bulk load: 10,000 synthetic tickers x 2,500 sessions (25M rows) through the same writer the
   `market_bars` asset uses (validate, binary COPY, one transaction), into an empty table.
2. One session of 10,000 tickers end to end: the real `massive` client fetching a grouped-daily
   response from a local fake Polygon server, validation, and the write into the 25M-row table
   (the incremental path, indexes in place), then the same as a Dagster materialisation.

Run: `make bench`
(or `.venv/bin/python benchmarks/bench_market_data.py [--tickers N --sessions M --connections C]`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from breakout_assets.core.quality import validate_bars  # noqa: E402
from breakout_assets.partitions import nyse_sessions  # noqa: E402
from breakout_assets.resources import local_postgres  # noqa: E402
from breakout_assets.resources.bar_store import write_bar_chunks  # noqa: E402
from breakout_assets.resources.market_data.polygon import PolygonSource  # noqa: E402
from breakout_assets.resources.market_data.synthetic import SyntheticSource  # noqa: E402
from breakout_assets.resources.postgres import PostgresResource  # noqa: E402


def _line(label: str, value: str) -> None:
    print(f"{label:<58} {value}", flush=True)


def bulk_load(
    postgres: PostgresResource, tickers: int, sessions: list[date], chunk: int, connections: int
) -> None:
    source = SyntheticSource(n_tickers=tickers, seed=7, origin=sessions[0])
    started = time.perf_counter()
    chunks = list(source.iter_daily_bars(sessions, chunk))
    generated = time.perf_counter() - started
    rows = sum(len(c) for c in chunks)
    _line(
        "synthetic generation",
        f"{rows:,} rows in {generated:.1f}s ({rows / generated:,.0f} rows/s)",
    )

    started = time.perf_counter()
    validated = [validate_bars(c, set(sessions)) for c in chunks]
    checked = time.perf_counter() - started
    _line("validation (core.quality)", f"{rows / checked:,.0f} rows/s")
    del chunks

    started = time.perf_counter()
    stats = write_bar_chunks(
        postgres,
        "market_bars",
        sessions,
        "synthetic",
        iter(validated),
        connections=connections,
    )
    wrote = time.perf_counter() - started
    path = "bulk" if stats.bulk else "incremental"
    _line(
        f"bulk load ({path} path, {connections} connection(s), indexes built)",
        f"{stats.rows:,} rows in {wrote:.1f}s = {stats.rows / wrote:,.0f} rows/s",
    )
    _line(
        "  of which: streamed COPY (encode + send + parse)",
        f"{stats.copy_seconds:.1f}s = {stats.rows / stats.copy_seconds:,.0f} rows/s",
    )
    _line("  of which: index builds (primary key, session)", f"{stats.index_seconds:.1f}s")
    total = generated + checked + wrote
    _line("whole path (generate + validate + write)", f"{rows / total:,.0f} rows/s")


def one_session(postgres: PostgresResource, tickers: int, session: date) -> None:
    sys.path.insert(0, str(ROOT / "breakout_assets_tests"))
    from fake_polygon import FakePolygon, make_grouped_rows

    with FakePolygon() as fake:
        fake.grouped[session.isoformat()] = make_grouped_rows(tickers, session)
        source = PolygonSource(api_key=fake.api_key, base_url=fake.base_url, max_retries=0)
        source.daily_bars([session])  # warm the fake's response cache
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            frame = source.daily_bars([session])
            fetched = time.perf_counter()
            checked = validate_bars(frame, {session})
            validated = time.perf_counter()
            write_bar_chunks(postgres, "market_bars", [session], "polygon", iter([checked]))
            done = time.perf_counter()
            timings.append(
                (fetched - started, validated - fetched, done - validated, done - started)
            )
        fetch, check, write, total = np.median(np.array(timings), axis=0)
        _line(
            f"one session, {tickers:,} tickers: fetch / validate / write",
            f"{fetch:.3f}s / {check:.3f}s / {write:.3f}s",
        )
        _line("one session end to end (median of 3)", f"{total:.3f}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=2_500)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument(
        "--connections", type=int, default=2, help="BREAKOUT_BULK_LOAD_CONNECTIONS of the load"
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="breakout-bench-"))
    try:
        url = local_postgres.ensure_local_server(data_dir)
        postgres = PostgresResource(database_url=url, local_data_dir=str(data_dir))
        sessions = nyse_sessions(date(2010, 1, 4), date(2030, 1, 1))[: args.sessions]
        _line("sessions", f"{sessions[0]}..{sessions[-1]} ({len(sessions)})")
        bulk_load(postgres, args.tickers, sessions, args.chunk, args.connections)
        with postgres.transaction() as conn:
            size = conn.execute(  # the parent of a partitioned table holds no rows itself
                text(
                    "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) "
                    "FROM pg_inherits WHERE inhparent = 'market_bars'::regclass"
                )
            ).scalar()
        _line("market_bars size on disk", size)
        next_session = nyse_sessions(sessions[-1], date(2031, 1, 1))[1]
        one_session(postgres, args.tickers, next_session)
    finally:
        local_postgres.stop_local_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

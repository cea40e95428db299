"""What Postgres itself allows on this machine for the bulk-load target: the floor under any writer.

The `market_bars` bulk load has two unavoidable server-side parts: parsing and storing the rows
(COPY) and sorting them into the (ticker, session) primary key. This script times each with no
client work at all (the rows are encoded before the clock starts, and COPY goes into a fresh
table with no index and no constraint), so `rows / (copy + key)` is an upper bound for any
client on this machine, in one transaction:

1. COPY of pre-encoded binary rows into an empty, index-free table created in the transaction;
2. the primary-key build on (ticker, session) (2GB maintenance_work_mem, parallel workers);
3. the same again split into `--parts` tables loaded by two connections at once (each table gets
   its own primary key): the best case for overlapping one part's key build with the next
   part's COPY, as a partitioned table would allow.

Run: `.venv/bin/python benchmarks/bench_copy_bounds.py [--tickers 10000 --sessions 2500]`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from breakout_assets.partitions import nyse_sessions  # noqa: E402
from breakout_assets.resources import local_postgres  # noqa: E402
from breakout_assets.resources.market_data.synthetic import SyntheticSource  # noqa: E402
from breakout_assets.resources.pg_copy import _HEADER, _TRAILER, encode_bars_binary  # noqa: E402

_TABLE = """CREATE TABLE {name} (ticker text COLLATE "C" NOT NULL, session date NOT NULL,
    open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL, close float8 NOT NULL,
    volume bigint NOT NULL)"""


def _line(label: str, value: str) -> None:
    print(f"{label:<58} {value}", flush=True)


def load(url: str, name: str, payloads: list[bytes]) -> tuple[float, float]:
    """One transaction: create, COPY, primary key, commit. Returns (copy, key) seconds."""
    with psycopg.connect(url) as conn:
        conn.execute(_TABLE.format(name=name))
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY {name} FROM STDIN (FORMAT binary)") as copy:
            copy.write(_HEADER)
            for payload in payloads:
                copy.write(payload)
            copy.write(_TRAILER)
        copied = time.perf_counter() - started
        conn.execute("SET LOCAL maintenance_work_mem = '2GB'")
        started = time.perf_counter()
        conn.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (ticker, session)")
        return copied, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=2_500)
    parser.add_argument("--parts", type=int, default=10)
    args = parser.parse_args()
    sessions = nyse_sessions(date(2010, 1, 4), date(2030, 1, 1))[: args.sessions]
    source = SyntheticSource(n_tickers=args.tickers, seed=7, origin=sessions[0])
    chunks = [encode_bars_binary(frame) for frame in source.iter_daily_bars(sessions, 100)]
    rows = args.tickers * len(sessions)
    data_dir = Path(tempfile.mkdtemp(prefix="breakout-bench-"))
    try:
        url = local_postgres.ensure_local_server(data_dir)
        copied, keyed = load(url, "one_table", chunks)
        _line(
            f"COPY of {rows:,} pre-encoded rows, no index",
            f"{copied:.1f}s = {rows / copied:,.0f} rows/s",
        )
        _line("primary key (ticker, session) build", f"{keyed:.1f}s")
        _line("bound for one transaction (COPY + key)", f"{rows / (copied + keyed):,.0f} rows/s")

        per_part = -(-len(chunks) // args.parts)
        parts = [chunks[i : i + per_part] for i in range(0, len(chunks), per_part)]
        pending = list(enumerate(parts))
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                    index, payloads = pending.pop(0)
                load(url, f"part_{index}", payloads)

        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        _line(
            f"{len(parts)} parts, two connections (COPY + key each)",
            f"{wall:.1f}s = {rows / wall:,.0f} rows/s",
        )
    finally:
        local_postgres.stop_local_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

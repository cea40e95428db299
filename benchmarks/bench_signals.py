"""`breakout_signals` for one session of 10,000 tickers, database read included.

Loads 10,000 synthetic tickers x (scanner history + 1) sessions into a temporary embedded
Postgres through the market-data writer, then times `scan_sessions` (COPY-out of the bar window,
dense arrays, numba scan with pattern features) and the write of the session's signals.

Run: `.venv/bin/python benchmarks/bench_signals.py [--tickers N]` (target: <= 3 s).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from breakout_assets.assets.signals import history_sessions, scan_sessions, write_signals  # noqa: E402
from breakout_assets.core.quality import validate_bars  # noqa: E402
from breakout_assets.partitions import nyse_sessions  # noqa: E402
from breakout_assets.resources import local_postgres  # noqa: E402
from breakout_assets.resources.bar_store import write_bar_chunks  # noqa: E402
from breakout_assets.resources.market_data.synthetic import SyntheticSource  # noqa: E402
from breakout_assets.resources.postgres import PostgresResource  # noqa: E402
from breakout_assets.settings import DEFAULT_INDEX_TICKERS, load_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=10_000)
    args = parser.parse_args()
    config = load_settings().scanner
    sessions = nyse_sessions(date(2015, 1, 2), date(2030, 1, 1))[: history_sessions(config) + 60]
    data_dir = Path(tempfile.mkdtemp(prefix="breakout-bench-"))
    try:
        url = local_postgres.ensure_local_server(data_dir)
        postgres = PostgresResource(database_url=url, local_data_dir=str(data_dir))
        source = SyntheticSource(n_tickers=args.tickers, seed=7, origin=sessions[0])
        wanted = set(sessions)
        started = time.perf_counter()
        write_bar_chunks(
            postgres,
            "market_bars",
            sessions,
            "synthetic",
            (validate_bars(c, wanted) for c in source.iter_daily_bars(sessions, 50)),
        )
        write_bar_chunks(
            postgres,
            "index_bars",
            sessions,
            "synthetic",
            iter([validate_bars(source.index_bars(sessions, DEFAULT_INDEX_TICKERS), wanted)]),
        )
        print(
            f"loaded {args.tickers:,} tickers x {len(sessions)} sessions in "
            f"{time.perf_counter() - started:.1f}s"
        )
        timings = []
        for session in sessions[-3:]:
            started = time.perf_counter()
            with postgres.transaction() as conn:
                rows = scan_sessions(conn, [session], config)
                write_signals(conn, [session], rows)
            timings.append(time.perf_counter() - started)
            print(
                f"  {session}: {len(rows)} signals in {timings[-1]:.2f}s "
                "(read window + arrays + scan + features + write)"
            )
        print(
            f"one session, {args.tickers:,} tickers, database read included: "
            f"best {min(timings):.2f}s (first includes numba's cached-code load)"
        )
    finally:
        local_postgres.stop_local_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

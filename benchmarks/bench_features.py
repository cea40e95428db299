"""daily_features throughput, printed as figures (not a pass/fail test).

Loads a synthetic market (default 10,000 tickers) through the same writer the market-data assets
use (validate, binary COPY, one transaction) into a temporary embedded Postgres: enough sessions
for one year of features plus the feature lookback. Then times `daily_features` exactly as the
asset computes it (`compute_daily_features`: delete, one set-based statement per chunk, stats,
one transaction):

1. one year (the last 252 sessions) as one range run into the empty table (a first backfill);
2. one session (the last) of 10,000 tickers, the daily run: target <= 10 s;
3. the year again, shifted one session back, so other rows stay (delete + insert with the indexes
   in place, as a re-run inside a longer history): target for a year <= 5 min.

Run: `.venv/bin/python benchmarks/bench_features.py [--tickers N --year-sessions M]`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from breakout_assets.assets.features import compute_daily_features  # noqa: E402
from breakout_assets.core.quality import validate_bars  # noqa: E402
from breakout_assets.partitions import nyse_sessions  # noqa: E402
from breakout_assets.resources import local_postgres  # noqa: E402
from breakout_assets.resources.bar_store import write_bar_chunks  # noqa: E402
from breakout_assets.resources.market_data.synthetic import SyntheticSource  # noqa: E402
from breakout_assets.resources.postgres import PostgresResource  # noqa: E402
from breakout_assets.resources.sql import query  # noqa: E402
from breakout_assets.settings import load_settings  # noqa: E402


def _line(label: str, value: str) -> None:
    print(f"{label:<58} {value}", flush=True)


def load_market(postgres: PostgresResource, tickers: int, sessions: list[date]) -> None:
    source = SyntheticSource(n_tickers=tickers, seed=7, origin=sessions[0])
    wanted = set(sessions)
    started = time.perf_counter()
    stats = write_bar_chunks(
        postgres, "market_bars", sessions, "synthetic",
        (validate_bars(chunk, wanted) for chunk in source.iter_daily_bars(sessions, 100)),
    )
    write_bar_chunks(
        postgres, "index_bars", sessions, "synthetic",
        iter([validate_bars(source.index_bars(sessions, source.index_tickers), wanted)]),
    )
    reference = source.ticker_reference(sessions[-1])
    frame = reference.astype(object).where(reference.notna(), None)
    rows = [{**r, "source": "synthetic", "as_of": sessions[-1]} for r in frame.to_dict("records")]
    with postgres.transaction() as conn:
        conn.execute(query("bars.upsert_ticker"), rows)
        conn.execute(text("ANALYZE market_bars; ANALYZE index_bars; ANALYZE tickers"))
    _line(
        "synthetic market loaded (bars, index bars, reference)",
        f"{stats.rows:,} rows in {time.perf_counter() - started:.1f}s",
    )


def timed(postgres: PostgresResource, sessions: list[date], settings) -> tuple[float, int, bool]:
    started = time.perf_counter()
    with postgres.transaction() as conn:
        stats = compute_daily_features(conn, sessions, settings)
    return time.perf_counter() - started, stats.rows, stats.bulk


def _path(bulk: bool) -> str:
    return "bulk path: truncate, indexes rebuilt" if bulk else "delete + insert, indexes in place"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=10_000)
    parser.add_argument("--year-sessions", type=int, default=252)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None,
                        help="server directory to keep (and reuse the loaded market from)")
    args = parser.parse_args()

    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="breakout-bench-features-"))
    try:
        url = local_postgres.ensure_local_server(data_dir)
        postgres = PostgresResource(database_url=url, local_data_dir=str(data_dir))
        settings = load_settings(database_url=url)
        lookback = settings.feature_lookback_sessions
        calendar = nyse_sessions(date(2021, 1, 4), date(2030, 1, 1))
        sessions = calendar[: lookback + args.year_sessions + 1]
        _line("sessions loaded", f"{sessions[0]}..{sessions[-1]} ({len(sessions)})")
        _line("feature lookback (sessions)", str(lookback))
        with postgres.transaction() as conn:
            loaded = conn.execute(text("SELECT count(*) FROM market_bars")).scalar()
        if loaded != args.tickers * len(sessions):
            load_market(postgres, args.tickers, sessions)

        year = sessions[-args.year_sessions:]
        seconds, rows, bulk = timed(postgres, year, settings)
        _line(f"daily_features, {len(year)} sessions x {args.tickers:,} tickers, first backfill",
              f"{seconds:.1f}s for {rows:,} rows = {rows / seconds:,.0f} rows/s ({_path(bulk)})")

        one = [timed(postgres, sessions[-1:], settings) for _ in range(args.repeat)]
        seconds = statistics.median(s for s, _, _ in one)
        _line(f"daily_features, one session x {args.tickers:,} tickers (median of {args.repeat})",
              f"{seconds:.2f}s for {one[0][1]:,} rows ({_path(one[0][2])})")

        again = sessions[-args.year_sessions - 1:-1]  # the last session stays outside: no bulk
        seconds, rows, bulk = timed(postgres, again, settings)
        _line(f"daily_features, {len(again)} sessions x {args.tickers:,} tickers, re-run",
              f"{seconds:.1f}s for {rows:,} rows = {rows / seconds:,.0f} rows/s ({_path(bulk)})")
        _line("targets", "one session <= 10 s, one year <= 300 s")
    finally:
        if args.keep is None:
            local_postgres.stop_local_server(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

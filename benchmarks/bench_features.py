"""daily_features timings, printed as figures (not a pass/fail test).

The daily run computes one session; its cost must not grow with the history stored before it.
So the same session of the same synthetic market (default 10,000 tickers) is timed in two
databases of one temporary embedded Postgres, holding a short and a long history (default 2 and
10 years of bars, index bars and reference, loaded through the market-data writer; every stored
session's features backfilled as a first backfill would). The figures:

1. the full-history backfill of each database (one range run into the empty table);
2. one session (the last) of 10,000 tickers, each history: target <= 2 s with 10 years stored,
   and the same time with 2;
3. that session again with no Wilder state stored on the session before (rolled back): every
   ticker folds its lookback, as on the first run after the 0015 migration;
4. a year shifted one session back in the long database, so other rows stay (delete + insert with
   the indexes in place, as a re-run inside a longer history): target <= 5 min.

Every run is `compute_daily_features` exactly as the asset calls it (one transaction).
Run: `.venv/bin/python benchmarks/bench_features.py [--tickers N --years 2 10 --repeat 5
--keep DIR]` (`--keep` keeps the server and reuses the loaded databases on the next run).
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

from sqlalchemy import create_engine, text

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

SESSIONS_PER_YEAR = 252
LAST_SESSION = date(2024, 12, 31)


def _line(label: str, value: str) -> None:
    print(f"{label:<64} {value}", flush=True)


def load_market(
    postgres: PostgresResource, tickers: int, sessions: list[date], origin: date
) -> None:
    """Bars of `sessions` from one market (same `origin`: the same prices in every database)."""
    source = SyntheticSource(n_tickers=tickers, seed=7, origin=origin)
    wanted = set(sessions)
    started = time.perf_counter()
    stats = write_bar_chunks(
        postgres,
        "market_bars",
        sessions,
        "synthetic",
        (validate_bars(chunk, wanted) for chunk in source.iter_daily_bars(sessions, 100)),
    )
    write_bar_chunks(
        postgres,
        "index_bars",
        sessions,
        "synthetic",
        iter([validate_bars(source.index_bars(sessions, source.index_tickers), wanted)]),
    )
    reference = source.ticker_reference(sessions[-1])
    frame = reference.astype(object).where(reference.notna(), None)
    rows = [{**r, "source": "synthetic", "as_of": sessions[-1]} for r in frame.to_dict("records")]
    with postgres.transaction() as conn:
        conn.execute(query("bars.upsert_ticker"), rows)
    _line(
        "  bars loaded (market, index, reference)",
        f"{stats.rows:,} rows in {time.perf_counter() - started:.0f}s",
    )


def timed(postgres: PostgresResource, sessions: list[date], settings) -> tuple[float, int, bool]:
    started = time.perf_counter()
    with postgres.transaction() as conn:
        stats = compute_daily_features(conn, sessions, settings)
    return time.perf_counter() - started, stats.rows, stats.bulk


def _path(bulk: bool) -> str:
    return "bulk: truncate, indexes rebuilt" if bulk else "delete + insert, indexes in place"


def _count(postgres: PostgresResource, table: str, column: str = "*") -> int:
    with postgres.transaction() as conn:
        return conn.execute(text(f"SELECT count({column}) FROM {table}")).scalar()


def _database(server_url: str, name: str) -> str:
    admin = create_engine(
        local_postgres.with_driver(server_url, "psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        if not conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).scalar():
            conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return local_postgres.with_database(server_url, name)


def prepare(
    server_url: str, data_dir: Path, tickers: int, years: int, calendar: list[date]
) -> tuple[PostgresResource, list[date]]:
    """A database holding `years` of bars and their features, ending on the last session."""
    sessions = calendar[-years * SESSIONS_PER_YEAR :]
    url = _database(server_url, f"bench_{tickers}_{years}y")
    postgres = PostgresResource(database_url=url, local_data_dir=str(data_dir))
    settings = load_settings(database_url=url)
    _line(f"{years} years stored", f"{sessions[0]}..{sessions[-1]} ({len(sessions):,} sessions)")
    if _count(postgres, "market_bars") != tickers * len(sessions):
        load_market(postgres, tickers, sessions, origin=calendar[0])
    if _count(postgres, "daily_features", "wilder_row") != tickers * len(sessions):
        seconds, rows, bulk = timed(postgres, sessions, settings)
        _line(
            "  backfill of every stored session",
            f"{seconds:.0f}s for {rows:,} rows = {rows / seconds:,.0f} rows/s ({_path(bulk)})",
        )
    with postgres.transaction() as conn:
        conn.execute(text("ANALYZE"))
    return postgres, sessions


def one_session(
    postgres: PostgresResource, sessions: list[date], tickers: int, years: int, repeat: int
) -> float:
    settings = load_settings(database_url=postgres.database_url)
    runs = [timed(postgres, sessions[-1:], settings) for _ in range(repeat)]
    seconds = sorted(s for s, _, _ in runs)
    median = statistics.median(seconds)
    _line(
        f"  one session x {tickers:,} tickers, {years} years stored",
        f"median {median:.2f}s, best {seconds[0]:.2f}s of {repeat}, {runs[0][1]:,} rows "
        f"({_path(runs[0][2])})",
    )
    return median


def one_session_folded(postgres: PostgresResource, sessions: list[date], tickers: int) -> None:
    """The last session with the state of the one before cleared, rolled back afterwards."""
    settings = load_settings(database_url=postgres.database_url)
    with postgres.engine.connect() as conn, conn.begin() as transaction:
        conn.execute(
            text("UPDATE daily_features SET wilder_row = NULL WHERE session = :s"),
            {"s": sessions[-2]},
        )
        started = time.perf_counter()
        stats = compute_daily_features(conn, sessions[-1:], settings)
        seconds = time.perf_counter() - started
        transaction.rollback()
    _line(
        f"  one session x {tickers:,} tickers, no stored state (folds)",
        f"{seconds:.2f}s for {stats.rows:,} rows",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=10_000)
    parser.add_argument(
        "--years",
        type=int,
        nargs="+",
        default=[2, 10],
        help="stored histories to compare (one database each)",
    )
    parser.add_argument(
        "--year-sessions",
        type=int,
        default=SESSIONS_PER_YEAR,
        help="sessions of the re-run in the longest history (0: skip it)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="server directory to keep (and reuse the loaded databases from)",
    )
    args = parser.parse_args()

    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="breakout-bench-features-"))
    try:
        server_url = local_postgres.ensure_local_server(data_dir)
        calendar = nyse_sessions(date(1990, 1, 2), LAST_SESSION)
        calendar = calendar[-max(args.years) * SESSIONS_PER_YEAR :]
        medians = {}
        longest = None
        for years in sorted(args.years):
            postgres, sessions = prepare(server_url, data_dir, args.tickers, years, calendar)
            medians[years] = one_session(postgres, sessions, args.tickers, years, args.repeat)
            one_session_folded(postgres, sessions, args.tickers)
            longest = postgres, sessions
        if len(medians) > 1:
            short, long = min(medians), max(medians)
            _line(
                f"one session, {long} / {short} years stored",
                f"{medians[long] / medians[short]:.2f}x the time",
            )
        if args.year_sessions:
            postgres, sessions = longest
            settings = load_settings(database_url=postgres.database_url)
            again = sessions[-args.year_sessions - 1 : -1]  # the last session stays outside
            seconds, rows, bulk = timed(postgres, again, settings)
            _line(
                f"{len(again)} sessions x {args.tickers:,} tickers, re-run, "
                f"{max(medians)} years stored",
                f"{seconds:.0f}s for {rows:,} rows = {rows / seconds:,.0f} rows/s ({_path(bulk)})",
            )
        _line("targets", "one session <= 2 s with 10 years stored, one year <= 300 s")
    finally:
        if args.keep is None:
            local_postgres.stop_local_server(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

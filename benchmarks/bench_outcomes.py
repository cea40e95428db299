"""Replaying the outcome of every signal of 10,000 synthetic tickers x 10 years (target <= 30 s).

The market is the scanner benchmark's (random walks on NYSE sessions); its signals come from the
real scanner. Two figures:
  core:     cutting each signal's bars out of the dense arrays and `core.outcomes.replay`;
  postgres: the `signal_outcomes` asset's own path (`replay_outcomes` + `merge_outcomes`): the
            signals query, the packed bar read, the replay and the upsert, in a fresh database
            of the local Postgres. Only the bars the replay can read are stored (each signal's
            entry window + holding limit): every read is an index range scan on
            (ticker, session), so the rest of the 25M bars would not be touched.

Run: `.venv/bin/python benchmarks/bench_outcomes.py [n_tickers] [n_sessions] [--no-db]`
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_scanner import synthetic_arrays  # noqa: E402

from breakout_assets.assets.outcomes import merge_outcomes, replay_outcomes  # noqa: E402
from breakout_assets.assets.signals import signal_rows, write_signals  # noqa: E402
from breakout_assets.core.outcomes import BarPaths, OutcomeConfig, replay  # noqa: E402
from breakout_assets.core.scanner import MarketArrays, ScannerConfig, scan  # noqa: E402
from breakout_assets.partitions import nyse_sessions  # noqa: E402
from breakout_assets.resources import local_postgres  # noqa: E402
from breakout_assets.resources.migrations import apply_migrations  # noqa: E402
from breakout_assets.resources.pg_copy import copy_payload, encode_csv  # noqa: E402
from breakout_assets.settings import load_settings  # noqa: E402


def market(n: int, m: int) -> MarketArrays:
    walk = synthetic_arrays(n, m)
    sessions = np.array(
        nyse_sessions(date(2014, 1, 2), date(2026, 12, 31))[:m], dtype="datetime64[D]"
    )
    return MarketArrays(
        walk.tickers, sessions, walk.open, walk.high, walk.low, walk.close, walk.volume
    )


def windows(arrays: MarketArrays, row: np.ndarray, col: np.ndarray, horizon: int):
    """(signal position, ticker row, session column) of every bar a replay may read."""
    steps = np.arange(1, horizon + 1)
    cols = col[:, None] + steps[None, :]
    sig = np.repeat(np.arange(len(row)), horizon).reshape(len(row), horizon)
    rows = np.repeat(row, horizon).reshape(len(row), horizon)
    inside = cols < arrays.close.shape[1]
    sig, rows, cols = sig[inside], rows[inside], cols[inside]
    traded = ~np.isnan(arrays.close[rows, cols])
    return sig[traded], rows[traded], cols[traded]


def core_replay(arrays: MarketArrays, frame: pd.DataFrame, config: OutcomeConfig):
    horizon = config.entry_valid_sessions + config.max_holding_sessions - 1
    sig, rows, cols = windows(
        arrays, frame["ticker_index"].to_numpy(), frame["session_index"].to_numpy(), horizon
    )
    paths = BarPaths.from_rows(
        sig,
        cols,
        len(frame),
        open=arrays.open[rows, cols],
        high=arrays.high[rows, cols],
        low=arrays.low[rows, cols],
        close=arrays.close[rows, cols],
    )
    signals = {
        k: frame[k].to_numpy()
        for k in ("entry", "stop", "booked_target", "target_50", "target_75", "target_100", "risk")
    }
    signals["side"] = np.where(frame["side"] == "long", 1, -1)
    signals["signal_ord"] = frame["session_index"].to_numpy()
    return replay(signals, paths, arrays.close.shape[1] - 1, config)


def postgres_replay(arrays: MarketArrays, frame: pd.DataFrame, config: OutcomeConfig) -> None:
    server = local_postgres.ensure_local_server(load_settings().pg_data_dir)
    admin = create_engine(
        local_postgres.with_driver(server, "psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS breakout_bench_outcomes WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE breakout_bench_outcomes"))
    engine = create_engine(
        local_postgres.with_driver(
            local_postgres.with_database(server, "breakout_bench_outcomes"), "psycopg"
        )
    )
    apply_migrations(engine)
    horizon = config.entry_valid_sessions + config.max_holding_sessions - 1
    _, rows, cols = windows(
        arrays, frame["ticker_index"].to_numpy(), frame["session_index"].to_numpy(), horizon
    )
    cells = np.unique(np.stack([rows, cols]), axis=1)
    rows, cols = cells
    bars = pd.DataFrame(
        {
            "ticker": arrays.tickers[rows],
            "session": arrays.sessions[cols].astype("datetime64[ns]"),
            "open": arrays.open[rows, cols],
            "high": arrays.high[rows, cols],
            "low": arrays.low[rows, cols],
            "close": arrays.close[rows, cols],
            "volume": arrays.volume[rows, cols].astype(np.int64),
        }
    )
    with engine.begin() as conn:
        copy_payload(
            conn,
            "COPY market_bars (ticker, session, open, high, low, close, volume) "
            "FROM STDIN (FORMAT csv)",
            encode_csv(bars),
        )
        sessions = sorted(frame["session"].dt.date.unique())
        write_signals(
            conn, sessions, frame.drop(columns=[c for c in frame.columns if c.endswith("_index")])
        )
        conn.execute(text("ANALYZE"))
    first, last = arrays.sessions[0].astype(date), arrays.sessions[-1].astype(date)
    started = time.perf_counter()
    with engine.begin() as conn:
        out = replay_outcomes(conn, first, last, config)
        merge_outcomes(conn, out)
    seconds = time.perf_counter() - started
    print(
        f"{'postgres: signal_outcomes path, all signals':<46} {seconds:8.2f} s   "
        f"({len(bars):,} bars stored, {len(out):,} outcomes written)"
    )
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE breakout_bench_outcomes WITH (FORCE)"))
    admin.dispose()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n, m = (int(args[0]) if args else 10_000), (int(args[1]) if len(args) > 1 else 2_520)
    config = OutcomeConfig()
    started = time.perf_counter()
    arrays = market(n, m)
    frame = signal_rows(scan(arrays, ScannerConfig()).to_frame(arrays))
    print(
        f"{n:,} tickers x {m:,} sessions: {len(frame):,} signals "
        f"(market + scan {time.perf_counter() - started:.1f} s)"
    )
    core_replay(arrays, frame.head(50), config)  # compile / load the cached kernel
    started = time.perf_counter()
    out = core_replay(arrays, frame, config)
    seconds = time.perf_counter() - started
    statuses = (
        pd.Series(out.status)
        .map({0: "pending", 1: "win", 2: "loss", 3: "expired", 4: "unfilled"})
        .value_counts()
        .to_dict()
    )
    print(f"{'core: cut bar paths + replay, all signals':<46} {seconds:8.2f} s   {statuses}")
    if "--no-db" not in sys.argv:
        postgres_replay(arrays, frame, config)


if __name__ == "__main__":
    main()

"""How fast the synthetic market generates a whole market: 10,000 tickers x 2,500 sessions.

Run: `python benchmarks/bench_synthetic.py [n_tickers] [n_sessions] [chunk_sessions]`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from datetime import date

import pandas as pd

from breakout_assets.resources.market_data.synthetic import SyntheticSource
from breakout_assets.simulation import SyntheticMarket

ORIGIN = date(2015, 1, 2)


def _report(label: str, chunks: Iterable[pd.DataFrame]) -> None:
    started, cpu = time.perf_counter(), time.process_time()
    rows = sum(len(chunk) for chunk in chunks)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"{label:<36} {rows:>12,} rows {wall:7.2f} s (cpu {cpu:5.2f} s) "
        f"{rows / wall:>12,.0f} rows/s"
    )


def main(n_tickers: int = 10_000, n_sessions: int = 2_500, chunk_sessions: int = 250) -> None:
    market = SyntheticMarket(n_tickers, seed=7, origin=ORIGIN)
    sessions = list(market.sessions(ORIGIN, date(2100, 1, 1))[:n_sessions])
    print(
        f"{n_tickers:,} tickers x {len(sessions):,} sessions, chunks of {chunk_sessions} sessions"
    )
    _report("core generator", market.iter_daily_bars(sessions, chunk_sessions))
    _report("core generator, second pass", market.iter_daily_bars(sessions, chunk_sessions))
    source = SyntheticSource(n_tickers=n_tickers, seed=7, origin=ORIGIN)
    _report("source (conform_bars frames)", source.iter_daily_bars(sessions, chunk_sessions))
    started = time.perf_counter()
    planted = market.planted_setups(sessions[0], sessions[-1])
    print(
        f"{'planted_setups over the range':<36} {len(planted):>12,} setups "
        f"{time.perf_counter() - started:5.2f} s"
    )


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))

"""How fast the synthetic source generates a whole market: 10,000 tickers x 2,500 sessions.

Run: `python benchmarks/bench_synthetic.py [n_tickers] [n_sessions] [chunk_sessions]`.
"""

from __future__ import annotations

import sys
import time
from datetime import date

from breakout_assets.core.synthetic import SyntheticMarket
from breakout_assets.resources.market_data.synthetic import SyntheticSource


def _time_chunks(label: str, chunks, n_sessions: int) -> None:
    started = time.perf_counter()
    rows = sum(len(chunk) for chunk in chunks)
    elapsed = time.perf_counter() - started
    print(f"{label:<34} {rows:>12,} rows  {elapsed:7.2f} s  {rows / elapsed:>12,.0f} rows/s "
          f"({n_sessions} sessions)")


def main(n_tickers: int = 10_000, n_sessions: int = 2_500, chunk_sessions: int = 250) -> None:
    origin = date(2015, 1, 2)
    market = SyntheticMarket(n_tickers, seed=7, origin=origin)
    sessions = list(market.sessions(origin, date(2100, 1, 1))[:n_sessions])
    print(f"{n_tickers:,} tickers x {len(sessions):,} sessions, chunks of {chunk_sessions} sessions")
    _time_chunks("core generator (first pass)", market.iter_daily_bars(sessions, chunk_sessions), len(sessions))
    _time_chunks("core generator (from checkpoints)", market.iter_daily_bars(sessions, chunk_sessions), len(sessions))
    source = SyntheticSource(n_tickers=n_tickers, seed=7, origin=origin)
    _time_chunks("source, contract frames", source.iter_daily_bars(sessions, chunk_sessions), len(sessions))
    started = time.perf_counter()
    planted = market.planted_setups(sessions[0], sessions[-1])
    print(f"{'planted_setups over the range':<34} {len(planted):>12,} setups {time.perf_counter() - started:6.2f} s")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))

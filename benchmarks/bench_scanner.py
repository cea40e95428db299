"""How fast the breakout scanner scans a whole market: 10,000 tickers x 2,500 sessions.

Prints: the full scan (median of a few runs after compiling), a memory-bound pass over the same
arrays for comparison, the last-session-only scan (live use), and the plain python reference
(`core.scanner_reference`) on a few tickers, extrapolated to the whole market.

Run: `python benchmarks/bench_scanner.py [n_tickers] [n_sessions] [reference_tickers]`.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from breakout_assets.core.scanner import MarketArrays, ScannerConfig, scan
from breakout_assets.core.scanner_reference import reference_scan

OHLCV = ("open", "high", "low", "close", "volume")


def synthetic_arrays(n: int, m: int, seed: int = 7) -> MarketArrays:
    """Geometric random walks with per-ticker volatility, OHLC around the close-to-close path,
    log-normal volume, prices in cents; a tenth of the tickers list part-way through."""
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.008, 0.04, (n, 1))
    ret = rng.standard_normal((n, m)) * sigma
    close = rng.uniform(5, 200, (n, 1)) * np.exp(np.cumsum(ret, axis=1))
    prev = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    open_ = prev * np.exp(0.3 * sigma * rng.standard_normal((n, m)))
    high = np.maximum(open_, close) * np.exp(0.5 * sigma * np.abs(rng.standard_normal((n, m))))
    low = np.minimum(open_, close) * np.exp(-0.5 * sigma * np.abs(rng.standard_normal((n, m))))
    volume = np.round(rng.lognormal(13, 0.5, (n, 1)) * rng.lognormal(0, 0.4, (n, m)))
    open_, high, low, close = (np.maximum(np.round(a, 2), 0.01) for a in (open_, high, low, close))
    for late in np.flatnonzero(rng.random(n) < 0.1):
        cut = int(rng.integers(1, m))
        for a in (open_, high, low, close, volume):
            a[late, :cut] = np.nan
    sessions = np.datetime64("2015-01-02") + np.arange(m).astype("timedelta64[D]")
    tickers = np.array([f"T{i:05d}" for i in range(n)])
    return MarketArrays(tickers, sessions, open_, high, low, close, volume)


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of `runs` calls, and the last result."""
    walls, cpus = [], []
    result = None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main(n_tickers: int = 10_000, n_sessions: int = 2_500, reference_tickers: int = 8) -> None:
    import numba

    config = ScannerConfig()
    started = time.perf_counter()
    arrays = synthetic_arrays(n_tickers, n_sessions)
    print(
        f"{n_tickers:,} tickers x {n_sessions:,} sessions "
        f"({5 * arrays.close.nbytes / 1e9:.2f} GB of OHLCV), built in "
        f"{time.perf_counter() - started:.1f} s; numba threads: {numba.get_num_threads()}"
    )
    started = time.perf_counter()
    scan(synthetic_arrays(4, 300, seed=1), config)  # compile (or load the cache)
    print(f"{'compile / load cached kernels':<44} {time.perf_counter() - started:8.3f} s")

    wall, cpu, setups = timed(lambda: scan(arrays, config), 5)
    long = int((setups.side > 0).sum())
    print(
        f"{'full scan (median of 5)':<44} {wall:8.3f} s   cpu {cpu:6.3f} s   "
        f"{len(setups):,} setups ({long:,} long, {len(setups) - long:,} short)"
    )
    nanmax, _, _ = timed(lambda: np.nanmax(arrays.close, axis=1), 5)
    print(f"{'memory-bound pass: nanmax(close)':<44} {nanmax:8.3f} s")
    read, _, _ = timed(
        lambda: [np.nanmax(getattr(arrays, f), axis=1) for f in ("high", "low", "close", "volume")],
        3,
    )
    print(f"{'memory-bound pass: nanmax(h, l, c, v)':<44} {read:8.3f} s   (what the scan reads)")
    last, _, today = timed(lambda: scan(arrays, config, emit_from=n_sessions - 1), 5)
    print(f"{'last session only (median of 5)':<44} {last:8.3f} s   {len(today):,} setups")

    numba.set_num_threads(1)
    one, _, _ = timed(lambda: scan(arrays, config), 3)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    print(f"{'full scan on 1 thread (median of 3)':<44} {one:8.3f} s")

    # the reference on a few tickers (those with setups first, so that there is something to
    # compare), extrapolated to the whole market
    k = min(reference_tickers, n_tickers)
    rows = np.r_[np.unique(setups.ticker), np.arange(n_tickers)]
    rows = rows[np.sort(np.unique(rows, return_index=True)[1])][:k]
    part = MarketArrays(
        arrays.tickers[rows], arrays.sessions, *(getattr(arrays, f)[rows] for f in OHLCV)
    )
    ref_wall, _, ref = timed(lambda: reference_scan(part, config), 1)
    fast_part = scan(part, config)
    same = len(ref) == len(fast_part) and all(
        np.array_equal(getattr(ref, f), getattr(fast_part, f))
        for f in (
            "ticker",
            "session",
            "side",
            "rally_start",
            "rally_end",
            "entry",
            "stop",
            "booked_target",
            "reward_risk",
        )
    )
    estimate = ref_wall * n_tickers / k
    print(
        f"{f'python reference on {k} tickers':<44} {ref_wall:8.3f} s   {len(ref)} setups "
        f"({'same as' if same else 'DIFFERENT from'} the fast scanner)"
    )
    print(
        f"{'python reference, extrapolated':<44} {estimate:8.1f} s   -> fast scanner is "
        f"{estimate / wall:,.0f}x faster"
    )
    print(
        f"{'requirements':<44} full scan <= 1 s: {'yes' if wall <= 1 else 'NO'};   "
        f">= 50x the reference: {'yes' if estimate / wall >= 50 else 'NO'}"
    )


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))

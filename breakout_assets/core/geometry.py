"""Small numba primitives of bar geometry shared by the scanner and the pattern features.

All take one ticker's bars as 1-D float64 arrays (NaN where the ticker has no bar) and a session
index, and read nothing after the sessions they are given.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray, k: int) -> float:
    """True range of bar k: max(high, previous close) - min(low, previous close).

    The previous close is the session before k; where it is missing (k = 0 or NaN) the bar's
    own high - low is used.
    """
    h, lo = high[k], low[k]
    if k > 0:
        prev = close[k - 1]
        if prev == prev:  # not NaN
            if prev > h:
                h = prev
            if prev < lo:
                lo = prev
    return h - lo


@njit(cache=True)
def mean_true_range(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, first: int, stop: int
) -> float:
    """Mean true range of bars first .. stop-1 (summed in session order); NaN if empty."""
    if stop <= first:
        return np.nan
    total = 0.0
    for k in range(first, stop):
        total += true_range(high, low, close, k)
    return total / (stop - first)


@njit(cache=True)
def close_position(high: float, low: float, close: float, side: int) -> float:
    """Where a candle closes within its own range, measured in the trade's direction.

    Long: (close - low) / (high - low); short: (high - close) / (high - low). 1 means the candle
    closed at its extreme in the trade's favour. A zero-range candle (high == low) counts as 1.
    """
    rng = high - low
    if not rng > 0:
        return 1.0
    if side > 0:
        return (close - low) / rng
    return (high - close) / rng

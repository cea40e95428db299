"""Black-Scholes prices of European options (no dividends' schedule: a continuous yield `q`).

The model chain, the simulated broker's option fills and the options backtest price through
here; tests check the prices against py_vollib. US equity options are American, but a call on a
stock without dividends is never worth exercising early and the spreads here are closed or
settled by their expiry, so the European price is the documented approximation.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from breakout_assets.core.options import OptionRight

TRADING_DAYS_PER_YEAR = 252
CALENDAR_DAYS_PER_YEAR = 365.0


def black_scholes(
    right: OptionRight,
    spot: ArrayLike,
    strike: ArrayLike,
    years: ArrayLike,
    vol: ArrayLike,
    rate: float = 0.0,
    dividend_yield: float = 0.0,
) -> np.ndarray:
    """Price per share; at or past expiry (years <= 0) or with no volatility, the discounted
    intrinsic value of the forward."""
    s, k, t, v = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (spot, strike, years, vol))
    )
    t_pos = np.maximum(t, 0.0)
    forward = s * np.exp((rate - dividend_yield) * t_pos)
    discount = np.exp(-rate * t_pos)
    sd = v * np.sqrt(t_pos)
    live = sd > 0
    safe_sd = np.where(live, sd, 1.0)
    d1 = (np.log(forward / k) + 0.5 * safe_sd**2) / safe_sd
    d2 = d1 - safe_sd
    if right == "C":
        priced = discount * (forward * ndtr(d1) - k * ndtr(d2))
        flat = discount * np.maximum(forward - k, 0.0)
    else:
        priced = discount * (k * ndtr(-d2) - forward * ndtr(-d1))
        flat = discount * np.maximum(k - forward, 0.0)
    return np.where(live, priced, flat)


def intrinsic(right: OptionRight, spot: ArrayLike, strike: ArrayLike) -> np.ndarray:
    s, k = np.asarray(spot, dtype=np.float64), np.asarray(strike, dtype=np.float64)
    return np.maximum(s - k, 0.0) if right == "C" else np.maximum(k - s, 0.0)


def realised_vol(closes: ArrayLike, window: int = 20) -> float:
    """Annualised standard deviation of the last `window` daily log returns (NaN if too few)."""
    c = np.asarray(closes, dtype=np.float64)
    c = c[np.isfinite(c) & (c > 0)]
    if len(c) < window + 1:
        return math.nan
    returns = np.diff(np.log(c[-(window + 1) :]))
    return float(np.std(returns, ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR))

"""The model option chain: listed strikes and expiries priced by Black-Scholes (issue 11).

Demo, tests and the options backtest have no option quotes, so they list what an exchange
would list and price it:

- **Strikes** on the usual US increments, by the strike's own level (`STRIKE_BANDS`): $0.50
  below $25, $1 from $25 to $100, $2.50 from $100 to $250, $5 from $250 to $1,000 and $10
  above, from price x (1 - range) to price x (1 + range), one grid strike past each end.
- **Expiries**: the monthly one on the third Friday and, with weeklies, every other Friday; an
  expiry whose Friday is an NYSE holiday moves to the session before it (Good Friday,
  Juneteenth: the Thursday). The caller passes the exchange's sessions, so this stays pure.
- **Prices**: Black-Scholes at IV = realised volatility x `iv_multiplier`, with time to expiry
  in calendar days / 365 (the chain is valued at `as_of`'s close, options settle on the expiry
  session's close). Bid and ask sit a modelled half-spread around that mid (a fraction of it,
  at least `model_min_half_spread`); open interest is the `model_open_interest` constant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

import numpy as np
from scipy.special import ndtr

from breakout_assets.core.config import OptionsConfig
from breakout_assets.core.option_pricing import CALENDAR_DAYS_PER_YEAR, black_scholes
from breakout_assets.core.options import OptionChain, OptionQuote, OptionRight

# (strikes below this level, listed every this many dollars); band edges are multiples of the
# increments on both sides, so the grid is the same walked from any point.
STRIKE_BANDS: tuple[tuple[float, float], ...] = (
    (25.0, 0.5),
    (100.0, 1.0),
    (250.0, 2.5),
    (1000.0, 5.0),
    (math.inf, 10.0),
)
FRIDAY = 4
RIGHTS: tuple[OptionRight, ...] = ("C", "P")


def strike_increment(level: float) -> float:
    """The listing increment of strikes at `level` (see STRIKE_BANDS)."""
    return next(step for upper, step in STRIKE_BANDS if level < upper)


def strike_grid(price: float, strike_range: float) -> list[float]:
    """Listed strikes from price x (1 - range) to price x (1 + range), each end reached by one
    grid strike at or beyond it (at or above the lowest increment)."""
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"the underlying price must be positive, got {price}")
    low, high = price * (1 - strike_range), price * (1 + strike_range)
    step = strike_increment(low)
    strike = max(math.floor(low / step + 1e-9) * step, STRIKE_BANDS[0][1])
    strikes = []
    while True:
        strikes.append(round(strike, 2))
        if strike >= high - 1e-9:
            return strikes
        strike = round(strike + strike_increment(strike + 1e-9), 2)


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(FRIDAY - first.weekday()) % 7 + 14)


def expiry_dates(
    sessions: Iterable[date], min_expiry: date, max_expiry: date, *, weeklies: bool = True
) -> list[date]:
    """Listed expiries in [min_expiry, max_expiry]: monthly third Fridays (and every Friday with
    weeklies), each on the session before its Friday when that Friday is a holiday. Fridays
    past the last of `sessions` are not listed: whether they are holidays is unknown."""
    open_days = set(sessions)
    if not open_days:
        return []
    last_known = max(open_days)
    friday = min_expiry + timedelta(days=(FRIDAY - min_expiry.weekday()) % 7)
    found = []
    while friday <= min(max_expiry + timedelta(days=4), last_known):
        monthly = friday == third_friday(friday.year, friday.month)
        if weeklies or monthly:
            expiry = next(
                (
                    friday - timedelta(days=d)
                    for d in range(5)
                    if friday - timedelta(d) in open_days
                ),
                None,
            )
            if expiry is not None and min_expiry <= expiry <= max_expiry:
                found.append(expiry)
        friday += timedelta(days=7)
    return found


def years_to_expiry(as_of: date, expiry: date) -> float:
    """Calendar days / 365 from `as_of`'s close to the expiry session's close."""
    return (expiry - as_of).days / CALENDAR_DAYS_PER_YEAR


def bs_delta(
    right: OptionRight, spot: float, strike: np.ndarray, years: np.ndarray, vol: float, rate: float
) -> np.ndarray:
    """Black-Scholes delta (no dividends); at expiry or with no volatility, 1/0 (or -1/0)."""
    k, t = np.broadcast_arrays(np.asarray(strike, float), np.asarray(years, float))
    sd = vol * np.sqrt(np.maximum(t, 0.0))
    live = sd > 0
    safe_sd = np.where(live, sd, 1.0)
    d1 = (np.log(spot / k) + (rate + 0.5 * vol**2) * np.maximum(t, 0.0)) / safe_sd
    if right == "C":
        return np.where(live, ndtr(d1), (spot > k).astype(float))
    return np.where(live, ndtr(d1) - 1.0, -(spot < k).astype(float))


def model_chain(
    underlying: str,
    as_of: date,
    underlying_price: float,
    realised_vol: float,
    *,
    sessions: Sequence[date],
    min_expiry: date,
    max_expiry: date,
    config: OptionsConfig,
) -> OptionChain:
    """The calls and puts of `underlying` expiring in [min_expiry, max_expiry], priced at
    `underlying_price` on `as_of` with IV = realised_vol x config.iv_multiplier."""
    if not (math.isfinite(realised_vol) and realised_vol >= 0):
        raise ValueError(f"{underlying}: the realised volatility must be >= 0, got {realised_vol}")
    iv = realised_vol * config.iv_multiplier
    strikes = np.asarray(strike_grid(underlying_price, config.model_strike_range))
    quotes: list[OptionQuote] = []
    for expiry in expiry_dates(sessions, min_expiry, max_expiry, weeklies=config.model_weeklies):
        years = years_to_expiry(as_of, expiry)
        for right in RIGHTS:
            mids = black_scholes(right, underlying_price, strikes, years, iv, config.rate)
            deltas = bs_delta(right, underlying_price, strikes, np.array(years), iv, config.rate)
            half = np.maximum(mids * config.model_half_spread, config.model_min_half_spread)
            bids, asks = np.maximum(mids - half, 0.0), mids + half
            quotes.extend(
                OptionQuote(
                    underlying=underlying,
                    expiry=expiry,
                    strike=k,
                    right=right,
                    bid=bid,
                    ask=ask,
                    open_interest=config.model_open_interest,
                    implied_vol=iv,
                    delta=d,
                )
                for k, bid, ask, d in zip(
                    strikes.tolist(), bids.tolist(), asks.tolist(), deltas.tolist(), strict=True
                )
            )
    return OptionChain(underlying, as_of, underlying_price, tuple(quotes))

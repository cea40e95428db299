"""The NYSE calendar from the origin and the seeded universe of tickers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from breakout_assets.simulation.draws import _group_draws, _persistence, _Stream
from breakout_assets.simulation.params import (
    _SECTOR_SHARES,
    CALENDAR_YEARS,
    IDIO_GARCH,
    MARKET_VOL,
    PLANT_SIGMA_CAP,
    SECTORS,
    SLOT,
    Arrays,
)


@lru_cache(maxsize=4)
def _nyse_schedule(origin: date) -> pd.DataFrame:
    """NYSE sessions from the origin on, with their open (UTC) and number of hourly bars."""
    start = pd.Timestamp(origin)
    end = start + pd.DateOffset(years=CALENDAR_YEARS)
    calendar = xcals.get_calendar("XNYS", start=start, end=end)
    schedule = calendar.schedule
    hours = np.ceil((schedule["close"] - schedule["open"]) / pd.Timedelta(hours=1)).astype(int)
    return pd.DataFrame({"open": schedule["open"].dt.tz_localize(None), "hours": hours})


# --- the universe ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Universe:
    """Fixed traits of every ticker, drawn once from the seed."""

    tickers: np.ndarray
    sector: np.ndarray
    industry: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray  # loading on the sector factor
    idio_vol: np.ndarray  # long-run daily volatility of the stock's own returns
    log_level: np.ndarray  # log price the stock reverts to, relative to the market
    shares: np.ndarray
    turnover: np.ndarray  # typical daily volume / shares
    plant_phase: np.ndarray  # offset of the ticker's planting slots, spreads setups in time

    @property
    def omega(self) -> np.ndarray:
        return self.idio_vol**2 * (1 - _persistence(IDIO_GARCH))

    @property
    def base_volume(self) -> np.ndarray:
        return self.shares * self.turnover

    @property
    def plant_sigma(self) -> np.ndarray:
        return np.minimum(np.hypot(self.idio_vol, self.beta * MARKET_VOL), PLANT_SIGMA_CAP)


def _draw_universe(rng: np.random.Generator, size: int) -> Arrays:
    return {
        "sector": rng.choice(len(SECTORS), size, p=[_SECTOR_SHARES[s] / 100 for s in SECTORS]),
        "industry": rng.integers(0, 1 << 16, size),
        "beta": np.clip(rng.normal(1.0, 0.35, size), 0.2, 2.2),
        "gamma": np.clip(rng.normal(0.8, 0.3, size), 0.0, 1.6),
        "idio_vol": np.clip(np.exp(rng.normal(np.log(0.018), 0.4, size)), 0.007, 0.06),
        "log_level": np.clip(rng.normal(np.log(30), 1.0, size), np.log(5), np.log(800)),
        "shares": np.exp(np.clip(rng.normal(np.log(8e7), 1.2, size), np.log(2e6), np.log(1.5e10))),
        "turnover": np.clip(np.exp(rng.normal(np.log(0.008), 0.5, size)), 0.001, 0.05),
        "plant_phase": rng.integers(0, SLOT, size),
    }


def _universe(seed: int, n: int) -> _Universe:
    traits = _group_draws(seed, _Stream.UNIVERSE, (), n, _draw_universe)
    tickers = np.array([f"SYN{i:05d}" for i in range(1, n + 1)], dtype=object)
    return _Universe(tickers=tickers, **traits)

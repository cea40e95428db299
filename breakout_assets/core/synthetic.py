"""A seeded synthetic US equity market: daily and hourly bars, index series, reference data.

Why: a source that needs no network or licence, scales to a whole market (10,000+ tickers) and
plants rally -> consolidation -> breakout setups (and their short mirrors) whose geometry is
recorded, so the scanner, the labels and the models can be checked against known answers.

Determinism: every path starts at `origin` and is simulated forward in fixed blocks of `BLOCK`
sessions. Each block's random numbers come from a fresh generator seeded with `[seed, stream,
block, group]`, one per group of `GROUP` tickers, so a session's bars are identical however the
range is asked for (one session, a range, chunks), and a ticker's path does not depend on the
size of the universe.

Speed: the loop runs over sessions with numpy across all tickers; bar shapes are computed in
float32 and only rounded to the cent in float64 (10,000 tickers x 2,500 sessions: seconds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import date
from enum import IntEnum
from functools import lru_cache
from statistics import NormalDist
from typing import TypeVar

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pyarrow as pa

from breakout_assets.core.bars import HOURLY_COLUMNS, PRICE_COLUMNS, REFERENCE_COLUMNS
from breakout_assets.core.sectors import SECTOR_ETF, sector_etf

BLOCK = 16  # sessions simulated per step (small: a block's arrays stay in the CPU cache)
GROUP = 1024  # tickers per random generator
CALENDAR_YEARS = 40  # how far past the origin sessions exist

SECTORS = (*SECTOR_ETF, "Miscellaneous")
_SECTOR_SHARES = {  # rough shares of US listings, in percent
    "Technology": 18, "Finance": 15, "Health Care": 17, "Energy": 5, "Industrials": 11,
    "Consumer Discretionary": 12, "Consumer Staples": 4, "Utilities": 3, "Basic Materials": 4,
    "Real Estate": 5, "Telecommunications": 3, "Miscellaneous": 3,
}
INDUSTRIES = {
    "Technology": ("Computer Software: Prepackaged Software", "Semiconductors", "EDP Services"),
    "Finance": ("Major Banks", "Investment Bankers/Brokers/Service", "Property-Casualty Insurers"),
    "Health Care": ("Biotechnology: Pharmaceutical Preparations", "Medical/Dental Instruments"),
    "Energy": ("Oil & Gas Production", "Integrated oil Companies", "Oilfield Services/Equipment"),
    "Industrials": ("Industrial Machinery/Components", "Aerospace", "Trucking Freight/Courier"),
    "Consumer Discretionary": ("Restaurants", "Auto Manufacturing", "Department/Specialty Retail"),
    "Consumer Staples": ("Packaged Foods", "Beverages (Production/Distribution)", "Food Chains"),
    "Utilities": ("Electric Utilities: Central", "Natural Gas Distribution", "Water Supply"),
    "Basic Materials": ("Major Chemicals", "Precious Metals", "Steel/Iron Ore"),
    "Real Estate": ("Real Estate Investment Trusts", "Real Estate"),
    "Telecommunications": ("Telecommunications Equipment", "Cable & Other Pay Television Services"),
    "Miscellaneous": ("Business Services", "Multi-Sector Companies"),
}

# --- return process --------------------------------------------------------------------------
MARKET_DRIFT = 0.0003  # daily log drift of the market factor
MARKET_VOL, SECTOR_VOL = 0.0105, 0.006  # long-run daily volatility of the factors
FACTOR_TAIL = 5  # degrees of freedom of the factors' Student-t shocks: rare crash days
# GJR-GARCH(1,1) (alpha, gamma, beta): volatility clusters, and rises more after losses.
MARKET_GARCH, SECTOR_GARCH, IDIO_GARCH = (0.03, 0.12, 0.90), (0.05, 0.04, 0.91), (0.05, 0.06, 0.90)
REVERSION = 0.002  # daily pull of a stock back to its level relative to the market
PRICE_FLOOR, FLOOR_PULL = 3.0, 0.02  # and a stronger pull up below $3: no penny paths, where
# rounding to the cent would blur a setup's geometry
JUMP_PROBABILITY, JUMP_SD, JUMP_CAP = 1 / 63, 0.07, 0.30  # earnings-like overnight gaps
GAP_SHARE, GAP_NOISE = 0.35, 0.30  # share of the market move made overnight; open noise (x vol)
WICK = 0.8  # mean high-low extension beyond the open-close body (x vol)
VOLUME_MOVE, VOLUME_RANGE, VOLUME_NOISE, VOLUME_MARKET = 0.35, 0.15, 0.30, 0.25
VIX_PREMIUM, VIX_RANGE = 1.2, (9.0, 85.0)

# --- planted setups --------------------------------------------------------------------------
SLOT = 320  # each ticker has at most one planted setup per slot of sessions
PLANT_PROBABILITY = 0.8  # -> about one setup per ticker every 400 sessions (~1.6 years)
MIN_HISTORY = 60  # sessions of ordinary history before the first planted setup
LEAD = 5  # declining bars before the rally, so that its first bar is a swing low
RALLY_SESSIONS = (5, 15)
CONSOL_RATIO = (1.5, 3.0)  # consolidation length / rally length
RALLY_MAX = RALLY_SESSIONS[1]
CONSOL_MAX = int(np.ceil(RALLY_MAX * CONSOL_RATIO[1]))
PLANT_MAX = LEAD + RALLY_MAX + CONSOL_MAX + 1
PLANT_SPACING = 20  # minimum ordinary sessions between two setups of a ticker
PLANT_SIGMA_CAP = 0.03  # noise inside a pattern stays small even for the wildest tickers

HOURS_MAX = 7
_HOURLY_PROFILE = np.array([1.6, 1.0, 0.8, 0.7, 0.8, 1.0, 1.5])  # U-shaped intraday volume

_ETFS: dict[str, tuple[float, str | None, float, float, float, float]] = {
    # ticker: (market beta, sector, sector loading, tracking noise, first close, base volume)
    "SPY": (1.00, None, 0.0, 0.0003, 200.0, 8e7),
    "QQQ": (1.15, "Technology", 0.45, 0.0030, 100.0, 4.5e7),
    "IWM": (1.15, None, 0.0, 0.0050, 120.0, 3e7),
    "DIA": (0.95, "Industrials", 0.20, 0.0020, 175.0, 4e6),
    "XLE": (1.00, "Energy", 1.0, 0.0015, 75.0, 1.5e7),
    "XLF": (1.00, "Finance", 1.0, 0.0015, 24.0, 4e7),
    "XLI": (1.00, "Industrials", 1.0, 0.0015, 55.0, 1e7),
    "XLK": (1.00, "Technology", 1.0, 0.0015, 40.0, 8e6),
    "XLP": (1.00, "Consumer Staples", 1.0, 0.0015, 48.0, 9e6),
    "XLU": (1.00, "Utilities", 1.0, 0.0015, 44.0, 1.2e7),
    "XLV": (1.00, "Health Care", 1.0, 0.0015, 65.0, 8e6),
    "XLY": (1.00, "Consumer Discretionary", 1.0, 0.0015, 70.0, 5e6),
}
INDEX_TICKERS = (*_ETFS, "VIX")

PLANT_COLUMNS = (
    "ticker", "side", "rally_start", "rally_end", "consol_start", "consol_end",
    "breakout_session", "rally_low", "rally_high", "move_height", "consol_high", "consol_low",
    "entry", "breakout_open", "breakout_high", "breakout_low",
)

Arrays = dict[str, np.ndarray]  # named arrays: random draws, parts of a template
T = TypeVar("T")


class _Stream(IntEnum):
    """Independent random streams: changing one part of the model never reshuffles another."""

    UNIVERSE = 0
    FACTOR = 1
    STOCK_RETURN = 2
    STOCK_SHAPE = 3
    INDEX = 4
    PLANT = 5
    HOURLY = 6


# Inverse CDFs at the midpoints of 256 equal slices. Looking up random bytes in them draws the
# noise that shapes a bar (open gap, wicks, volume) several times faster than numpy's samplers;
# 256 levels are plenty for it. Returns themselves use true normal draws.
_QUANTILES = (np.arange(256) + 0.5) / 256
_UNIFORM = _QUANTILES.astype(np.float32)
_EXPONENTIAL = (-np.log1p(-_QUANTILES)).astype(np.float32)
_NORMAL = np.array([NormalDist().inv_cdf(q) for q in _QUANTILES], dtype=np.float32)


def _random_bytes(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform bytes, to look up in the inverse CDFs above."""
    return np.frombuffer(rng.bytes(int(np.prod(shape))), dtype=np.uint8).reshape(shape)


def _generator(seed: int, stream: _Stream, *key: int) -> np.random.Generator:
    """A fresh generator for one (stream, block, group): SFC64, seeded like `default_rng`,
    because it is markedly faster to create and to draw from than the default PCG64."""
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence([seed, stream, *key])))


def _group_draws(seed: int, stream: _Stream, key: tuple[int, ...], n: int,
                 draw: Callable[[np.random.Generator, int], Arrays]) -> Arrays:
    """Draws for n tickers (ticker = last axis), made per group so they do not depend on n."""
    parts = [draw(_generator(seed, stream, *key, g), GROUP) for g in range(-(-n // GROUP))]
    return {k: np.concatenate([p[k] for p in parts], axis=-1)[..., :n] for k in parts[0]}


def _take(arrays: T, keep: np.ndarray | slice) -> T:
    """The same entries of every array field of a dataclass."""
    return type(arrays)(*(getattr(arrays, f.name)[keep] for f in fields(arrays)))


def _concat(parts: Sequence[T]) -> T:
    """Dataclasses of arrays joined field by field."""
    kind = type(parts[0])
    return kind(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(kind)))


def _cents(price: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Quote to the cent, never below one cent, as float64 (into `out`).

    For float64 prices this is `np.round(price, 2)`. Float32 prices are rounded in float32
    (whole cents are exact up to $167,772) and only divided in float64, which gives the same
    float64 values at a fraction of the cost. Rounding is monotone: OHLC order survives it.
    """
    cents = price * 100
    np.maximum(np.rint(cents, out=cents), 1, out=cents)
    return np.divide(cents, 100.0, out=out, dtype=np.float64)


def _garch(z: np.ndarray, variance: np.ndarray, shock: np.ndarray, omega: np.ndarray,
           params: Sequence[float | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Shocks and conditional variances of a GJR-GARCH(1,1), one row per session."""
    alpha, gamma, beta = params
    shocks, variances = np.empty(z.shape), np.empty(z.shape)
    for i, zi in enumerate(z):
        variance = omega + (alpha + gamma * (shock < 0)) * shock * shock + beta * variance
        shock = np.sqrt(variance) * zi
        shocks[i], variances[i] = shock, variance
    return shocks, variances


def _persistence(params: tuple[float, float, float]) -> float:
    alpha, gamma, beta = params
    return alpha + gamma / 2 + beta


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


# --- bars ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bars:
    """OHLCV with sessions as rows and tickers (or index series) as columns."""

    prices: np.ndarray  # (4, sessions, columns): open, high, low, close
    volume: np.ndarray  # (sessions, columns)

    @staticmethod
    def allocate(rows: int, columns: int) -> _Bars:
        return _Bars(np.empty((4, rows, columns)), np.empty((rows, columns), np.int64))

    @staticmethod
    def concat(parts: Sequence[_Bars]) -> _Bars:
        return _Bars(np.concatenate([p.prices for p in parts], axis=1),
                     np.concatenate([p.volume for p in parts]))

    def take(self, rows: np.ndarray | slice, cols: np.ndarray | slice = slice(None)) -> _Bars:
        rows = _as_slice(rows) if isinstance(rows, np.ndarray) else rows
        return _Bars(self.prices[:, rows][:, :, cols], self.volume[rows][:, cols])


def _as_slice(rows: np.ndarray) -> np.ndarray | slice:
    """Consecutive rows as a slice, so taking them is a view rather than a copy."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _quote(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
           out: np.ndarray | None = None) -> np.ndarray:
    """(4, sessions, columns) prices to the cent, as float64.

    Callers build high as max(open, close) times a factor >= 1 (low: divided by one), so the
    OHLC order holds before rounding and, rounding being monotone, after it.
    """
    prices = np.empty((4, *close.shape)) if out is None else out
    for i, price in enumerate((open_, high, low, close)):
        _cents(price, out=prices[i])
    return prices


def _wrap(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
          flat: np.ndarray) -> None:
    """Make high and low wrap open and close at planted cells, whose high and low are set from
    the previous close rather than from this close (the two routes may differ in the last bit)."""
    body = np.take(open_, flat), np.take(close, flat)
    np.put(high, flat, np.maximum(np.take(high, flat), np.maximum(*body)))
    np.put(low, flat, np.minimum(np.take(low, flat), np.minimum(*body)))


def _frame(names: pa.Array, sessions: pd.DatetimeIndex, bars: _Bars) -> pd.DataFrame:
    """Rows session by session, tickers in order; built without copying any column."""
    rows = bars.volume.size
    frame = pd.DataFrame(bars.prices.reshape(4, rows).T, columns=list(PRICE_COLUMNS), copy=False)
    tickers = pa.chunked_array([names] * len(sessions), type=names.type)
    frame.insert(0, "ticker", pd.arrays.ArrowStringArray(tickers))
    frame.insert(1, "session", pd.Series(np.repeat(sessions.values, len(names)), copy=False))
    frame["volume"] = pd.Series(bars.volume.reshape(rows), copy=False)
    return frame


def _strings(values: Sequence[str]) -> pa.Array:
    return pa.array(list(values), type=pa.large_string())


# --- market and sector factors, index series -------------------------------------------------


def _market_and_sectors(market: float, sector: float) -> np.ndarray:
    return np.r_[market, np.full(len(SECTORS), sector)]


_FACTOR_VOL = _market_and_sectors(MARKET_VOL, SECTOR_VOL)
_FACTOR_PARAMS = tuple(_market_and_sectors(m, s) for m, s in zip(MARKET_GARCH, SECTOR_GARCH))
_FACTOR_OMEGA = _FACTOR_VOL**2 * (1 - _market_and_sectors(_persistence(MARKET_GARCH),
                                                          _persistence(SECTOR_GARCH)))


@dataclass(frozen=True)
class _FactorState:
    variance: np.ndarray
    shock: np.ndarray
    market_level: float  # cumulative market log return since the origin


@dataclass(frozen=True)
class _FactorBlock:
    returns: np.ndarray  # (BLOCK, 1 + sectors): the market, then each sector
    variance: np.ndarray  # conditional variance of each session's return
    next_variance: np.ndarray  # the market's variance forecast after each session (VIX close)
    market_level: float  # at the start of the block


def _factor_block(seed: int, b: int, state: _FactorState) -> tuple[_FactorBlock, _FactorState]:
    t = _generator(seed, _Stream.FACTOR, b).standard_t(FACTOR_TAIL, (BLOCK, len(_FACTOR_VOL)))
    z = t * np.sqrt((FACTOR_TAIL - 2) / FACTOR_TAIL)  # unit variance
    shocks, variance = _garch(z, state.variance, state.shock, _FACTOR_OMEGA, _FACTOR_PARAMS)
    alpha, gamma, beta = MARKET_GARCH
    m = shocks[:, 0]
    next_variance = _FACTOR_OMEGA[0] + (alpha + gamma * (m < 0)) * m * m + beta * variance[:, 0]
    returns = shocks.copy()
    returns[:, 0] += MARKET_DRIFT
    block = _FactorBlock(returns, variance, next_variance, state.market_level)
    return block, _FactorState(variance[-1], shocks[-1], state.market_level + returns[:, 0].sum())


def _etf_loadings() -> np.ndarray:
    """(factors, ETFs) loadings of each ETF on the market and its sector."""
    loadings = np.zeros((len(_FACTOR_VOL), len(_ETFS)))
    for j, (beta, sector, load, *_) in enumerate(_ETFS.values()):
        loadings[0, j] = beta
        if sector is not None:
            loadings[1 + SECTORS.index(sector), j] = load
    return loadings


_ETF_LOADINGS = _etf_loadings()
_ETF_NOISE, _ETF_FIRST_CLOSE, _ETF_VOLUME = (
    np.array([spec[i] for spec in _ETFS.values()]) for i in (3, 4, 5)
)


def _index_block(seed: int, b: int, factors: _FactorBlock,
                 log_close: np.ndarray) -> tuple[_Bars, np.ndarray]:
    """ETF bars tracking the factors, and VIX from the market's variance; the next log closes."""
    rng = _generator(seed, _Stream.INDEX, b)
    shape = (BLOCK, len(_ETFS))
    sigma = np.sqrt(factors.variance @ _ETF_LOADINGS**2 + _ETF_NOISE**2)
    ret = factors.returns @ _ETF_LOADINGS + _ETF_NOISE * rng.standard_normal(shape)
    closes = log_close + np.cumsum(ret, axis=0)
    prev = np.exp(np.vstack([log_close, closes[:-1]]))
    close = np.exp(closes)
    open_ = prev * np.exp(0.4 * ret + 0.2 * sigma * rng.standard_normal(shape))
    high = np.maximum(open_, close) * np.exp(0.4 * sigma * rng.standard_exponential(shape))
    low = np.minimum(open_, close) * np.exp(-0.4 * sigma * rng.standard_exponential(shape))
    market = np.log(factors.variance[:, :1] / MARKET_VOL**2)
    noise = 0.2 * rng.standard_normal(shape)
    volume = _ETF_VOLUME * np.exp(0.3 * np.abs(ret) / sigma + noise + 0.3 * market)
    vix = _vix_prices(rng, factors)
    prices = np.concatenate([_quote(open_, high, low, close), vix], axis=2)
    volume = np.column_stack([np.rint(volume).astype(np.int64), np.zeros(BLOCK, np.int64)])
    return _Bars(prices, volume), closes[-1]


def _vix_prices(rng: np.random.Generator, factors: _FactorBlock) -> np.ndarray:
    """VIX opens at the volatility expected for the day and closes at the one expected next."""

    def level(variance: np.ndarray) -> np.ndarray:
        noise = np.exp(0.04 * rng.standard_normal(BLOCK))
        return np.clip(VIX_PREMIUM * 100 * np.sqrt(252 * variance) * noise, *VIX_RANGE)

    open_, close = level(factors.variance[:, 0]), level(factors.next_variance)
    high = np.maximum(open_, close) * np.exp(0.04 * rng.standard_exponential(BLOCK))
    low = np.minimum(open_, close) * np.exp(-0.04 * rng.standard_exponential(BLOCK))
    return _quote(open_, high, low, close)[..., None]


# --- stocks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StockState:
    log_close: np.ndarray
    variance: np.ndarray
    shock: np.ndarray


def _draw_stock_returns(rng: np.random.Generator, size: int) -> Arrays:
    cells = BLOCK * size
    jumps = np.zeros(cells, dtype=np.float32)
    count = rng.binomial(cells, JUMP_PROBABILITY)
    where = rng.integers(0, cells, count)
    jump_sizes = np.clip(rng.normal(0.0, JUMP_SD, count), -JUMP_CAP, JUMP_CAP)
    np.add.at(jumps, where, jump_sizes.astype(np.float32))
    z = rng.standard_normal((BLOCK, size), dtype=np.float32)
    return {"z": z, "jump": jumps.reshape(BLOCK, size)}


def _draw_stock_shape(rng: np.random.Generator, size: int) -> Arrays:
    return {"bytes": _random_bytes(rng, (4, BLOCK, size))}  # gap, range, split, volume


@dataclass(frozen=True)
class _Cells:
    """Planted values, one per (session, ticker) cell, grouped by block.

    `flat` is the cell's index in its block's (sessions x tickers) arrays. `ret` is a log
    return; open/high/low are multiples of the previous close and volume a multiple of the
    ticker's base volume, so a setup drops into any price level.
    """

    block: np.ndarray
    flat: np.ndarray
    ret: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    volume: np.ndarray

    def by_block(self) -> _Cells:
        """Sorted by block (a stable radix sort on small ints), so that a block is a slice."""
        return _take(self, np.argsort(self.block, kind="stable"))

    def in_block(self, b: int) -> _Cells:
        """The cells of block b (of cells sorted by block)."""
        i, j = np.searchsorted(self.block, np.array([b, b + 1], dtype=self.block.dtype))
        return _take(self, slice(i, j))


@dataclass(frozen=True)
class _Path:
    """A block's simulated closes and what its bars are built around (sessions x tickers)."""

    block: int
    prev_log_close: np.ndarray  # before the block
    log_close: np.ndarray
    ret: np.ndarray  # log return of each session, planted setups included
    drift: np.ndarray
    systematic: np.ndarray  # market + sector part of the return
    jump: np.ndarray
    variance: np.ndarray  # idiosyncratic conditional variance
    cells: _Cells  # planted values in the block


# --- planted setups --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plants:
    """Where the planted setups are: one entry per setup."""

    ticker: np.ndarray
    start: np.ndarray  # session position (from the origin) of the first lead-in bar
    short: np.ndarray
    rally_len: np.ndarray
    consol_len: np.ndarray

    @property
    def rally_end(self) -> np.ndarray:
        """Template row of the rally's last bar (the first is row LEAD)."""
        return LEAD + self.rally_len - 1

    @property
    def breakout(self) -> np.ndarray:
        """Template row of the breakout bar, the setup's last."""
        return self.rally_end + self.consol_len + 1

    @property
    def end(self) -> np.ndarray:
        return self.start + self.breakout + 1

    def cells(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where setups meet sessions [lo, hi): template-row mask, positions, ticker columns."""
        rows = np.arange(PLANT_MAX)[:, None]
        pos = self.start + rows
        mask = (rows <= self.breakout) & (pos >= lo) & (pos < hi)
        return mask, pos[mask], np.broadcast_to(self.ticker, pos.shape)[mask]


def _draw_plants(rng: np.random.Generator, size: int) -> Arrays:
    def u(lo: float, hi: float, shape: int | tuple[int, int]) -> np.ndarray:
        return lo + (hi - lo) * rng.random(shape, dtype=np.float32)

    open_noise, up, down, volume = _random_bytes(rng, (4, PLANT_MAX, size))
    return {
        "planted": rng.random(size) < PLANT_PROBABILITY,
        "offset": rng.integers(0, SLOT - PLANT_MAX - PLANT_SPACING + 1, size),
        "short": rng.random(size) < 0.5,
        "rally_len": rng.integers(RALLY_SESSIONS[0], RALLY_SESSIONS[1] + 1, size),
        "consol_ratio": u(*CONSOL_RATIO, size),
        "lead_drop": u(0.02, 0.06, size),
        "dip": u(0.3, 1.0, size),
        "move": np.log1p(u(0.15, 0.40, size)),
        "top_gap": u(0.05, 0.15, size),
        "band": u(0.12, 0.28, size),
        "first_step": u(0.04, 0.12, size),
        "last_slack": u(0.0, 0.04, size),
        "breakout_gain": u(0.01, 0.04, size),
        "breakout_wick": u(0.0, 0.9, size),
        "lead_steps": u(0.5, 1.5, (LEAD, size)),
        "rally_steps": u(0.3, 1.7, (RALLY_MAX, size)),
        "band_noise": np.take(_NORMAL, _random_bytes(rng, (CONSOL_MAX, size))),
        "open_noise": np.take(_NORMAL, open_noise),
        "up": np.minimum(np.take(_EXPONENTIAL, up), 4.0),
        "down": np.minimum(np.take(_EXPONENTIAL, down), 4.0),
        "volume": np.take(_UNIFORM, volume),
    }


def _slot_plants(seed: int, slot: int, universe: _Universe) -> tuple[_Plants, Arrays]:
    """The setups of one planting slot (which tickers, when, how long) and the draws that
    shape them (one column per ticker)."""
    d = _group_draws(seed, _Stream.PLANT, (slot + 1,), len(universe.tickers), _draw_plants)
    start = slot * SLOT + universe.plant_phase + d["offset"]
    keep = np.flatnonzero(d["planted"] & (start >= MIN_HISTORY))
    consol_len = np.ceil(d["rally_len"] * d["consol_ratio"]).astype(int)
    return _Plants(keep, start[keep], d["short"][keep], d["rally_len"][keep], consol_len[keep]), d


def _slot_cells(plants: _Plants, d: Arrays, universe: _Universe) -> _Cells:
    """The planted values of a slot's setups, built a group of setups at a time so that the
    template arrays stay in the CPU cache."""
    cells = []
    for first in range(0, max(len(plants.ticker), 1), GROUP):  # one part at least: keeps dtypes
        part = _take(plants, slice(first, first + GROUP))
        group = {k: v[..., part.ticker] for k, v in d.items()}
        sigma = universe.plant_sigma[part.ticker]
        cells.append(_planted_cells(part, group, sigma, len(universe.tickers)))
    return _concat(cells).by_block()


def _planted_cells(plants: _Plants, d: Arrays, sigma: np.ndarray, n_tickers: int) -> _Cells:
    """The setups' template cells, placed by block and flat index."""
    mask, pos, ticker = plants.cells(0, np.iinfo(np.int64).max)
    values = _relative(_long_template(d, plants, sigma), plants.short, mask)
    flat = (pos % BLOCK * n_tickers + ticker).astype(np.int32)
    return _Cells((pos // BLOCK).astype(np.int16), flat, **values)


def _previous(close: np.ndarray) -> np.ndarray:
    """Each template row's previous close (row 0: the close before the setup, 0 in log)."""
    return np.vstack([np.zeros_like(close[:1]), close[:-1]])


def _segment(path: np.ndarray, first: np.ndarray | int) -> np.ndarray:
    """Spread a per-setup path (rows from 0) onto the template rows starting at `first`."""
    rows = np.clip(np.arange(PLANT_MAX)[:, None] - first, 0, len(path) - 1)
    return np.take_along_axis(path, rows, axis=0)


def _long_template(d: Arrays, plants: _Plants, sigma: np.ndarray) -> Arrays:
    """Log open/high/low/close (0 = the close before the setup) and volume of long setups.

    Lead-in: a short decline. Rally: from the swing low (below every lead-in low) up to the
    swing high. Consolidation: closes wander in a band below the swing high and every bar is
    clipped to the band, on low volume. Breakout: opens in the band and closes above the swing
    high on the setup's highest volume.
    """
    rows = np.arange(PLANT_MAX)[:, None]
    rally_end, breakout_row = plants.rally_end, plants.breakout
    lead, rally = rows < LEAD, (rows >= LEAD) & (rows <= rally_end)
    consol, breakout = (rows > rally_end) & (rows < breakout_row), rows == breakout_row
    sigma = sigma.astype(np.float32)
    open_noise = 0.2 * sigma * d["open_noise"]
    up, down = 0.3 * sigma * d["up"], 0.3 * sigma * d["down"]

    steps = np.cumsum(d["lead_steps"], axis=0)
    lead_close = -d["lead_drop"] * steps / steps[-1]
    lead_low = np.minimum(_previous(lead_close) + open_noise[:LEAD], lead_close) - down[:LEAD]
    low = np.minimum(lead_low.min(axis=0), lead_close[-1] + open_noise[LEAD]) - d["dip"] * sigma
    move = d["move"]
    high = low + move
    top = high - d["top_gap"] * move
    bottom = top - d["band"] * move
    eps = 0.02 * move  # keeps the swing bars the rally's unique extremes

    steps = np.where(np.arange(RALLY_MAX)[:, None] < plants.rally_len, d["rally_steps"], 0.0)
    steps[0] = 0.0
    progress = np.cumsum(steps, axis=0) / steps.sum(axis=0)
    first, last = d["first_step"], 1 - d["top_gap"] - d["last_slack"]
    rally_close = low + move * (first + (last - first) * progress)
    band = _band_path(d["band_noise"], (low + move * last - bottom) / (top - bottom))
    close = np.select(
        [lead, rally, consol],
        [_segment(lead_close, 0), _segment(rally_close, LEAD),
         _segment(bottom + (top - bottom) * band, rally_end + 1)],
        high + d["breakout_gain"],
    )

    floor = np.select([lead, rows == LEAD, rally], [-np.inf, low, low + eps], bottom)
    ceiling = np.select(
        [lead, rows == rally_end, rally, consol], [np.inf, high, high - eps, top], np.inf
    )
    opens = np.clip(_previous(close) + open_noise, floor, np.where(breakout, top, ceiling))
    highs = np.clip(np.maximum(opens, close) + up, floor, ceiling)
    lows = np.clip(np.minimum(opens, close) - down, floor, ceiling)
    lows = np.where(rows == LEAD, low, lows)
    breakout_high = close + d["breakout_wick"] * (close - lows)
    highs = np.select([rows == rally_end, breakout], [high, breakout_high], highs)
    volume = np.select(
        [lead, rally, consol],
        [0.7 + 0.4 * d["volume"], 1.3 + 0.9 * d["volume"], 0.35 + 0.35 * d["volume"]],
        2.2 + 1.3 * d["volume"],
    )
    return {"open": opens, "high": highs, "low": lows, "close": close, "volume": volume}


def _band_path(noise: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Positions in [0.1, 0.9] of the band: a mean-reverting walk, one row per session."""
    x = np.clip(start, 0.1, 0.9)
    path = np.empty_like(noise)
    for i, z in enumerate(noise):
        x = np.clip(0.5 + 0.7 * (x - 0.5) + 0.18 * z, 0.1, 0.9)
        path[i] = x
    return path


def _relative(template: Arrays, short: np.ndarray, mask: np.ndarray) -> Arrays:
    """The values of the template cells in `mask`, relative to the previous close.

    Short setups are the mirror image: log prices negated, high and low swapped.
    """
    sign = np.where(short, np.float32(-1), np.float32(1))
    close = sign * template["close"]
    prev = _previous(close)[mask]
    highs = np.where(short, -template["low"], template["high"])[mask]
    lows = np.where(short, -template["high"], template["low"])[mask]
    return {
        "ret": close[mask] - prev,
        "open": np.exp((sign * template["open"])[mask] - prev),
        "high": np.exp(highs - prev),
        "low": np.exp(lows - prev),
        "volume": template["volume"][mask],
    }


def _plant_records(plants: _Plants, bars: Arrays, tickers: np.ndarray,
                   sessions: pd.DatetimeIndex) -> pd.DataFrame:
    """The geometry of each planted setup, read from its bars (template rows x setups)."""
    col = np.arange(len(plants.ticker))
    rally_end, breakout = plants.rally_end, plants.breakout
    rows = np.arange(PLANT_MAX)[:, None]
    consol = (rows > rally_end) & (rows < breakout)
    short = plants.short
    rally_low = np.where(short, bars["low"][rally_end, col], bars["low"][LEAD, col])
    rally_high = np.where(short, bars["high"][LEAD, col], bars["high"][rally_end, col])

    def session(row: np.ndarray | int) -> pd.DatetimeIndex:
        return sessions[plants.start + row]

    frame = pd.DataFrame({
        "ticker": pd.array(tickers[plants.ticker], dtype="string"),
        "side": np.where(short, "short", "long"),
        "rally_start": session(LEAD),
        "rally_end": session(rally_end),
        "consol_start": session(rally_end + 1),
        "consol_end": session(breakout - 1),
        "breakout_session": session(breakout),
        "rally_low": rally_low,
        "rally_high": rally_high,
        "move_height": rally_high - rally_low,
        "consol_high": np.where(consol, bars["high"], -np.inf).max(axis=0),
        "consol_low": np.where(consol, bars["low"], np.inf).min(axis=0),
        "entry": bars["close"][breakout, col],
        "breakout_open": bars["open"][breakout, col],
        "breakout_high": bars["high"][breakout, col],
        "breakout_low": bars["low"][breakout, col],
    }, columns=list(PLANT_COLUMNS))
    return frame.sort_values(["breakout_session", "ticker"], ignore_index=True)


# --- hourly bars -----------------------------------------------------------------------------


def _draw_hours(rng: np.random.Generator) -> Arrays:
    shape = (BLOCK, HOURS_MAX)
    return {
        "path": rng.standard_normal(shape),
        "up": rng.random(shape),
        "down": rng.random(shape),
        "volume": rng.standard_normal(shape),
        "high_at": rng.random((BLOCK, 1)),
        "low_at": rng.random((BLOCK, 1)),
    }


def _split_into_hours(day: _Bars, hours: np.ndarray, d: Arrays) -> tuple[_Bars, np.ndarray]:
    """Hourly bars (sessions x HOURS_MAX) that add up exactly to one ticker's daily bars.

    A Brownian bridge from the open to the close, kept inside the day's range, gives the hourly
    opens and closes; one bar touches the day's high and one its low; the day's volume is
    shared out in a U shape. Also returns which (session, hour) cells are real bars.
    """
    o, h, low, c = day.prices
    v = day.volume
    k = hours[:, None]
    walk = np.hstack([np.zeros_like(o), np.cumsum(d["path"], axis=1)])
    t = np.minimum(np.arange(HOURS_MAX + 1) / k, 1.0)
    bridge = walk - t * np.take_along_axis(walk, k, axis=1)
    path = _cents(np.clip(o + (c - o) * t + 0.35 * (h - low) * bridge / np.sqrt(k), low, h))
    path[:, :1] = o
    path = np.where(t == 1.0, c, path)
    bar_open, bar_close = path[:, :-1], path[:, 1:]
    top, bottom = np.maximum(bar_open, bar_close), np.minimum(bar_open, bar_close)
    bar = np.arange(HOURS_MAX)
    highs = _cents(top + 0.5 * d["up"] * (h - top))
    lows = _cents(bottom - 0.5 * d["down"] * (bottom - low))
    highs = np.where(bar == (d["high_at"] * k).astype(int), h, highs)
    lows = np.where(bar == (d["low_at"] * k).astype(int), low, lows)
    active = bar < k
    weights = np.where(active, _HOURLY_PROFILE * np.exp(0.3 * d["volume"]), 0.0)
    volume = np.floor(v * weights / weights.sum(axis=1, keepdims=True)).astype(np.int64)
    volume[np.arange(len(k)), hours - 1] += v[:, 0] - volume.sum(axis=1)
    return _Bars(np.stack([bar_open, highs, lows, bar_close]), volume), active


# --- the market ------------------------------------------------------------------------------


class SyntheticMarket:
    """A seeded market of `n_tickers` stocks plus the index series; every path starts at `origin`.

    Blocks are simulated in order from the origin, resuming from saved block checkpoints, so a
    request costs the sessions up to its end once, then only its own blocks.
    """

    def __init__(self, n_tickers: int, seed: int, origin: date) -> None:
        if not 1 <= n_tickers <= 99_999:
            raise ValueError(f"n_tickers must be between 1 and 99999, got {n_tickers}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.n_tickers, self.seed = n_tickers, seed
        self._schedule = _nyse_schedule(origin)
        self._sessions = pd.DatetimeIndex(self._schedule.index)
        self.origin: date = self._sessions[0].date()
        self._universe = u = _universe(seed, n_tickers)
        self._ticker_index = pd.Index(u.tickers)
        self._factor_blocks: list[_FactorBlock] = []
        self._factor_state = _FactorState(_FACTOR_VOL**2, np.zeros_like(_FACTOR_VOL), 0.0)
        self._index_blocks: list[_Bars] = []
        self._index_log_close = np.log(_ETF_FIRST_CLOSE)
        self._checkpoints = {0: _StockState(u.log_level, u.idio_vol**2, np.zeros(n_tickers))}
        self._slots: dict[int, _Cells] = {}

    @property
    def tickers(self) -> list[str]:
        return list(self._universe.tickers)

    def sessions(self, start: date, end: date) -> pd.DatetimeIndex:
        """The sessions of [start, end] that the market has (none before the origin)."""
        lo, hi = self._bounds(start, end)
        return self._sessions[lo:hi]

    # --- public data -------------------------------------------------------------------------

    def daily_bars(self, sessions: Sequence[date],
                   tickers: Sequence[str] | None = None) -> pd.DataFrame:
        """Daily bars of every ticker (or of `tickers`) for the sessions, in one frame."""
        chunks = list(self.iter_daily_bars(sessions, max(len(sessions), 1), tickers))
        if chunks:
            return chunks[0]
        names = self._names(self._columns(tickers))
        return _frame(names, self._sessions[:0], _Bars.allocate(0, len(names)))

    def iter_daily_bars(self, sessions: Sequence[date], chunk_sessions: int = 250,
                        tickers: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """Daily bars in frames of at most `chunk_sessions` sessions, in session order."""
        if chunk_sessions < 1:
            raise ValueError(f"chunk_sessions must be >= 1, got {chunk_sessions}")
        positions, cols = self._positions(sessions), self._columns(tickers)
        names = self._names(cols)
        for first in range(0, len(positions), chunk_sessions):
            chunk = positions[first:first + chunk_sessions]
            yield _frame(names, self._sessions[chunk], self._stock_bars(chunk, cols))

    def index_bars(self, sessions: Sequence[date],
                   tickers: Sequence[str] = INDEX_TICKERS) -> pd.DataFrame:
        """Daily bars of the index series: ETFs follow the factors, VIX the market's volatility."""
        unknown = sorted(set(tickers) - set(INDEX_TICKERS))
        if unknown:
            raise ValueError(f"no synthetic index series for {unknown}; have {list(INDEX_TICKERS)}")
        positions = self._positions(sessions)
        cols = np.array([INDEX_TICKERS.index(t) for t in tickers], dtype=int)
        blocks = positions // BLOCK
        parts = [self._index(b).take(positions[blocks == b] % BLOCK, cols)
                 for b in np.unique(blocks)]
        bars = _Bars.concat([_Bars.allocate(0, len(cols)), *parts])
        return _frame(_strings(tickers), self._sessions[positions], bars)

    def ticker_reference(self, as_of: date,
                         index_tickers: Sequence[str] = INDEX_TICKERS) -> pd.DataFrame:
        """One row per ticker; market cap at the close of the last session on or before `as_of`."""
        u = self._universe
        position = int(self._sessions.searchsorted(pd.Timestamp(as_of), side="right")) - 1
        if position < 0:
            price = np.exp(u.log_level)
        else:
            price = self._stock_bars(np.array([position]), slice(None)).prices[3, 0]
        sector = np.array(SECTORS)[u.sector]
        etf = {s: sector_etf(s, index_tickers) for s in SECTORS}
        shares = np.round(u.shares)
        return pd.DataFrame({
            "ticker": pd.array(u.tickers, dtype="string"),
            "name": [f"Synthetic {s} {t[3:]} Inc." for s, t in zip(sector, u.tickers)],
            "sector": sector,
            "industry": [INDUSTRIES[s][i % len(INDUSTRIES[s])] for s, i in zip(sector, u.industry)],
            "sector_etf": [etf[s] for s in sector],
            "market_cap": shares * price,
            "shares_outstanding": shares,
        }, columns=list(REFERENCE_COLUMNS))

    def planted_setups(self, start: date, end: date) -> pd.DataFrame:
        """Every planted setup whose breakout session lies in [start, end], read off its bars.

        Session columns are datetime64 (midnight) like the bars' `session`; prices are the bars'
        own values, so `entry` is exactly the breakout session's close.
        """
        lo, hi = self._bounds(start, end)
        slots = range(max(lo // SLOT - 1, -1), (hi - 1) // SLOT + 1)
        plants = [_slot_plants(self.seed, s, self._universe)[0] for s in slots]
        plants = _concat([_take(p, (p.end > lo) & (p.end <= hi)) for p in plants])
        bars = self._plant_bars(plants)
        return _plant_records(plants, bars, self._universe.tickers, self._sessions)

    def hourly_bars(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """Regular-session 1-hour bars (`ts` = bar start, America/New_York) of one ticker.

        They add up exactly to the daily bars: first open, last close, highest high, lowest low
        and total volume. Early-close sessions have fewer bars (a 13:00 close: four).
        """
        cols = self._columns([ticker])
        lo, hi = self._bounds(start, end)
        positions = np.arange(lo, hi)
        if not len(positions):
            return pd.DataFrame({c: [] for c in HOURLY_COLUMNS})
        bars, active = _split_into_hours(
            self._stock_bars(positions, cols),
            self._schedule["hours"].to_numpy()[positions],
            self._hour_draws(int(cols[0]), positions),
        )
        opens = self._schedule["open"].to_numpy()[positions, None]
        starts = opens + np.arange(HOURS_MAX) * np.timedelta64(1, "h")
        count = int(active.sum())
        ts = pd.DatetimeIndex(starts[active]).tz_localize("UTC").tz_convert("America/New_York")
        return pd.DataFrame({
            "ticker": pd.array([ticker] * count, dtype="string"),
            "ts": ts,
            **{c: p[active] for c, p in zip(PRICE_COLUMNS, bars.prices)},
            "volume": bars.volume[active].astype(float),
            "is_extended_hours": np.zeros(count, dtype=bool),
        }, columns=list(HOURLY_COLUMNS))

    # --- lookups -----------------------------------------------------------------------------

    def _bounds(self, start: date, end: date) -> tuple[int, int]:
        """Positions [lo, hi) of the sessions in [start, end]."""
        lo = int(self._sessions.searchsorted(pd.Timestamp(start)))
        return lo, max(lo, int(self._sessions.searchsorted(pd.Timestamp(end), side="right")))

    def _positions(self, sessions: Sequence[date]) -> np.ndarray:
        """Sorted unique positions of the sessions from the origin; a non-session is an error."""
        wanted = pd.DatetimeIndex(pd.to_datetime(list(sessions))).normalize()
        positions = self._sessions.get_indexer(wanted)
        if (positions < 0).any():
            bad = ", ".join(sorted({str(d)[:10] for d in wanted[positions < 0]})[:5])
            raise ValueError(f"not NYSE sessions from the synthetic origin {self.origin} on: {bad}")
        return np.unique(positions)

    def _columns(self, tickers: Sequence[str] | None) -> np.ndarray | slice:
        if tickers is None:
            return slice(None)
        cols = self._ticker_index.get_indexer(list(tickers))
        if (cols < 0).any():
            bad = [t for t, c in zip(tickers, cols) if c < 0]
            raise ValueError(f"not synthetic tickers: {bad[:5]}")
        return cols

    def _names(self, cols: np.ndarray | slice) -> pa.Array:
        return _strings(self._universe.tickers[cols])

    # --- simulation --------------------------------------------------------------------------

    def _stock_bars(self, positions: np.ndarray, cols: np.ndarray | slice) -> _Bars:
        """Bars at the positions; whole blocks of every ticker are written straight into place."""
        out = _Bars.allocate(len(positions), len(self._universe.tickers[cols]))
        blocks = positions // BLOCK
        done = 0
        for b, path in self._stock_paths(np.unique(blocks)):
            rows = positions[blocks == b] % BLOCK
            target = out.take(slice(done, done + len(rows)))
            done += len(rows)
            if len(rows) == BLOCK and isinstance(cols, slice):
                self._stock_block_bars(path, target)
            else:
                bars = self._stock_block_bars(path).take(rows, cols)
                target.prices[...], target.volume[...] = bars.prices, bars.volume
        return out

    def _stock_paths(self, blocks: Sequence[int]) -> Iterator[tuple[int, _Path]]:
        """Paths of the wanted blocks (ascending), simulated on from the nearest checkpoint."""
        if not len(blocks):
            return
        wanted = {int(b) for b in blocks}
        start = max(k for k in self._checkpoints if k <= blocks[0])
        for b in range(start, int(blocks[-1]) + 1):
            if b in wanted or b + 1 not in self._checkpoints:
                path, self._checkpoints[b + 1] = self._stock_path(b, self._checkpoints[b])
                if b in wanted:
                    yield b, path

    def _stock_path(self, b: int, state: _StockState) -> tuple[_Path, _StockState]:
        """One block's closes of every ticker: factors + GARCH noise + jumps; planted setups."""
        u, factors = self._universe, self._factor(b)
        draws = _group_draws(self.seed, _Stream.STOCK_RETURN, (b,), self.n_tickers,
                             _draw_stock_returns)
        shock, variance = _garch(draws["z"], state.variance, state.shock, u.omega, IDIO_GARCH)
        systematic = u.beta * factors.returns[:, :1] + u.gamma * factors.returns[:, 1 + u.sector]
        drift = (-REVERSION * (state.log_close - u.log_level - u.beta * factors.market_level)
                 + FLOOR_PULL * np.maximum(np.log(PRICE_FLOOR) - state.log_close, 0))
        ret = drift + systematic + shock + draws["jump"]
        cells = self._plant_cells(b)
        np.put(ret, cells.flat, cells.ret)
        log_close = state.log_close + np.cumsum(ret, axis=0)
        path = _Path(b, state.log_close, log_close, ret, drift, systematic, draws["jump"],
                     variance, cells)
        return path, _StockState(log_close[-1], variance[-1], shock[-1])

    def _stock_block_bars(self, path: _Path, out: _Bars | None = None) -> _Bars:
        """Bars around a block's closes (into `out`): gaps, wicks and volume scale with volatility.

        Computed in float32 (ample for prices quoted to the cent, and several times faster
        here), then rounded to the cent in float64.
        """
        u, f32 = self._universe, np.float32
        market_variance = self._factor(path.block).variance[:, :1]
        noise = _group_draws(self.seed, _Stream.STOCK_SHAPE, (path.block,), self.n_tickers,
                             _draw_stock_shape)["bytes"]
        tables = (_NORMAL, _EXPONENTIAL, _UNIFORM, _NORMAL)
        gap, range_, split, volume = (np.take(table, raw) for table, raw in zip(tables, noise))
        sigma = np.sqrt(path.variance + u.beta**2 * market_variance, dtype=f32)
        close = np.exp(path.log_close, dtype=f32)
        prev = np.vstack([np.exp(path.prev_log_close, dtype=f32), close[:-1]])
        overnight = np.add(GAP_SHARE * path.systematic, path.jump, dtype=f32)
        open_ = prev * (1 + overnight + GAP_NOISE * sigma * gap)
        wick = WICK * sigma * range_
        high = np.maximum(open_, close) * (1 + wick * split)
        low = np.minimum(open_, close) / (1 + wick * (1 - split))
        market = np.log(market_variance / MARKET_VOL**2, dtype=f32)
        move = np.abs(path.ret - path.drift, dtype=f32) / sigma
        volume = np.exp(VOLUME_MOVE * move + VOLUME_RANGE * range_ + VOLUME_NOISE * volume
                        + VOLUME_MARKET * market)
        cells, flat = path.cells, path.cells.flat
        for price, multiple in ((open_, cells.open), (high, cells.high), (low, cells.low)):
            np.put(price, flat, np.take(prev, flat) * multiple)
        np.put(volume, flat, cells.volume)
        _wrap(open_, high, low, close, flat)
        if out is None:
            out = _Bars.allocate(*close.shape)
        _quote(open_, high, low, close, out=out.prices)
        volume *= u.base_volume.astype(f32)
        out.volume[...] = np.maximum(np.rint(volume, out=volume), 100, out=volume)
        return out

    def _factor(self, b: int) -> _FactorBlock:
        while len(self._factor_blocks) <= b:
            i = len(self._factor_blocks)
            block, self._factor_state = _factor_block(self.seed, i, self._factor_state)
            self._factor_blocks.append(block)
        return self._factor_blocks[b]

    def _index(self, b: int) -> _Bars:
        while len(self._index_blocks) <= b:
            i = len(self._index_blocks)
            bars, self._index_log_close = _index_block(self.seed, i, self._factor(i),
                                                       self._index_log_close)
            self._index_blocks.append(bars)
        return self._index_blocks[b]

    def _hour_draws(self, col: int, positions: np.ndarray) -> Arrays:
        """One ticker's intraday draws for the sessions, drawn per block like the daily bars."""
        blocks = positions // BLOCK
        parts = [(_draw_hours(_generator(self.seed, _Stream.HOURLY, col, b)),
                  positions[blocks == b] % BLOCK) for b in np.unique(blocks)]
        return {k: np.concatenate([d[k][rows] for d, rows in parts]) for k in parts[0][0]}

    # --- planted setups ----------------------------------------------------------------------

    def _slot(self, slot: int) -> _Cells:
        """The setups of a planting slot (the few most recent slots are kept)."""
        if slot not in self._slots:
            if len(self._slots) >= 4:
                del self._slots[next(iter(self._slots))]
            plants, draws = _slot_plants(self.seed, slot, self._universe)
            self._slots[slot] = _slot_cells(plants, draws, self._universe)
        return self._slots[slot]

    def _plant_cells(self, b: int) -> _Cells:
        """The planted values that land in block b."""
        lo, hi = b * BLOCK, (b + 1) * BLOCK
        slots = range(lo // SLOT - 1, (hi - 1) // SLOT + 1)
        return _concat([self._slot(s).in_block(b) for s in slots])

    def _plant_bars(self, plants: _Plants) -> Arrays:
        """Open/high/low/close of each setup's bars (template rows x setups), from the blocks."""
        windows = {k: np.full((len(plants.ticker), PLANT_MAX), np.nan) for k in PRICE_COLUMNS}
        if len(plants.ticker):
            first, last = plants.start.min() // BLOCK, (plants.end.max() - 1) // BLOCK
            bars = _Bars.allocate(BLOCK, self.n_tickers)
            for b, path in self._stock_paths(range(int(first), int(last) + 1)):
                lo, hi = b * BLOCK, (b + 1) * BLOCK
                self._stock_block_bars(path, bars)
                touching = np.flatnonzero((plants.start < hi) & (plants.end > lo))
                mask, pos, cols = _take(plants, touching).cells(lo, hi)
                row, setup = np.nonzero(mask)  # in the order of pos and cols
                into, at = touching[setup] * PLANT_MAX + row, (pos - lo) * self.n_tickers + cols
                for price, window in zip(bars.prices, windows.values()):
                    np.put(window, into, np.take(price, at))
        return {k: window.T for k, window in windows.items()}

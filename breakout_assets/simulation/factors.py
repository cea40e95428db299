"""Market and sector factors (GJR-GARCH, Student-t shocks) and the index series built on them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breakout_assets.simulation.bars import _Bars, _quote
from breakout_assets.simulation.draws import _garch, _generator, _persistence, _Stream
from breakout_assets.simulation.params import (
    _ETFS,
    BLOCK,
    FACTOR_TAIL,
    MARKET_DRIFT,
    MARKET_GARCH,
    MARKET_VOL,
    SECTOR_GARCH,
    SECTOR_VOL,
    SECTORS,
    VIX_PREMIUM,
    VIX_RANGE,
)

# --- market and sector factors, index series -------------------------------------------------


def _market_and_sectors(market: float, sector: float) -> np.ndarray:
    return np.r_[market, np.full(len(SECTORS), sector)]


_FACTOR_VOL = _market_and_sectors(MARKET_VOL, SECTOR_VOL)
_FACTOR_PARAMS = tuple(
    _market_and_sectors(m, s) for m, s in zip(MARKET_GARCH, SECTOR_GARCH, strict=True)
)
_FACTOR_OMEGA = _FACTOR_VOL**2 * (
    1 - _market_and_sectors(_persistence(MARKET_GARCH), _persistence(SECTOR_GARCH))
)


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


def _index_block(
    seed: int, b: int, factors: _FactorBlock, log_close: np.ndarray
) -> tuple[_Bars, np.ndarray]:
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

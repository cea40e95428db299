"""Random streams and the array helpers every part of the simulation shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from enum import IntEnum
from statistics import NormalDist

import numpy as np

from breakout_assets.simulation.params import GROUP, Arrays, T


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


def _group_draws(
    seed: int,
    stream: _Stream,
    key: tuple[int, ...],
    n: int,
    draw: Callable[[np.random.Generator, int], Arrays],
) -> Arrays:
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


def _garch(
    z: np.ndarray,
    variance: np.ndarray,
    shock: np.ndarray,
    omega: np.ndarray,
    params: Sequence[float | np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
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

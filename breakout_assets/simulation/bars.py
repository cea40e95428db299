"""Bars as arrays (sessions x tickers): OHLC rounding, frames, and the split into hours."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from breakout_assets.core.bars import PRICE_COLUMNS
from breakout_assets.simulation.draws import _cents
from breakout_assets.simulation.params import _HOURLY_PROFILE, BLOCK, HOURS_MAX, Arrays

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
        return _Bars(
            np.concatenate([p.prices for p in parts], axis=1),
            np.concatenate([p.volume for p in parts]),
        )

    def take(self, rows: np.ndarray | slice, cols: np.ndarray | slice = slice(None)) -> _Bars:
        rows = _as_slice(rows) if isinstance(rows, np.ndarray) else rows
        return _Bars(self.prices[:, rows][:, :, cols], self.volume[rows][:, cols])


def _as_slice(rows: np.ndarray) -> np.ndarray | slice:
    """Consecutive rows as a slice, so taking them is a view rather than a copy."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _quote(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """(4, sessions, columns) prices to the cent, as float64.

    Callers build high as max(open, close) times a factor >= 1 (low: divided by one), so the
    OHLC order holds before rounding and, rounding being monotone, after it.
    """
    prices = np.empty((4, *close.shape)) if out is None else out
    for i, price in enumerate((open_, high, low, close)):
        _cents(price, out=prices[i])
    return prices


def _wrap(
    open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, flat: np.ndarray
) -> None:
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

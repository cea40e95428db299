"""Each stock's return process and a block's simulated path."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breakout_assets.simulation.draws import _random_bytes, _take
from breakout_assets.simulation.params import BLOCK, JUMP_CAP, JUMP_PROBABILITY, JUMP_SD, Arrays

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

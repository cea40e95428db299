"""Planted rally -> consolidation -> breakout setups (and short mirrors) and their records."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from breakout_assets.simulation.draws import (
    _EXPONENTIAL,
    _NORMAL,
    _UNIFORM,
    _concat,
    _group_draws,
    _random_bytes,
    _Stream,
    _take,
)
from breakout_assets.simulation.params import (
    BLOCK,
    CONSOL_MAX,
    CONSOL_RATIO,
    GROUP,
    LEAD,
    MIN_HISTORY,
    PLANT_COLUMNS,
    PLANT_MAX,
    PLANT_PROBABILITY,
    PLANT_SPACING,
    RALLY_MAX,
    RALLY_SESSIONS,
    SLOT,
    Arrays,
)
from breakout_assets.simulation.stocks import _Cells
from breakout_assets.simulation.universe import _Universe

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
        [
            _segment(lead_close, 0),
            _segment(rally_close, LEAD),
            _segment(bottom + (top - bottom) * band, rally_end + 1),
        ],
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


def _plant_records(
    plants: _Plants, bars: Arrays, tickers: np.ndarray, sessions: pd.DatetimeIndex
) -> pd.DataFrame:
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

    frame = pd.DataFrame(
        {
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
        },
        columns=list(PLANT_COLUMNS),
    )
    return frame.sort_values(["breakout_session", "ticker"], ignore_index=True)

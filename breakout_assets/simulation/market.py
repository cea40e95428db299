"""`SyntheticMarket`: the public generator, simulating blocks forward from the origin."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from breakout_assets.core.bars import HOURLY_COLUMNS, PRICE_COLUMNS, REFERENCE_COLUMNS
from breakout_assets.core.sectors import sector_etf
from breakout_assets.simulation.bars import (
    _Bars,
    _draw_hours,
    _frame,
    _quote,
    _split_into_hours,
    _strings,
    _wrap,
)
from breakout_assets.simulation.draws import (
    _EXPONENTIAL,
    _NORMAL,
    _UNIFORM,
    _concat,
    _garch,
    _generator,
    _group_draws,
    _Stream,
    _take,
)
from breakout_assets.simulation.factors import (
    _ETF_FIRST_CLOSE,
    _FACTOR_VOL,
    _factor_block,
    _FactorBlock,
    _FactorState,
    _index_block,
)
from breakout_assets.simulation.params import (
    BLOCK,
    FLOOR_PULL,
    GAP_NOISE,
    GAP_SHARE,
    HOURS_MAX,
    IDIO_GARCH,
    INDEX_TICKERS,
    INDUSTRIES,
    MARKET_VOL,
    PLANT_MAX,
    PRICE_FLOOR,
    REVERSION,
    SECTORS,
    SLOT,
    VOLUME_MARKET,
    VOLUME_MOVE,
    VOLUME_NOISE,
    VOLUME_RANGE,
    WICK,
    Arrays,
)
from breakout_assets.simulation.plants import _plant_records, _Plants, _slot_cells, _slot_plants
from breakout_assets.simulation.stocks import (
    _Cells,
    _draw_stock_returns,
    _draw_stock_shape,
    _Path,
    _StockState,
)
from breakout_assets.simulation.universe import _nyse_schedule, _universe

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

    def daily_bars(
        self, sessions: Sequence[date], tickers: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Daily bars of every ticker (or of `tickers`) for the sessions, in one frame."""
        chunks = list(self.iter_daily_bars(sessions, max(len(sessions), 1), tickers))
        if chunks:
            return chunks[0]
        names = self._names(self._columns(tickers))
        return _frame(names, self._sessions[:0], _Bars.allocate(0, len(names)))

    def iter_daily_bars(
        self,
        sessions: Sequence[date],
        chunk_sessions: int = 250,
        tickers: Sequence[str] | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Daily bars in frames of at most `chunk_sessions` sessions, in session order."""
        if chunk_sessions < 1:
            raise ValueError(f"chunk_sessions must be >= 1, got {chunk_sessions}")
        positions, cols = self._positions(sessions), self._columns(tickers)
        names = self._names(cols)
        for first in range(0, len(positions), chunk_sessions):
            chunk = positions[first : first + chunk_sessions]
            yield _frame(names, self._sessions[chunk], self._stock_bars(chunk, cols))

    def index_bars(
        self, sessions: Sequence[date], tickers: Sequence[str] = INDEX_TICKERS
    ) -> pd.DataFrame:
        """Daily bars of the index series: ETFs follow the factors, VIX the market's volatility."""
        unknown = sorted(set(tickers) - set(INDEX_TICKERS))
        if unknown:
            raise ValueError(f"no synthetic index series for {unknown}; have {list(INDEX_TICKERS)}")
        positions = self._positions(sessions)
        cols = np.array([INDEX_TICKERS.index(t) for t in tickers], dtype=int)
        blocks = positions // BLOCK
        parts = [
            self._index(b).take(positions[blocks == b] % BLOCK, cols) for b in np.unique(blocks)
        ]
        bars = _Bars.concat([_Bars.allocate(0, len(cols)), *parts])
        return _frame(_strings(tickers), self._sessions[positions], bars)

    def ticker_reference(
        self, as_of: date, index_tickers: Sequence[str] = INDEX_TICKERS
    ) -> pd.DataFrame:
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
        return pd.DataFrame(
            {
                "ticker": pd.array(u.tickers, dtype="string"),
                "name": [
                    f"Synthetic {s} {t[3:]} Inc." for s, t in zip(sector, u.tickers, strict=True)
                ],
                "sector": sector,
                "industry": [
                    INDUSTRIES[s][i % len(INDUSTRIES[s])]
                    for s, i in zip(sector, u.industry, strict=True)
                ],
                "sector_etf": [etf[s] for s in sector],
                "market_cap": shares * price,
                "shares_outstanding": shares,
            },
            columns=list(REFERENCE_COLUMNS),
        )

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
        return pd.DataFrame(
            {
                "ticker": pd.array([ticker] * count, dtype="string"),
                "ts": ts,
                **{c: p[active] for c, p in zip(PRICE_COLUMNS, bars.prices, strict=True)},
                "volume": bars.volume[active].astype(float),
                "is_extended_hours": np.zeros(count, dtype=bool),
            },
            columns=list(HOURLY_COLUMNS),
        )

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
            bad = [t for t, c in zip(tickers, cols, strict=True) if c < 0]
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
        draws = _group_draws(
            self.seed, _Stream.STOCK_RETURN, (b,), self.n_tickers, _draw_stock_returns
        )
        shock, variance = _garch(draws["z"], state.variance, state.shock, u.omega, IDIO_GARCH)
        systematic = u.beta * factors.returns[:, :1] + u.gamma * factors.returns[:, 1 + u.sector]
        drift = -REVERSION * (
            state.log_close - u.log_level - u.beta * factors.market_level
        ) + FLOOR_PULL * np.maximum(np.log(PRICE_FLOOR) - state.log_close, 0)
        ret = drift + systematic + shock + draws["jump"]
        cells = self._plant_cells(b)
        np.put(ret, cells.flat, cells.ret)
        log_close = state.log_close + np.cumsum(ret, axis=0)
        path = _Path(
            b, state.log_close, log_close, ret, drift, systematic, draws["jump"], variance, cells
        )
        return path, _StockState(log_close[-1], variance[-1], shock[-1])

    def _stock_block_bars(self, path: _Path, out: _Bars | None = None) -> _Bars:
        """Bars around a block's closes (into `out`): gaps, wicks and volume scale with volatility.

        Computed in float32 (ample for prices quoted to the cent, and several times faster
        here), then rounded to the cent in float64.
        """
        u, f32 = self._universe, np.float32
        market_variance = self._factor(path.block).variance[:, :1]
        noise = _group_draws(
            self.seed, _Stream.STOCK_SHAPE, (path.block,), self.n_tickers, _draw_stock_shape
        )["bytes"]
        tables = (_NORMAL, _EXPONENTIAL, _UNIFORM, _NORMAL)
        gap, range_, split, volume = (
            np.take(table, raw) for table, raw in zip(tables, noise, strict=True)
        )
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
        volume = np.exp(
            VOLUME_MOVE * move
            + VOLUME_RANGE * range_
            + VOLUME_NOISE * volume
            + VOLUME_MARKET * market
        )
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
            bars, self._index_log_close = _index_block(
                self.seed, i, self._factor(i), self._index_log_close
            )
            self._index_blocks.append(bars)
        return self._index_blocks[b]

    def _hour_draws(self, col: int, positions: np.ndarray) -> Arrays:
        """One ticker's intraday draws for the sessions, drawn per block like the daily bars."""
        blocks = positions // BLOCK
        parts = [
            (
                _draw_hours(_generator(self.seed, _Stream.HOURLY, col, b)),
                positions[blocks == b] % BLOCK,
            )
            for b in np.unique(blocks)
        ]
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
                for price, window in zip(bars.prices, windows.values(), strict=True):
                    np.put(window, into, np.take(price, at))
        return {k: window.T for k, window in windows.items()}

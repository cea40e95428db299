"""What happens to a signal's bracket: the one definition of entry fill and exit.

Labels, backtests, the simulated broker and live orders all use these rules, so a model is
trained on the trades the system would actually have made.

Entry (`entry_fill`): the parent order is a limit at the signal's entry `E`, working for
`entry_valid_sessions` sessions after the signal session. A long fills at the open when the bar
opens at or below `E` (the limit fills at the better price), else at `E` when the bar's low
reaches it; shorts mirror (open at or above `E`, else the high reaches it). A signal whose window
passes without a fill is `unfilled`: a breakout that ran away is not chased.

A stop-entry (`stop_entry_fill`, the fade book's second leg) is the reverse: a long buys once the
market trades at or above `E` (at the open when it opens there, a gap: worse than `E`; else at
`E` when the high reaches it); shorts mirror. On its fill bar, exits read the bar from the fill
price: a stop-entry filled intraday may have opened beyond its own stop, before it existed.

Exit (`exit_on_bar`), with stop `S` and booked target `T`, on each bar after the fill:
- a bar that opens through the stop exits at the open (a gap through the stop: worse than -1R);
- a bar that touches the stop exits at `S`, even when it also touches the target: inside a daily
  bar the order of high and low is unknown, so the stop wins (conservative);
- a bar that opens through the target exits at the open, one that touches it exits at `T`;
- on the fill bar itself, when the fill was intraday (not at the open), only the stop counts:
  the bar's extreme in our favour may have come before the fill;
- a live position (orders, management, the simulated broker, the backtests' managed book) still
  open `max_holding_sessions` sessions after its fill session (the fill session counts as the
  first) expires at that session's close, or at the last close the ticker has if it stopped
  trading. Labels have no time cut by default (`label_horizon_sessions` None): as the design's
  label says, the target or the stop decides, and a trade still open when the bars end stays
  pending. A label horizon, when set, expires labels the same way.

Outcomes are in R, the signal's planned risk `|E - S|`: `r_multiple = side x (exit - fill) / R`,
the unit sizing uses (shares = risk dollars / R). MFE and MAE are the largest favourable and
adverse excursions from the fill, in R, over the bars the trade was open, read with the same
conservative ordering (an exit bar counts only up to the exit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numba import njit

from breakout_assets.core.config import OutcomeConfig

if TYPE_CHECKING:  # the scanner's types, for annotations only
    from breakout_assets.core.scanner import MarketArrays, Setups


class Status(IntEnum):
    PENDING = 0
    WIN = 1
    LOSS = 2
    EXPIRED = 3
    UNFILLED = 4

    @property
    def label(self) -> str:
        return self.name.lower()


FINAL_STATUSES = tuple(s.label for s in Status if s is not Status.PENDING)


@njit(cache=True)
def entry_fill(side: int, entry: float, open_: float, high: float, low: float) -> float:
    """The fill price of the entry limit on one bar, or NaN when the bar does not reach it."""
    if side > 0:
        if open_ <= entry:
            return open_
        if low <= entry:
            return entry
    else:
        if open_ >= entry:
            return open_
        if high >= entry:
            return entry
    return np.nan


@njit(cache=True)
def stop_entry_fill(side: int, entry: float, open_: float, high: float, low: float) -> float:
    """The fill price of a stop-entry on one bar, or NaN when the bar does not reach it: a bar
    opening through the trigger fills at the open (a gap fills worse than `entry`)."""
    if side > 0:
        if open_ >= entry:
            return open_
        if high >= entry:
            return entry
    else:
        if open_ <= entry:
            return open_
        if low <= entry:
            return entry
    return np.nan


@njit(cache=True)
def exit_on_bar(
    side: int, stop: float, target: float, open_: float, high: float, low: float, stop_only: bool
) -> tuple[float, int]:
    """(exit price, status) of an open position on one bar; (NaN, PENDING) if it survives."""
    if side * (stop - open_) >= 0.0:
        return open_, 2
    if (low <= stop) if side > 0 else (high >= stop):
        return stop, 2
    if stop_only:
        return np.nan, 0
    if side * (open_ - target) >= 0.0:
        return open_, 1
    if (high >= target) if side > 0 else (low <= target):
        return target, 1
    return np.nan, 0


@njit(cache=True)
def _replay(
    side,
    entry,
    stop,
    target,
    levels,
    risk,
    signal_day,
    offsets,
    bar_open,
    bar_high,
    bar_low,
    bar_close,
    session_ord,
    as_of_ord,
    entry_valid,
    max_holding,
    out_status,
    out_entry_bar,
    out_entry_price,
    out_exit_bar,
    out_exit_price,
    out_r,
    out_mfe,
    out_mae,
    out_held,
    out_hits,
):
    for s in range(len(side)):
        d = side[s]
        first, stop_at = offsets[s], offsets[s + 1]
        fill_limit = signal_day[s] + entry_valid
        status, fill, fill_bar, fill_ord = 0, np.nan, -1, -1
        best, worst = 0.0, 0.0
        for k in range(first, stop_at):
            o = session_ord[k]
            if fill_bar < 0:
                if o > fill_limit:
                    break
                price = entry_fill(d, entry[s], bar_open[k], bar_high[k], bar_low[k])
                if price != price:
                    continue
                fill, fill_bar, fill_ord = price, k, o
                at_open = price == bar_open[k]
                ex, st = exit_on_bar(
                    d, stop[s], target[s], bar_open[k], bar_high[k], bar_low[k], not at_open
                )
                if st != 2:
                    worst = max(worst, d * (fill - (bar_low[k] if d > 0 else bar_high[k])))
                if st == 0:
                    fav = (bar_high[k] if d > 0 else bar_low[k]) if at_open else bar_close[k]
                    best = max(best, d * (fav - fill))
            else:
                if o >= fill_ord + max_holding:
                    break
                ex, st = exit_on_bar(
                    d, stop[s], target[s], bar_open[k], bar_high[k], bar_low[k], False
                )
                if st == 2:
                    best = max(best, d * (bar_open[k] - fill))
                else:
                    worst = max(worst, d * (fill - (bar_low[k] if d > 0 else bar_high[k])))
                    if st == 0:
                        best = max(best, d * ((bar_high[k] if d > 0 else bar_low[k]) - fill))
            if st != 0:
                status = st
                worst = max(worst, d * (fill - ex))
                best = max(best, d * (ex - fill))
                out_exit_bar[s], out_exit_price[s] = k, ex
                break
            if o >= fill_ord + max_holding - 1:
                status = 3
                out_exit_bar[s], out_exit_price[s] = k, bar_close[k]
                break
        if status == 0:
            if fill_bar < 0 and as_of_ord[s] >= fill_limit:
                status = 4
            elif fill_bar >= 0 and as_of_ord[s] >= fill_ord + max_holding - 1:
                last = stop_at - 1  # the ticker stopped trading before the holding limit
                while last > fill_bar and session_ord[last] > fill_ord + max_holding - 1:
                    last -= 1
                status = 3
                out_exit_bar[s], out_exit_price[s] = last, bar_close[last]
        out_status[s], out_entry_bar[s], out_entry_price[s] = status, fill_bar, fill
        if fill_bar >= 0:
            if status == 3:
                ex = out_exit_price[s]
                worst = max(worst, d * (fill - ex))
                best = max(best, d * (ex - fill))
            end = out_exit_bar[s] if status != 0 else stop_at - 1
            out_held[s] = end - fill_bar + 1
            out_mfe[s], out_mae[s] = best / risk[s], worst / risk[s]
            if status != 0:
                out_r[s] = d * (out_exit_price[s] - fill) / risk[s]
            for j in range(levels.shape[1]):
                out_hits[s, j] = d * (fill + d * best - levels[s, j]) >= -1e-12 * fill


@dataclass(frozen=True)
class BarPaths:
    """The bars after each signal, concatenated: signal i owns rows offsets[i]:offsets[i+1].

    `session_ord` numbers sessions on the exchange calendar (consecutive sessions differ by 1),
    so order windows count sessions, not the ticker's bars.
    """

    offsets: np.ndarray
    session_ord: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def from_rows(
        cls, signal_row: np.ndarray, session_ord: np.ndarray, n_signals: int, **prices: np.ndarray
    ) -> BarPaths:
        """Rows in any order, tagged with their signal's position -> grouped and time-ordered."""
        order = np.lexsort((session_ord, signal_row))
        counts = np.bincount(signal_row, minlength=n_signals)
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        return cls(
            offsets,
            session_ord[order].astype(np.int64),
            *(
                np.ascontiguousarray(prices[k][order], dtype=np.float64)
                for k in ("open", "high", "low", "close")
            ),
        )


@dataclass(frozen=True)
class Outcomes:
    """Replay results, one element per signal; bar indexes point into the BarPaths rows."""

    status: np.ndarray
    entry_bar: np.ndarray
    entry_price: np.ndarray
    exit_bar: np.ndarray
    exit_price: np.ndarray
    r_multiple: np.ndarray
    mfe_r: np.ndarray
    mae_r: np.ndarray
    bars_held: np.ndarray
    hit_targets: np.ndarray  # (n, 3): target_50, target_75, target_100 reached before the exit

    def to_frame(self, bar_sessions: np.ndarray) -> pd.DataFrame:
        """Rows of the signal_outcomes contract; `bar_sessions` dates the BarPaths rows."""

        def dated(bar: np.ndarray) -> np.ndarray:
            days = np.asarray(bar_sessions, dtype="datetime64[D]")
            picked = (
                days[np.clip(bar, 0, max(len(days) - 1, 0))]
                if len(days)
                else np.full(len(bar), np.datetime64("NaT"), "datetime64[D]")
            )
            return np.where(bar >= 0, picked, np.datetime64("NaT"))

        labels = np.array([s.label for s in Status])
        frame = pd.DataFrame(
            {
                "status": labels[self.status],
                "entry_session": dated(self.entry_bar),
                "entry_price": self.entry_price,
                "exit_session": dated(self.exit_bar),
                "exit_price": self.exit_price,
                "r_multiple": self.r_multiple,
                "mfe_r": self.mfe_r,
                "mae_r": self.mae_r,
                "bars_held": self.bars_held,
            }
        )
        for j, name in enumerate(("hit_target_50", "hit_target_75", "hit_target_100")):
            frame[name] = self.hit_targets[:, j]
        return frame


def replay(
    signals: dict[str, np.ndarray],
    paths: BarPaths,
    as_of_ord: int | np.ndarray,
    config: OutcomeConfig,
    *,
    labels: bool = False,
) -> Outcomes:
    """Replay each signal's bracket on its bars up to session `as_of_ord`.

    `as_of_ord` may be one session per signal (how far its bars were read).
    `labels=True` applies the label horizon (default: none) instead of the live holding limit.

    `signals` holds aligned arrays: side (+1 long, -1 short), entry, stop, booked_target,
    target_50, target_75, target_100, risk and signal_ord (the signal session's ordinal).
    A signal is final (win, loss, expired, unfilled) once its bars decide it; otherwise pending,
    and replaying it later with more bars continues from the same rules, so the result never
    depends on when or in how many steps it was computed.
    """
    n = len(signals["side"])
    floats = {
        k: np.ascontiguousarray(signals[k], dtype=np.float64)
        for k in ("entry", "stop", "booked_target", "risk")
    }
    if n and not (floats["risk"] > 0).all():
        raise ValueError("every signal needs a positive risk |entry - stop|")
    levels = np.ascontiguousarray(
        np.column_stack([signals[k] for k in ("target_50", "target_75", "target_100")]),
        dtype=np.float64,
    ).reshape(n, 3)
    out = Outcomes(
        status=np.zeros(n, np.int8),
        entry_bar=np.full(n, -1, np.int64),
        entry_price=np.full(n, np.nan),
        exit_bar=np.full(n, -1, np.int64),
        exit_price=np.full(n, np.nan),
        r_multiple=np.full(n, np.nan),
        mfe_r=np.full(n, np.nan),
        mae_r=np.full(n, np.nan),
        bars_held=np.zeros(n, np.int64),
        hit_targets=np.zeros((n, 3), np.bool_),
    )
    _replay(
        np.ascontiguousarray(signals["side"], dtype=np.int64),
        floats["entry"],
        floats["stop"],
        floats["booked_target"],
        levels,
        floats["risk"],
        np.ascontiguousarray(signals["signal_ord"], dtype=np.int64),
        paths.offsets,
        paths.open,
        paths.high,
        paths.low,
        paths.close,
        paths.session_ord,
        np.ascontiguousarray(np.broadcast_to(np.asarray(as_of_ord, np.int64), (n,))),
        config.entry_valid_sessions,
        config.holding(labels),
        out.status,
        out.entry_bar,
        out.entry_price,
        out.exit_bar,
        out.exit_price,
        out.r_multiple,
        out.mfe_r,
        out.mae_r,
        out.bars_held,
        out.hit_targets,
    )
    return out


def paths_after(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    horizon: int,
) -> BarPaths:
    """BarPaths of dense (tickers x sessions) bars: for signal i, the traded bars of ticker row
    rows[i] in the `horizon` sessions after session column cols[i] (columns are consecutive
    sessions, so a column index is the session ordinal). For research on arrays in memory."""
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    width = close.shape[1]
    steps = cols[:, None] + np.arange(1, horizon + 1)[None, :]
    signal = np.broadcast_to(np.arange(len(rows))[:, None], steps.shape)
    ticker = np.broadcast_to(rows[:, None], steps.shape)
    inside = steps < width
    signal, ticker, steps = signal[inside], ticker[inside], steps[inside]
    traded = ~np.isnan(close[ticker, steps])
    signal, ticker, steps = signal[traded], ticker[traded], steps[traded]
    return BarPaths.from_rows(
        signal,
        steps,
        len(rows),
        open=open_[ticker, steps],
        high=high[ticker, steps],
        low=low[ticker, steps],
        close=close[ticker, steps],
    )


def label_setups(
    arrays: MarketArrays, setups: Setups, config: OutcomeConfig | None = None
) -> Outcomes:
    """The labels of scanner setups replayed on the market they were found in (in memory: for
    research and the baseline regression; the signal_outcomes asset reads bars from Postgres)."""
    signals = {
        k: getattr(setups, k)
        for k in ("entry", "stop", "booked_target", "target_50", "target_75", "target_100", "risk")
    }
    signals["side"] = setups.side.astype(np.int64)
    signals["signal_ord"] = setups.session
    paths = paths_after(
        arrays.open,
        arrays.high,
        arrays.low,
        arrays.close,
        setups.ticker,
        setups.session,
        arrays.shape[1],
    )
    return replay(signals, paths, arrays.shape[1] - 1, config or OutcomeConfig(), labels=True)


def trade_stats(r: np.ndarray, net_r: np.ndarray | None = None) -> dict[str, float | int]:
    """A book's figures from its closed trades' R: trades, wins (r > 0), win rate, expectancy
    and sum in R, gross and (when `net_r`, the same trades after costs, is given) net. NaN
    where a figure has no trade to stand on; sums of no trade are 0."""
    r = np.asarray(r, dtype=np.float64)
    n = r.size
    net = None if net_r is None else np.asarray(net_r, dtype=np.float64)
    return {
        "trades": n,
        "wins": int((r > 0).sum()),
        "win_rate": float((r > 0).mean()) if n else math.nan,
        "expectancy_r": float(r.mean()) if n else math.nan,
        "sum_r": float(r.sum()),
        "expectancy_net_r": float(net.mean()) if net is not None and n else math.nan,
        "sum_net_r": float(net.sum()) if net is not None else math.nan,
    }

"""The whole-market breakout scanner: rally -> consolidation -> breakout, long and short.

Pure numpy + numba: no Dagster, no SQL, no I/O. The input is the whole market as dense
(tickers x sessions) arrays (`MarketArrays`); the output is one row per setup (`Setups`) with its
full geometry (entry, stop, targets, R:R) and its pattern features (`core.pattern_features`).

The rules (long; a short is the exact mirror: selloff, base, breakdown, with highs and lows
swapped and every comparison reversed). All thresholds are fields of `ScannerConfig`.

1. **Swing high h** (the rally's end, its high `H = high[h]`) is a candidate for as long as no
   later bar trades above it: every consolidation bar has `high <= H` ("the base never exceeds
   the rally high"). The first bar with `high > H` ends the candidate, whether it is a breakout
   or only an intraday poke, so a rally/base is signalled at most once.
2. **Rally start l** (the swing low) is the *latest* bar l with
   `h - rally_max_bars + 1 <= l <= h - rally_min_bars + 1` such that
   `low[l] <= low[k]` for every k in (l, h] (the rally's lowest bar) and
   `low[l] <= low[k]` for the `swing_bars` sessions before l (a swing low). No bar of [l, h) may
   trade above H (h is the rally's high). Rally duration `R = h - l + 1` bars;
   `MH = H - low[l]`; `rally_pct = MH / rally_low` (for a short `MH / selloff low`, the exact
   mirror in log space); `rally_min_pct <= rally_pct <= rally_max_pct`.
   Momentum: the rally's efficiency `(close[h] - close[l]) / sum |close[k] - close[k-1]|` over
   (l, h] (net progress over path length) is at least `rally_min_efficiency`.
3. **Consolidation** = the bars strictly between h and the breakout bar t: `C = t - h - 1` bars
   with `consol_min_ratio x R <= C <= consol_max_bars`. Tight: its deepest retracement of the
   move `(H - consol_low) / MH <= consol_max_retracement` and its range
   `consol_high <= consol_low x (1 + consol_max_range_pct)` (highest high / lowest low of the
   base bars; short: the same, in prices).
4. **Breakout** on bar t = the first bar to trade above H, and it must *close* above it:
   `close[t] > H x (1 + breakout_min_close_pct)` (above the rally high, hence above the
   consolidation high too), on volume `>= breakout_min_volume_ratio x` the consolidation's mean
   volume. Entry `E = close[t]`.
   When several candidate swing highs break out on the same bar (nested structures), the
   outermost qualifying one (earliest h, highest H) is the setup: one setup per ticker, session
   and side.
5. **Stop**: `E - stop_atr_multiple x ATR`, ATR = mean true range of the last
   `min(R + C, atr_max_bars)` bars of the rally + consolidation (l .. t-1), `stop_rule='atr'`.
   Where ATR is not a positive number, or the long stop would not be positive, the stop is the
   consolidation low (short: high), `stop_rule='consolidation'`.
6. **Targets**: `E + f x MH` for f in `target_fractions` (0.5, 0.75, 1.0). The booked target is
   the first (50%) one, or `E + adjusted_target_fraction x MH` (2.0) when the breakout candle
   closes past `adjusted_entry_fib` (0.618) of its own range — `(close - low) / (high - low)`
   for a long, `(high - close) / (high - low)` for a short (a zero-range candle counts as 1) —
   then `adjusted_entry` is True. `risk = |E - stop|`, `reward_risk = |booked - E| / risk`.
   A short whose booked or 100% target would not be a positive price is not a setup.
7. **No look-ahead**: a setup on session t reads only bars <= t. A missing bar (NaN high, low or
   close) breaks every pattern across it: bars l - swing_bars .. t must all be there.

Algorithm (no O(sessions x rally x base) search): per ticker, one pass over the sessions.
Since every base holds at least `min_consol_bars` bars, a session is examined only if its close
clears all of the last `min_consol_bars` bars (a branch-free test; ~1 session in 10 on a random
walk). From such a session the bars are walked back, tracking the highest high and lowest low
since; a bar at least as high as every later one is a live candidate swing high. The walk stops
at the first live candidate the close does not clear, when the base gets wider than
`consol_max_range_pct`, after `consol_max_bars` or at a missing bar, so it is a few bars long.
A candidate is first checked against cheap necessary conditions (the largest move / shallowest
retracement its rally window allows); only then is its rally start searched (at most
`rally_max_bars + swing_bars` bars back). Tickers run in parallel (numba prange). `emit_from`
restricts emission to sessions >= emit_from, and then only the `lookback_bars` sessions before
it are read: scanning the last session of a market costs ~100 bars per ticker.
`core.scanner_reference` implements the same rules plainly (per ticker, per session, per
candidate) and the tests check both give identical setups.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from numba import njit, prange

from breakout_assets.core.config import ScannerConfig
from breakout_assets.core.geometry import close_position, mean_true_range

STOP_RULES = ("atr", "consolidation")


@dataclass
class MarketArrays:
    """The whole market as dense arrays: ticker rows x session columns, NaN where no bar."""

    tickers: np.ndarray  # (n,) str
    sessions: np.ndarray  # (m,) datetime64[D]
    open: np.ndarray  # (n, m) float64
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __post_init__(self) -> None:
        self.tickers = np.asarray(self.tickers)
        self.sessions = np.asarray(self.sessions).astype("datetime64[D]")
        shape = (len(self.tickers), len(self.sessions))
        for name in ("open", "high", "low", "close", "volume"):
            value = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"{name} has shape {value.shape}, expected {shape}")
            setattr(self, name, value)

    @property
    def shape(self) -> tuple[int, int]:
        return self.close.shape

    @classmethod
    def from_bars(
        cls, bars: pd.DataFrame, tickers: Any = None, sessions: Any = None
    ) -> MarketArrays:
        """Arrays from a bars frame in the `core.bars` contract (one row per ticker-session).

        `tickers` / `sessions` fix the rows / columns (default: those of the frame, sorted);
        bars outside them are ignored.
        """
        tick = pd.Index(sorted(bars["ticker"].unique()) if tickers is None else list(tickers))
        stamps = pd.to_datetime(bars["session"]).dt.normalize()
        sess = pd.DatetimeIndex(
            np.sort(stamps.unique()) if sessions is None else pd.to_datetime(np.asarray(sessions))
        ).normalize()
        rows = tick.get_indexer(pd.Index(bars["ticker"]))
        cols = sess.get_indexer(pd.DatetimeIndex(stamps))
        keep = (rows >= 0) & (cols >= 0)
        rows, cols = rows[keep], cols[keep]
        out = {}
        for name in ("open", "high", "low", "close", "volume"):
            a = np.full((len(tick), len(sess)), np.nan)
            a[rows, cols] = bars[name].to_numpy(dtype=np.float64)[keep]
            out[name] = a
        return cls(np.asarray(tick, dtype=object), sess.values.astype("datetime64[D]"), **out)


def index_close_arrays(index_bars: pd.DataFrame, sessions: np.ndarray) -> dict[str, np.ndarray]:
    """{index ticker: close on each of `sessions` (NaN where missing)} from an index bars frame."""
    sess = pd.DatetimeIndex(np.asarray(sessions).astype("datetime64[ns]"))
    out = {}
    for ticker, frame in index_bars.groupby("ticker", sort=True):
        stamps = pd.to_datetime(frame["session"]).dt.normalize()
        s = pd.Series(frame["close"].to_numpy(float), index=stamps)
        out[str(ticker)] = s[~s.index.duplicated()].reindex(sess).to_numpy(float)
    return out


_GEOMETRY_INT_FIELDS = ("rally_start", "rally_end", "consol_start", "consol_end", "atr_window")
_FLOAT_FIELDS = (
    "rally_high",
    "rally_low",
    "move_height",
    "consol_high",
    "consol_low",
    "entry",
    "stop",
    "atr",
    "target_50",
    "target_75",
    "target_100",
    "booked_target",
    "risk",
    "reward_risk",
)


@dataclass
class Setups:
    """One row per setup (arrays of equal length), sorted by session, ticker, side.

    Sessions are indices into `MarketArrays.sessions`, tickers into `MarketArrays.tickers`.
    For a short, `rally_*` describe the selloff: `rally_start` is its swing high (`rally_high`),
    `rally_end` its swing low (`rally_low`). `consol_*` are the base's first/last session and its
    highest high / lowest low.
    """

    ticker: np.ndarray
    session: np.ndarray  # the breakout session
    side: np.ndarray  # int8: +1 long, -1 short
    rally_start: np.ndarray
    rally_end: np.ndarray
    consol_start: np.ndarray
    consol_end: np.ndarray
    rally_high: np.ndarray
    rally_low: np.ndarray
    move_height: np.ndarray
    consol_high: np.ndarray
    consol_low: np.ndarray
    entry: np.ndarray
    stop: np.ndarray
    stop_rule: np.ndarray  # str: 'atr' | 'consolidation'
    atr: np.ndarray
    atr_window: np.ndarray  # bars the ATR averages (<= atr_max_bars)
    target_50: np.ndarray
    target_75: np.ndarray
    target_100: np.ndarray
    booked_target: np.ndarray
    adjusted_entry: np.ndarray  # bool
    risk: np.ndarray
    reward_risk: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ticker)

    @property
    def rally_duration(self) -> np.ndarray:
        return self.rally_end - self.rally_start + 1

    @property
    def consol_duration(self) -> np.ndarray:
        return self.consol_end - self.consol_start + 1

    def take(self, index: np.ndarray) -> Setups:
        values = {
            f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "features"
        }
        return Setups(**values, features={k: v[index] for k, v in self.features.items()})

    def to_frame(self, arrays: MarketArrays | None = None, features: bool = True) -> pd.DataFrame:
        """A DataFrame: with `arrays`, tickers become names and session indices dates (the
        index columns are kept as `ticker_index`, `session_index`, ...)."""
        cols: dict[str, Any] = {}
        for f in fields(self):
            if f.name != "features":
                cols[f.name] = getattr(self, f.name)
        frame = pd.DataFrame(cols)
        if arrays is not None:
            sess = arrays.sessions.astype("datetime64[ns]")
            frame.insert(0, "ticker_index", frame["ticker"])
            names = np.asarray(arrays.tickers)[self.ticker].astype(str)
            frame["ticker"] = pd.array(names, dtype="string")
            for name in ("session", "rally_start", "rally_end", "consol_start", "consol_end"):
                frame[name + "_index"] = frame[name]
                frame[name] = sess[getattr(self, name)]
        frame["side"] = np.where(self.side > 0, "long", "short")
        if features:
            for name, values in self.features.items():
                frame[name] = values
        return frame


# --- the kernels -------------------------------------------------------------------------------

# integer parameters
_SWING, _RMIN, _RMAX, _CMIN, _CMAX, _ATRMAX = range(6)
# float parameters
(_PMIN, _PMAX, _EFF, _RATIO, _RETR, _RANGE, _BRK, _VOL, _STOPK, _F50, _F75, _F100, _FIB, _FADJ) = (
    range(14)
)


def _params(config: ScannerConfig) -> tuple[np.ndarray, np.ndarray]:
    ip = np.array(
        [
            config.swing_bars,
            config.rally_min_bars,
            config.rally_max_bars,
            config.min_consol_bars,
            config.consol_max_bars,
            config.atr_max_bars,
        ],
        dtype=np.int64,
    )
    f = config.target_fractions
    fp = np.array(
        [
            config.rally_min_pct,
            config.rally_max_pct,
            config.rally_min_efficiency,
            config.consol_min_ratio,
            config.consol_max_retracement,
            config.consol_max_range_pct,
            config.breakout_min_close_pct,
            config.breakout_min_volume_ratio,
            config.stop_atr_multiple,
            f[0],
            f[1],
            f[2],
            config.adjusted_threshold,
            config.adjusted_target_fraction,
        ],
        dtype=np.float64,
    )
    return ip, fp


# In the kernels below a side is (tarr, barr, sign): a long reads tops from high, bottoms from
# low (sign +1); a short reads tops from low, bottoms from high, negated (sign -1). In that
# "side space" (top = sign x tarr, bottom = sign x barr, close = sign x close) a short's selloff
# is a long's rally, so one code path serves both sides; multiplying by -1 is exact.


@njit(cache=True)
def _start_window(e, nb, seg, ratio, rmin, rmax, swing):
    """(jlo, jhi): where the rally start of swing high e with a base of nb bars can be.

    The rally has rally_min_bars .. rally_max_bars bars, its swing low needs swing_bars bars
    before it since the last missing bar, and the base must last consol_min_ratio x the rally:
    a start before jlo could only give a setup the ratio rejects (so cutting the search there
    never changes which swing low is the latest). Scalars only: it is called for every
    candidate, and array arguments cost a call.
    """
    longest = rmax
    if nb < ratio * rmax:  # the ratio caps the rally's length below rally_max_bars
        r = min(rmax, int(nb / ratio))
        while r < rmax and nb >= ratio * (r + 1):
            r += 1
        while r > 0 and nb < ratio * r:
            r -= 1
        longest = r
    return max(e - longest + 1, seg + swing), e - rmin + 1


@njit(cache=True, error_model="numpy")
def _may_qualify(barr, sign, jlo, jhi, top_e, base_bottom, min_pct, max_retracement):
    """Cheap necessary conditions of a candidate (side space), before the rally search: the
    largest move and the shallowest retracement the rally could give, from the lowest bottom
    where it could start. Never rejects a qualifying candidate (rounding is monotone)."""
    lowest = np.inf
    for k in range(jlo, jhi + 1):
        lowest = min(lowest, sign * barr[k])
    widest = top_e - lowest
    denominator = lowest if sign > 0 else -top_e
    return widest / denominator >= min_pct and (top_e - base_bottom) / widest <= max_retracement


@njit(cache=True, error_model="numpy")
def _qualify(tarr, barr, sign, high, low, close, volume, e, t, jlo, jhi, base_bottom, ip, fp):
    """The rally start of candidate swing high e breaking out on t, or -1 if it does not qualify.

    Side space (see above); high / low / close / volume are the bars themselves. base_bottom: the
    lowest bottom of the consolidation bars (e, t); [jlo, jhi] from `_start_window`.
    """
    nb = t - e - 1
    top_e = sign * tarr[e]
    swing = ip[_SWING]
    # the rally start: the latest swing low in the window
    runmin = np.inf  # lowest bottom over (j, e]
    runmax = -np.inf  # highest top over [j, e)
    for k in range(jhi + 1, e + 1):
        runmin = min(runmin, sign * barr[k])
    for k in range(jhi + 1, e):
        runmax = max(runmax, sign * tarr[k])
    start = -1
    for j in range(jhi, jlo - 1, -1):
        runmax = max(runmax, sign * tarr[j])
        bj = sign * barr[j]
        if bj <= runmin:
            swing_low = True
            for k in range(j - swing, j):
                if sign * barr[k] < bj:
                    swing_low = False
                    break
            if swing_low:
                start = j
                break
            runmin = bj
    if start < 0 or runmax > top_e:
        return -1
    if nb < fp[_RATIO] * (e - start + 1):
        return -1
    mh = top_e - sign * barr[start]
    if not mh > 0:
        return -1
    rally_low = low[start] if sign > 0 else low[e]
    pct = mh / rally_low
    if not (pct >= fp[_PMIN] and pct <= fp[_PMAX]):
        return -1
    if fp[_EFF] > -1.0:  # -1: no efficiency rule (every rally is at least -1)
        path = 0.0  # the rally's path length, summed in session order
        for k in range(start + 1, e + 1):
            path += abs(close[k] - close[k - 1])
        efficiency = sign * (close[e] - close[start]) / path if path > 0 else 0.0
        if not efficiency >= fp[_EFF]:
            return -1
    if not (top_e - base_bottom) / mh <= fp[_RETR]:
        return -1
    if fp[_VOL] > 0:
        total = 0.0
        for k in range(e + 1, t):
            total += volume[k]
        if not volume[t] >= fp[_VOL] * (total / nb):
            return -1
    if sign < 0:
        entry = close[t]
        f = fp[_FADJ] if close_position(high[t], low[t], entry, sign) >= fp[_FIB] else fp[_F50]
        if not (entry - f * mh > 0 and entry - fp[_F100] * mh > 0):
            return -1
    return start


@njit(cache=True, error_model="numpy")
def _scan_ticker(high, low, close, volume, start, emit_from, end, ip, fp, events):
    """One ticker, both sides: writes (t, h, l, side) of each setup to events (up to its
    capacity) and returns the number of setups.

    Any base holds at least the last cmin = `min_consol_bars` bars before t, so t is examined
    only if its close clears all of them (long: above their highest high; short: below their
    lowest low) and they are no wider than a base may be. Then the bars before them are walked
    back, tracking the highest high and lowest low since: a bar whose top is at least every later
    one is a live candidate (no bar after it traded beyond it) and is examined; the outermost
    qualifying candidate is kept. The walk stops at the first live candidate the close does not
    clear (none before it can be cleared either), when the base would get wider than
    `consol_max_range_pct` (any earlier candidate's base contains this one), after
    `consol_max_bars`, or at a missing bar.
    """
    cmin, cmax = ip[_CMIN], ip[_CMAX]
    rmin, rmax, swing = ip[_RMIN], ip[_RMAX], ip[_SWING]
    ratio, min_pct, max_retr = fp[_RATIO], fp[_PMIN], fp[_RETR]
    count = 0
    cap = events.shape[0]
    up, down, widest = 1.0 + fp[_BRK], 1.0 - fp[_BRK], 1.0 + fp[_RANGE]
    seg = start  # first session since the last missing bar
    for t in range(start, end):
        ht, lt, ct = high[t], low[t], close[t]
        if not (ht == ht and lt == lt and ct == ct):
            seg = t + 1
            continue
        if t < emit_from or t - 1 - cmin < seg:
            continue
        # the base holds at least the last cmin bars, so the close must clear all of them and
        # they must already fit in a tight enough base (branch-free: one test per bar)
        hmax, lmin = high[t - 1], low[t - 1]
        for k in range(t - cmin, t - 1):
            hk, lk = high[k], low[k]
            hmax = hk if hk > hmax else hmax
            lmin = lk if lk < lmin else lmin
        narrow = hmax <= lmin * widest
        go_long = narrow & (ct > hmax * up) & (ht > hmax)
        go_short = narrow & (ct < lmin * down) & (lt < lmin)
        if not (go_long | go_short):
            continue
        if go_long:  # long: highs are tops, lows bottoms
            top = hmax  # highest high of the bars (k, t)
            bottom = lmin  # lowest low of the bars (k, t)
            best_h, best_l = -1, -1
            for k in range(t - 1 - cmin, max(seg, t - 1 - cmax) - 1, -1):
                hk = high[k]
                if hk >= top:
                    if not (ct > hk * up and ht > hk):
                        break
                    jlo, jhi = _start_window(k, t - 1 - k, seg, ratio, rmin, rmax, swing)
                    if jhi >= jlo and _may_qualify(low, 1, jlo, jhi, hk, bottom, min_pct, max_retr):
                        l = _qualify(
                            high, low, 1, high, low, close, volume, k, t, jlo, jhi, bottom, ip, fp
                        )
                        if l >= 0:
                            best_h, best_l = k, l
                    top = hk
                bottom = min(bottom, low[k])
                if top > bottom * widest:
                    break
            if best_h >= 0:
                if count < cap:
                    events[count, 0], events[count, 1] = t, best_h
                    events[count, 2], events[count, 3] = best_l, 1
                count += 1
        if go_short:  # short: lows are tops, highs bottoms (negated)
            top = hmax  # highest high of the bars (k, t)
            bottom = lmin  # lowest low of the bars (k, t)
            best_h, best_l = -1, -1
            for k in range(t - 1 - cmin, max(seg, t - 1 - cmax) - 1, -1):
                lk = low[k]
                if lk <= bottom:
                    if not (ct < lk * down and lt < lk):
                        break
                    jlo, jhi = _start_window(k, t - 1 - k, seg, ratio, rmin, rmax, swing)
                    if jhi >= jlo and _may_qualify(
                        high, -1, jlo, jhi, -lk, -top, min_pct, max_retr
                    ):
                        l = _qualify(
                            low, high, -1, high, low, close, volume, k, t, jlo, jhi, -top, ip, fp
                        )
                        if l >= 0:
                            best_h, best_l = k, l
                    bottom = lk
                top = max(top, high[k])
                if top > bottom * widest:
                    break
            if best_h >= 0:
                if count < cap:
                    events[count, 0], events[count, 1] = t, best_h
                    events[count, 2], events[count, 3] = best_l, -1
                count += 1
    return count


@njit(cache=True, parallel=True, error_model="numpy")
def _detect(high, low, close, volume, rows, start, emit_from, end, ip, fp, events, counts):
    for r in prange(len(rows)):
        i = rows[r]
        counts[r] = _scan_ticker(
            high[i], low[i], close[i], volume[i], start, emit_from, end, ip, fp, events[r]
        )


@njit(cache=True)
def _geometry(high, low, close, tick, t_, h_, l_, side, ip, fp, ints, floats, flags):
    """Trade geometry of each detected setup.

    ints: rally_start, rally_end, consol_start, consol_end, atr_window;
    floats: rally_high, rally_low, move_height, consol_high, consol_low, entry, stop, atr,
            target_50, target_75, target_100, booked_target, risk, reward_risk;
    flags: stop_rule (0 atr, 1 consolidation), adjusted_entry.
    """
    for s in range(len(t_)):
        i, t, h, l, d = tick[s], t_[s], h_[s], l_[s], side[s]
        hi, lo, cl = high[i], low[i], close[i]
        if d > 0:
            r_high, r_low = hi[h], lo[l]
        else:
            r_high, r_low = hi[l], lo[h]
        mh = r_high - r_low
        c_high, c_low = -np.inf, np.inf
        for k in range(h + 1, t):
            if hi[k] > c_high:
                c_high = hi[k]
            if lo[k] < c_low:
                c_low = lo[k]
        entry = cl[t]
        first = max(l, t - ip[_ATRMAX])
        atr = mean_true_range(hi, lo, cl, first, t)
        stop = entry - d * fp[_STOPK] * atr
        rule = 0
        if not (atr > 0 and stop > 0):
            stop = c_low if d > 0 else c_high
            rule = 1
        adjusted = close_position(hi[t], lo[t], entry, d) >= fp[_FIB]
        t50 = entry + d * fp[_F50] * mh
        booked = entry + d * fp[_FADJ] * mh if adjusted else t50
        risk = abs(entry - stop)
        ints[s, 0], ints[s, 1], ints[s, 2], ints[s, 3], ints[s, 4] = l, h, h + 1, t - 1, t - first
        floats[s, 0], floats[s, 1], floats[s, 2] = r_high, r_low, mh
        floats[s, 3], floats[s, 4], floats[s, 5] = c_high, c_low, entry
        floats[s, 6], floats[s, 7] = stop, atr
        floats[s, 8] = t50
        floats[s, 9] = entry + d * fp[_F75] * mh
        floats[s, 10] = entry + d * fp[_F100] * mh
        floats[s, 11] = booked
        floats[s, 12] = risk
        floats[s, 13] = abs(booked - entry) / risk
        flags[s, 0] = rule
        flags[s, 1] = adjusted


# --- public API --------------------------------------------------------------------------------

_EVENT_CAPACITY = 32  # setups per ticker held in the first pass; tickers with more are rerun


def detect(
    arrays: MarketArrays,
    config: ScannerConfig | None = None,
    *,
    emit_from: int = 0,
    end: int | None = None,
    capacity: int = _EVENT_CAPACITY,
) -> np.ndarray:
    """The setups' skeletons as a (k, 5) int64 array of ticker, breakout session, rally end
    (swing high; short: swing low), rally start, side (+1 / -1); sorted by session, ticker and
    side (long first). Arguments as `scan`; `capacity` is the number of setups per ticker the
    first pass holds (tickers with more are scanned again with room for all)."""
    config = config or ScannerConfig()
    n, m = arrays.shape
    end = m if end is None else max(0, min(int(end), m))
    emit_from = max(0, int(emit_from))
    start = max(0, emit_from - config.lookback_bars)
    ip, fp = _params(config)

    def run(rows: np.ndarray, room: int) -> tuple[np.ndarray, np.ndarray]:
        events = np.empty((len(rows), room, 4), np.int64)
        counts = np.zeros(len(rows), np.int64)
        _detect(
            arrays.high,
            arrays.low,
            arrays.close,
            arrays.volume,
            rows,
            start,
            emit_from,
            end,
            ip,
            fp,
            events,
            counts,
        )
        return events, counts

    def flatten(rows: np.ndarray, events: np.ndarray, counts: np.ndarray) -> np.ndarray:
        r, c = np.nonzero(np.arange(events.shape[1])[None, :] < counts[:, None])
        return np.column_stack([rows[r], events[r, c]])

    rows = np.arange(n, dtype=np.int64)
    events, counts = run(rows, capacity)
    over = counts > capacity
    parts = [flatten(rows[~over], events[~over], counts[~over])]
    if over.any():
        again = rows[over]
        parts.append(flatten(again, *run(again, int(counts[over].max()))))
    raw = np.concatenate(parts).astype(np.int64)
    order = np.lexsort((-raw[:, 4], raw[:, 0], raw[:, 1]))
    return raw[order]


def scan(
    arrays: MarketArrays,
    config: ScannerConfig | None = None,
    *,
    emit_from: int = 0,
    end: int | None = None,
    index_close: dict[str, np.ndarray] | None = None,
    sector_etf_of_ticker: np.ndarray | None = None,
    features: bool = True,
) -> Setups:
    """Every setup whose breakout session s satisfies emit_from <= s < end (default: all).

    Reads only sessions < end, and only the `config.lookback_bars` sessions before emit_from
    for detection (features read up to `feature_lookback_bars` / `volume_baseline_bars` back):
    the setups of a session are the same whether the market is scanned whole or from there.
    `index_close` ({'SPY': (m,), 'QQQ': (m,), 'XLK': (m,), ...}) and `sector_etf_of_ticker`
    ((n,) str) feed the relative-strength features; without them those features are NaN.
    """
    config = config or ScannerConfig()
    raw = detect(arrays, config, emit_from=emit_from, end=end)
    setups = _build(arrays, config, raw)
    if features:
        from breakout_assets.core.pattern_features import pattern_features

        setups.features = pattern_features(
            arrays, setups, config, index_close, sector_etf_of_ticker
        )
    return setups


def scan_session(
    arrays: MarketArrays, t: int, config: ScannerConfig | None = None, **kwargs: Any
) -> Setups:
    """The setups breaking out on session index t (live use), reading no session after t."""
    return scan(arrays, config, emit_from=t, end=t + 1, **kwargs)


def _build(arrays: MarketArrays, config: ScannerConfig, raw: np.ndarray) -> Setups:
    k = len(raw)
    ip, fp = _params(config)
    ints = np.zeros((k, 5), np.int64)
    floats = np.zeros((k, 14), np.float64)
    flags = np.zeros((k, 2), np.int64)
    if k:
        _geometry(
            arrays.high,
            arrays.low,
            arrays.close,
            raw[:, 0].copy(),
            raw[:, 1].copy(),
            raw[:, 2].copy(),
            raw[:, 3].copy(),
            raw[:, 4].copy(),
            ip,
            fp,
            ints,
            floats,
            flags,
        )
    values: dict[str, Any] = {
        "ticker": raw[:, 0].copy(),
        "session": raw[:, 1].copy(),
        "side": raw[:, 4].astype(np.int8),
        "stop_rule": np.array(STOP_RULES, dtype=object)[flags[:, 0]].astype(str),
        "adjusted_entry": flags[:, 1].astype(bool),
    }
    for j, name in enumerate(_GEOMETRY_INT_FIELDS):
        values[name] = ints[:, j].copy()
    for j, name in enumerate(_FLOAT_FIELDS):
        values[name] = floats[:, j].copy()
    return Setups(**values)

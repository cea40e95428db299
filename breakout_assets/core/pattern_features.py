"""Pattern features of each setup: one code path for training rows and live scoring.

Every feature of a setup breaking out on session t reads the ticker's bars up to and including t
and the index closes up to t, nothing later. Notation: l = rally start, h = rally end (the swing
high; for a short the swing low), the base (consolidation) = bars h+1 .. t-1, R = h - l + 1 and
C = t - h - 1 bars, E = entry (close[t]), MH = move height, d = +1 long / -1 short.
"Directional" features are multiplied by d so that a positive value always means "in the
trade's favour" (e.g. a short whose stock fell more than its sector during the selloff has a
positive `stock_vs_sector_rally_strength`). `ret(x, a, b) = x[b] / x[a] - 1`.
TR = true range (`core.geometry.true_range`). W = the `feature_lookback_bars` sessions before t
(missing bars skipped). All values are float64; NaN where undefined (missing index series, zero
denominators).

- basic_tightness: (consol_high - consol_low) / (mean TR of the base x sqrt(C)): the base's range
    against the range its own volatility would span over its length; lower = tighter (encodes the
    base length)
- consol_duration: C
- rally_pct: MH / rally_low (for a short: MH / selloff low, the log-space mirror)
- rally_duration: R
- rally_intensity: rally_pct / R
- consol_end_close_pct: where the last base close sits in the base range, toward the breakout side:
    long (close[t-1] - consol_low) / range, short (consol_high - close[t-1]) / range; 0.5 for a
    zero range
- consol_rally_duration_ratio: C / R
- consol_bearish_ratio: share of base bars closing against the trade: long close < open, short
    close > open
- candles_close_above_entry: bars of W closing beyond E in the trade's direction (long: close > E,
    short: close < E): supply overhead / support below
- momentum_second_half: share of the move made after the rally's middle bar m = l + (R-1)//2: long
    (rally_high - close[m]) / MH, short (close[m] - rally_low) / MH
- stock_vs_sector_rally_strength: d x (ret(close, l, h) - ret(sector ETF, l, h))
- stock_vs_qqq_rally_strength: d x (ret(close, l, h) - ret(QQQ, l, h))
- sector_vs_market_strength: d x (ret(sector ETF, l, t) - ret(SPY, l, t)) over the whole pattern
- qqq_consol_vs_rally_pct: d x (ret(QQQ, h, t-1) - ret(QQQ, l, h)): QQQ's move during the base
    minus during the rally
- breakout_day_atr_multiple: TR[t] / ATR (the setup's stop ATR)
- rally_avg_volume_to_breakout_ratio: mean volume of rally bars l..h / volume[t]
- consol_volume_pct: mean base volume / baseline - 1; baseline = mean volume of the
    `volume_baseline_bars` sessions before l
- rally_volume_pct: mean rally volume / baseline - 1
- consol_avg_volume_to_breakout_ratio: mean base volume / volume[t]
- breakout_range_to_consol_avg_range_ratio: (high[t] - low[t]) / mean (high - low) of the base
- fib_retracement_zone: how many of the fib levels 0.236, 0.382, 0.5, 0.618, 0.786 the base's
    deepest retracement reaches (0-5); retracement = (rally_high - consol_low) / MH long,
    (consol_high - rally_low) / MH short
- old_entry_touches: bars of W whose range contains E (low <= E <= high)
- old_entry_touches_ratio: old_entry_touches / bars in W
- stop_touches_ratio: bars of W whose range contains the stop / bars in W
- entry_month: calendar month (1-12) of the breakout session
- pattern_score: mean of five scores in [0, 1]: min(1, rally_pct / (2 x rally_min_pct)); the
    rally's efficiency clipped to [0, 1]; 1 - retracement / consol_max_retracement clipped to [0,
    1]; min(1, breakout volume / mean base volume / 3); the breakout candle's close position in its
    range (toward the trade)
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from breakout_assets.core.geometry import close_position, true_range

FEATURE_NAMES = (
    "basic_tightness",
    "consol_duration",
    "rally_pct",
    "rally_duration",
    "rally_intensity",
    "consol_end_close_pct",
    "consol_rally_duration_ratio",
    "consol_bearish_ratio",
    "candles_close_above_entry",
    "momentum_second_half",
    "stock_vs_sector_rally_strength",
    "stock_vs_qqq_rally_strength",
    "sector_vs_market_strength",
    "qqq_consol_vs_rally_pct",
    "breakout_day_atr_multiple",
    "rally_avg_volume_to_breakout_ratio",
    "consol_volume_pct",
    "rally_volume_pct",
    "consol_avg_volume_to_breakout_ratio",
    "breakout_range_to_consol_avg_range_ratio",
    "fib_retracement_zone",
    "old_entry_touches",
    "old_entry_touches_ratio",
    "stop_touches_ratio",
    "entry_month",
    "pattern_score",
)
FIB_LEVELS = (0.236, 0.382, 0.5, 0.618, 0.786)
MARKET_ETF, TECH_INDEX = "SPY", "QQQ"


@njit(cache=True)
def _div(a: float, b: float) -> float:
    return a / b if b != 0 else np.nan


@njit(cache=True)
def _ret(x: np.ndarray, a: int, b: int) -> float:
    return _div(x[b], x[a]) - 1.0


@njit(cache=True)
def _clip01(x: float) -> float:
    if not x == x:
        return 0.0
    return min(1.0, max(0.0, x))


@njit(cache=True)
def _features(
    op,
    high,
    low,
    close,
    volume,
    tick,
    t_,
    h_,
    l_,
    side,
    entry_,
    stop_,
    atr_,
    mh_,
    c_high_,
    c_low_,
    r_high_,
    r_low_,
    index,
    sector_row,
    months,
    lookback,
    baseline_bars,
    rally_min_pct,
    max_retracement,
    fibs,
    out,
):
    nan = np.nan
    for s in range(len(t_)):
        i, t, h, l, d = tick[s], t_[s], h_[s], l_[s], side[s]
        o, hi, lo, cl, vo = op[i], high[i], low[i], close[i], volume[i]
        entry, stop, atr, mh = entry_[s], stop_[s], atr_[s], mh_[s]
        c_high, c_low, r_high, r_low = c_high_[s], c_low_[s], r_high_[s], r_low_[s]
        R, C = h - l + 1, t - h - 1
        # the base
        tr_sum = range_sum = vol_c = 0.0
        against = 0
        for k in range(h + 1, t):
            tr_sum += true_range(hi, lo, cl, k)
            range_sum += hi[k] - lo[k]
            vol_c += vo[k]
            if d * (cl[k] - o[k]) < 0:
                against += 1
        vol_c /= C
        consol_atr = tr_sum / C
        c_range = c_high - c_low
        # the rally
        vol_r = 0.0
        path = 0.0
        for k in range(l, h + 1):
            vol_r += vo[k]
            if k > l:
                path += abs(cl[k] - cl[k - 1])
        vol_r /= R
        efficiency = d * (cl[h] - cl[l]) / path if path > 0 else 0.0
        # volume baseline before the rally
        base_sum, base_n = 0.0, 0
        for k in range(max(0, l - baseline_bars), l):
            if vo[k] == vo[k]:
                base_sum += vo[k]
                base_n += 1
        baseline = base_sum / base_n if base_n > 0 else nan
        # level interaction over W
        n_w = beyond = entry_touch = stop_touch = 0
        for k in range(max(0, t - lookback), t):
            if not (hi[k] == hi[k] and lo[k] == lo[k] and cl[k] == cl[k]):
                continue
            n_w += 1
            if d * (cl[k] - entry) > 0:
                beyond += 1
            if lo[k] <= entry and entry <= hi[k]:
                entry_touch += 1
            if lo[k] <= stop and stop <= hi[k]:
                stop_touch += 1
        # relative strength
        stock_r = _ret(cl, l, h)
        spy, qqq = index[0], index[1]
        row = sector_row[i]
        if row >= 0:
            sec = index[row]
            vs_sector = d * (stock_r - _ret(sec, l, h))
            sector_vs_market = d * (_ret(sec, l, t) - _ret(spy, l, t))
        else:
            vs_sector = nan
            sector_vs_market = nan
        retracement = (r_high - c_low) / mh if d > 0 else (c_high - r_low) / mh
        zone = 0.0
        for f in fibs:
            if retracement >= f:
                zone += 1.0
        mid = l + (R - 1) // 2
        extreme = hi[h] if d > 0 else lo[h]
        position = close_position(hi[t], lo[t], cl[t], d)
        rally_pct = mh / r_low
        score = (
            _clip01(rally_pct / (2.0 * rally_min_pct))
            + _clip01(efficiency)
            + _clip01(1.0 - retracement / max_retracement)
            + _clip01(_div(vo[t], vol_c) / 3.0)
            + _clip01(position)
        ) / 5.0
        if c_range > 0:
            end_pct = (cl[t - 1] - c_low) / c_range if d > 0 else (c_high - cl[t - 1]) / c_range
        else:
            end_pct = 0.5
        out[s, 0] = c_range / (consol_atr * math.sqrt(C)) if consol_atr > 0 else nan
        out[s, 1] = C
        out[s, 2] = rally_pct
        out[s, 3] = R
        out[s, 4] = rally_pct / R
        out[s, 5] = end_pct
        out[s, 6] = C / R
        out[s, 7] = against / C
        out[s, 8] = beyond
        out[s, 9] = d * (extreme - cl[mid]) / mh
        out[s, 10] = vs_sector
        out[s, 11] = d * (stock_r - _ret(qqq, l, h))
        out[s, 12] = sector_vs_market
        out[s, 13] = d * (_ret(qqq, h, t - 1) - _ret(qqq, l, h))
        out[s, 14] = true_range(hi, lo, cl, t) / atr if atr > 0 else nan
        out[s, 15] = _div(vol_r, vo[t])
        out[s, 16] = _div(vol_c, baseline) - 1.0
        out[s, 17] = _div(vol_r, baseline) - 1.0
        out[s, 18] = _div(vol_c, vo[t])
        out[s, 19] = _div(hi[t] - lo[t], range_sum / C)
        out[s, 20] = zone
        out[s, 21] = entry_touch
        out[s, 22] = entry_touch / n_w if n_w > 0 else nan
        out[s, 23] = stop_touch / n_w if n_w > 0 else nan
        out[s, 24] = months[t]
        out[s, 25] = score


def session_months(sessions: np.ndarray) -> np.ndarray:
    """Calendar month (1-12) of each datetime64 session."""
    months = np.asarray(sessions).astype("datetime64[M]").astype(np.int64)
    return (months % 12 + 1).astype(np.int64)


def index_matrix(
    index_close: dict[str, np.ndarray] | None,
    sector_etf_of_ticker: np.ndarray | None,
    n: int,
    m: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Index closes as rows (0 SPY, 1 QQQ, then sector ETFs) and each ticker's sector-ETF row
    (-1 where its ETF has no series)."""
    index_close = index_close or {}
    names = [MARKET_ETF, TECH_INDEX]
    if sector_etf_of_ticker is not None:
        etfs = np.asarray(sector_etf_of_ticker, dtype=object).astype(str)
        if len(etfs) != n:
            raise ValueError(f"sector_etf_of_ticker has {len(etfs)} entries, expected {n}")
        names += sorted(set(etfs) - set(names))
    else:
        etfs = np.full(n, "", dtype=object).astype(str)
    matrix = np.full((len(names), m), np.nan)
    for r, name in enumerate(names):
        if name in index_close:
            series = np.asarray(index_close[name], dtype=np.float64)
            if series.shape != (m,):
                raise ValueError(f"index_close[{name!r}] has shape {series.shape}, expected ({m},)")
            matrix[r] = series
    row_of = {name: r for r, name in enumerate(names) if name in index_close}
    sector_row = np.array([row_of.get(e, -1) for e in etfs], dtype=np.int64)
    return matrix, sector_row


def pattern_features(
    arrays, setups, config, index_close=None, sector_etf_of_ticker=None
) -> dict[str, np.ndarray]:
    """{feature name: (k,) float64} for the setups (see the module docstring for definitions)."""
    n, m = arrays.shape
    k = len(setups)
    out = np.zeros((k, len(FEATURE_NAMES)))
    if k:
        matrix, sector_row = index_matrix(index_close, sector_etf_of_ticker, n, m)
        _features(
            arrays.open,
            arrays.high,
            arrays.low,
            arrays.close,
            arrays.volume,
            setups.ticker.astype(np.int64),
            setups.session.astype(np.int64),
            setups.rally_end.astype(np.int64),
            setups.rally_start.astype(np.int64),
            setups.side.astype(np.int64),
            setups.entry,
            setups.stop,
            setups.atr,
            setups.move_height,
            setups.consol_high,
            setups.consol_low,
            setups.rally_high,
            setups.rally_low,
            matrix,
            sector_row,
            session_months(arrays.sessions),
            int(config.feature_lookback_bars),
            int(config.volume_baseline_bars),
            float(config.rally_min_pct),
            float(config.consol_max_retracement),
            np.array(FIB_LEVELS),
            out,
        )
    return {name: out[:, j].copy() for j, name in enumerate(FEATURE_NAMES)}

"""A plain per-ticker python/pandas implementation of the scanner's rules (see `core.scanner`).

It exists to check the fast scanner: the same rules written the obvious way — for every
ticker, every session t and every possible swing high e before it, test each rule on the bars
directly — with no stack, no walk, no pruning and no numba. It is slow (python loops over
sessions x candidates) and meant for tests and the benchmark only. Float expressions are
written as the fast kernels evaluate them, so both give bit-identical geometry.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from breakout_assets.core.pattern_features import FEATURE_NAMES, FIB_LEVELS, MARKET_ETF, TECH_INDEX
from breakout_assets.core.scanner import (
    _FLOAT_FIELDS,
    _GEOMETRY_INT_FIELDS,
    MarketArrays,
    ScannerConfig,
    Setups,
)


def _true_range(high: list, low: list, close: list, k: int) -> float:
    prev = close[k - 1] if k > 0 else math.nan
    if math.isnan(prev):
        return high[k] - low[k]
    return max(high[k], prev) - min(low[k], prev)


def _close_position(high: float, low: float, close: float, side: int) -> float:
    if not high - low > 0:
        return 1.0
    return (close - low) / (high - low) if side > 0 else (high - close) / (high - low)


def _rally_start(high, low, valid, e, side, cfg: ScannerConfig) -> int | None:
    """The latest swing low (short: swing high) l in [e - rally_max + 1, e - rally_min + 1]
    lowest of (l, e] and of the swing_bars bars before it, with no missing bar in [l - swing, e]."""
    for j in range(e - cfg.rally_min_bars + 1, e - cfg.rally_max_bars, -1):
        if j - cfg.swing_bars < 0 or not all(valid[j - cfg.swing_bars : e + 1]):
            return None
        after = range(j + 1, e + 1)
        before = range(j - cfg.swing_bars, j)
        if side > 0:
            if all(low[j] <= low[k] for k in after) and all(low[j] <= low[k] for k in before):
                return j
        else:
            if all(high[j] >= high[k] for k in after) and all(high[j] >= high[k] for k in before):
                return j
    return None


def _candidate(
    high, low, close, volume, valid, t, e, side, cfg: ScannerConfig, min_consol: int
) -> int | None:
    """The rally start if swing high (short: low) e gives a setup breaking out on t, else None."""
    nb = t - e - 1
    if nb < min_consol or nb > cfg.consol_max_bars:
        return None
    # the breakout bar trades and closes beyond the extreme ...
    if side > 0:
        ext = high[e]
        if not (high[t] > ext and close[t] > ext * (1.0 + cfg.breakout_min_close_pct)):
            return None
    else:
        ext = low[e]
        if not (low[t] < ext and close[t] < ext * (1.0 - cfg.breakout_min_close_pct)):
            return None
    if not all(valid[e : t + 1]):
        return None
    # ... and is the first to: the base never trades beyond it
    base = range(e + 1, t)
    c_high, c_low = max(high[e + 1 : t]), min(low[e + 1 : t])
    if (side > 0 and c_high > ext) or (side < 0 and c_low < ext):
        return None
    if c_high > c_low * (1.0 + cfg.consol_max_range_pct):
        return None
    l = _rally_start(high, low, valid, e, side, cfg)
    if l is None:
        return None
    rally = range(l, e)
    if side > 0 and any(high[k] > ext for k in rally):
        return None
    if side < 0 and any(low[k] < ext for k in rally):
        return None
    if nb < cfg.consol_min_ratio * (e - l + 1):
        return None
    mh = high[e] - low[l] if side > 0 else high[l] - low[e]
    if not mh > 0:
        return None
    rally_low = low[l] if side > 0 else low[e]
    if not cfg.rally_min_pct <= mh / rally_low <= cfg.rally_max_pct:
        return None
    path = 0.0
    for k in range(l + 1, e + 1):
        path += abs(close[k] - close[k - 1])
    net = close[e] - close[l] if side > 0 else close[l] - close[e]
    efficiency = net / path if path > 0 else 0.0
    if not efficiency >= cfg.rally_min_efficiency:
        return None
    retracement = (high[e] - c_low) / mh if side > 0 else (c_high - low[e]) / mh
    if not retracement <= cfg.consol_max_retracement:
        return None
    if cfg.breakout_min_volume_ratio > 0:
        total = 0.0
        for k in base:
            total += volume[k]
        if not volume[t] >= cfg.breakout_min_volume_ratio * (total / nb):
            return None
    if side < 0:
        adjusted = _close_position(high[t], low[t], close[t], side) >= cfg.adjusted_threshold
        f = cfg.adjusted_target_fraction if adjusted else cfg.target_fractions[0]
        if not (close[t] - f * mh > 0 and close[t] - cfg.target_fractions[2] * mh > 0):
            return None
    return l


def _geometry(high, low, close, t, e, l, side, cfg: ScannerConfig) -> dict:
    c_high, c_low = max(high[e + 1 : t]), min(low[e + 1 : t])
    r_high, r_low = (high[e], low[l]) if side > 0 else (high[l], low[e])
    mh = r_high - r_low
    entry = close[t]
    first = max(l, t - cfg.atr_max_bars)
    total = 0.0
    for k in range(first, t):
        total += _true_range(high, low, close, k)
    atr = total / (t - first)
    k_stop = cfg.stop_atr_multiple
    if side > 0:
        stop, rule = entry - k_stop * atr, "atr"
        if not (atr > 0 and stop > 0):
            stop, rule = c_low, "consolidation"
    else:
        stop, rule = entry + k_stop * atr, "atr"
        if not (atr > 0 and stop > 0):
            stop, rule = c_high, "consolidation"
    f50, f75, f100 = cfg.target_fractions
    adjusted = _close_position(high[t], low[t], entry, side) >= cfg.adjusted_threshold
    if side > 0:
        targets = [entry + f * mh for f in (f50, f75, f100)]
        booked = entry + cfg.adjusted_target_fraction * mh if adjusted else targets[0]
    else:
        targets = [entry - f * mh for f in (f50, f75, f100)]
        booked = entry - cfg.adjusted_target_fraction * mh if adjusted else targets[0]
    risk = abs(entry - stop)
    return {
        "rally_start": l,
        "rally_end": e,
        "consol_start": e + 1,
        "consol_end": t - 1,
        "rally_high": r_high,
        "rally_low": r_low,
        "move_height": mh,
        "consol_high": c_high,
        "consol_low": c_low,
        "entry": entry,
        "stop": stop,
        "stop_rule": rule,
        "atr": atr,
        "atr_window": t - first,
        "target_50": targets[0],
        "target_75": targets[1],
        "target_100": targets[2],
        "booked_target": booked,
        "adjusted_entry": adjusted,
        "risk": risk,
        "reward_risk": abs(booked - entry) / risk,
    }


def _ret(x: np.ndarray, a: int, b: int) -> float:
    return x[b] / x[a] - 1.0 if x[a] != 0 else math.nan


def _features(
    row: dict, o, high, low, close, volume, month: int, index: dict, sector: str, cfg: ScannerConfig
) -> dict:
    """The pattern features of one setup, per the table in `core.pattern_features`."""
    t, h, l, d = row["session"], row["rally_end"], row["rally_start"], row["side"]
    R, C = h - l + 1, t - h - 1
    base, rally = range(h + 1, t), range(l, h + 1)
    entry, stop, atr, mh = row["entry"], row["stop"], row["atr"], row["move_height"]
    c_high, c_low = row["consol_high"], row["consol_low"]
    consol_atr = np.mean([_true_range(high, low, close, k) for k in base])
    c_range = c_high - c_low
    vol_c = np.mean([volume[k] for k in base])
    vol_r = np.mean([volume[k] for k in rally])
    before = [
        volume[k]
        for k in range(max(0, l - cfg.volume_baseline_bars), l)
        if not math.isnan(volume[k])
    ]
    baseline = float(np.mean(before)) if before else math.nan
    window = [
        k
        for k in range(max(0, t - cfg.feature_lookback_bars), t)
        if not (math.isnan(high[k]) or math.isnan(low[k]) or math.isnan(close[k]))
    ]
    path = sum(abs(close[k] - close[k - 1]) for k in range(l + 1, h + 1))
    efficiency = d * (close[h] - close[l]) / path if path > 0 else 0.0
    retracement = (row["rally_high"] - c_low) / mh if d > 0 else (c_high - row["rally_low"]) / mh
    position = _close_position(high[t], low[t], close[t], d)
    nan = math.nan
    spy = index.get(MARKET_ETF)
    qqq = index.get(TECH_INDEX)
    sec = index.get(sector)
    stock_r = _ret(close, l, h)
    rally_pct = mh / row["rally_low"]

    def clip01(x: float) -> float:
        return 0.0 if math.isnan(x) else min(1.0, max(0.0, x))

    def div(a: float, b: float) -> float:
        return a / b if b != 0 else nan

    score = np.mean(
        [
            clip01(rally_pct / (2 * cfg.rally_min_pct)),
            clip01(efficiency),
            clip01(1 - retracement / cfg.consol_max_retracement),
            clip01(div(volume[t], vol_c) / 3),
            clip01(position),
        ]
    )
    entry_touches = sum(1 for k in window if low[k] <= entry <= high[k])
    mid = l + (R - 1) // 2
    extreme = high[h] if d > 0 else low[h]
    if c_range > 0:
        end_pct = (close[t - 1] - c_low) / c_range if d > 0 else (c_high - close[t - 1]) / c_range
    else:
        end_pct = 0.5
    return {
        "basic_tightness": c_range / (consol_atr * math.sqrt(C)) if consol_atr > 0 else nan,
        "consol_duration": C,
        "rally_pct": rally_pct,
        "rally_duration": R,
        "rally_intensity": rally_pct / R,
        "consol_end_close_pct": end_pct,
        "consol_rally_duration_ratio": C / R,
        "consol_bearish_ratio": sum(1 for k in base if d * (close[k] - o[k]) < 0) / C,
        "candles_close_above_entry": sum(1 for k in window if d * (close[k] - entry) > 0),
        "momentum_second_half": d * (extreme - close[mid]) / mh,
        "stock_vs_sector_rally_strength": d * (stock_r - _ret(sec, l, h))
        if sec is not None
        else nan,
        "stock_vs_qqq_rally_strength": d * (stock_r - _ret(qqq, l, h)) if qqq is not None else nan,
        "sector_vs_market_strength": d * (_ret(sec, l, t) - _ret(spy, l, t))
        if sec is not None and spy is not None
        else nan,
        "qqq_consol_vs_rally_pct": d * (_ret(qqq, h, t - 1) - _ret(qqq, l, h))
        if qqq is not None
        else nan,
        "breakout_day_atr_multiple": _true_range(high, low, close, t) / atr if atr > 0 else nan,
        "rally_avg_volume_to_breakout_ratio": div(vol_r, volume[t]),
        "consol_volume_pct": div(vol_c, baseline) - 1,
        "rally_volume_pct": div(vol_r, baseline) - 1,
        "consol_avg_volume_to_breakout_ratio": div(vol_c, volume[t]),
        "breakout_range_to_consol_avg_range_ratio": div(
            high[t] - low[t], np.mean([high[k] - low[k] for k in base])
        ),
        "fib_retracement_zone": float(sum(retracement >= f for f in FIB_LEVELS)),
        "old_entry_touches": entry_touches,
        "old_entry_touches_ratio": entry_touches / len(window) if window else nan,
        "stop_touches_ratio": sum(1 for k in window if low[k] <= stop <= high[k]) / len(window)
        if window
        else nan,
        "entry_month": month,
        "pattern_score": score,
    }


def reference_scan_frame(
    arrays: MarketArrays,
    config: ScannerConfig | None = None,
    index_close: dict[str, np.ndarray] | None = None,
    sector_etf_of_ticker: np.ndarray | None = None,
    tickers: list[int] | None = None,
) -> pd.DataFrame:
    """One row per setup (columns as `Setups`, indices not names, plus the features), sorted by
    session, ticker, side (long first)."""
    cfg = config or ScannerConfig()
    index_close = index_close or {}
    n, m = arrays.shape
    months = pd.DatetimeIndex(arrays.sessions.astype("datetime64[ns]")).month.to_numpy()
    min_consol = cfg.min_consol_bars
    rows = []
    for i in range(n) if tickers is None else tickers:
        o, high, low, close, volume = (
            getattr(arrays, f)[i].tolist() for f in ("open", "high", "low", "close", "volume")
        )
        valid = [
            not (math.isnan(a) or math.isnan(b) or math.isnan(c))
            for a, b, c in zip(high, low, close, strict=True)
        ]
        sector = str(sector_etf_of_ticker[i]) if sector_etf_of_ticker is not None else ""
        for t in range(m):
            if not valid[t]:
                continue
            for side in (1, -1):
                found = None
                for e in range(max(0, t - 1 - cfg.consol_max_bars), t - min_consol):
                    l = _candidate(high, low, close, volume, valid, t, e, side, cfg, min_consol)
                    if l is not None:  # the earliest e: the outermost structure
                        found = (e, l)
                        break
                if found is None:
                    continue
                e, l = found
                row = {"ticker": i, "session": t, "side": side}
                row.update(_geometry(high, low, close, t, e, l, side, cfg))
                row.update(
                    _features(
                        row, o, high, low, close, volume, int(months[t]), index_close, sector, cfg
                    )
                )
                rows.append(row)
    columns = [
        "ticker",
        "session",
        "side",
        *_GEOMETRY_INT_FIELDS,
        *_FLOAT_FIELDS,
        "stop_rule",
        "adjusted_entry",
        *FEATURE_NAMES,
    ]
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame = frame.sort_values(
            ["session", "ticker", "side"], ascending=[True, True, False], ignore_index=True
        )
    return frame


def reference_scan(
    arrays: MarketArrays,
    config: ScannerConfig | None = None,
    index_close: dict[str, np.ndarray] | None = None,
    sector_etf_of_ticker: np.ndarray | None = None,
) -> Setups:
    """`reference_scan_frame` as a `Setups` (to compare with `core.scanner.scan`)."""
    frame = reference_scan_frame(arrays, config, index_close, sector_etf_of_ticker)
    ints = ("ticker", "session", *_GEOMETRY_INT_FIELDS)
    values = {c: frame[c].to_numpy(np.int64) for c in ints}
    values.update({c: frame[c].to_numpy(np.float64) for c in _FLOAT_FIELDS})
    values["side"] = frame["side"].to_numpy(np.int8)
    values["stop_rule"] = frame["stop_rule"].to_numpy(str)
    values["adjusted_entry"] = frame["adjusted_entry"].to_numpy(bool)
    features = {c: frame[c].to_numpy(np.float64) for c in FEATURE_NAMES}
    return Setups(**values, features=features)

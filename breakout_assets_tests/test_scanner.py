"""The breakout scanner: hand-built golden setups and near misses, properties of every setup on
random markets, agreement with the plain reference implementation, no look-ahead, and recall of
the synthetic market's planted setups."""

from __future__ import annotations

import math
from dataclasses import fields
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from breakout_assets.core.geometry import true_range
from breakout_assets.core.pattern_features import FEATURE_NAMES
from breakout_assets.core.scanner import (
    MarketArrays,
    ScannerConfig,
    Setups,
    detect,
    index_close_arrays,
    scan,
    scan_session,
)
from breakout_assets.core.scanner_reference import reference_scan
from breakout_assets.resources.market_data.synthetic import SyntheticSource

OHLCV = ("open", "high", "low", "close", "volume")
DEFAULT = ScannerConfig()
# Looser settings: random walks give many more setups, so every rule gets exercised.
LOOSE = ScannerConfig(
    rally_min_pct=0.04,
    rally_min_efficiency=0.1,
    consol_max_range_pct=0.25,
    consol_min_ratio=1.0,
    consol_max_retracement=0.8,
    breakout_min_volume_ratio=0.5,
)
CONFIGS = [
    DEFAULT,
    LOOSE,
    LOOSE.model_copy(
        update={"breakout_min_close_pct": 0.01, "atr_max_bars": 8, "stop_atr_multiple": 6.0}
    ),
    LOOSE.model_copy(
        update={
            "rally_min_bars": 2,
            "rally_max_bars": 8,
            "swing_bars": 2,
            "consol_max_bars": 20,
            "breakout_min_volume_ratio": 0.0,
        }
    ),
    LOOSE.model_copy(
        update={
            "consol_min_ratio": 1.5,
            "rally_max_pct": 0.3,
            "adjusted_entry_fib": 0.5,
            "stop_atr_multiple": 40.0,
        }
    ),  # long stops often <= 0: the fallback
]


# --- market builders ---------------------------------------------------------------------------


def _arrays(rows: list[list[tuple]], first: str = "2024-03-01") -> MarketArrays:
    """Arrays from per-ticker lists of (open, high, low, close, volume) bars on business days."""
    m = max(len(r) for r in rows)
    values = np.full((5, len(rows), m), np.nan)
    for i, row in enumerate(rows):
        values[:, i, : len(row)] = np.array(row, dtype=float).T
    sessions = np.busday_offset(np.datetime64(first, "D"), np.arange(m), roll="forward")
    return MarketArrays(np.array([f"T{i}" for i in range(len(rows))]), sessions, *values)


def _plant(rng: np.random.Generator, prev_close: float, short: bool) -> list[tuple]:
    """A rally -> base -> breakout (short: the mirror) starting from prev_close, in the spirit of
    the synthetic market's plants but drawn independently: lead-in decline, swing low, rally,
    base in a band below the swing high, breakout close above it on high volume."""
    rally = int(rng.integers(3, 12))
    consol = int(math.ceil(rally * rng.uniform(1.5, 3.0)))
    move = math.log1p(rng.uniform(0.15, 0.4))
    sigma = rng.uniform(0.004, 0.015)
    bars = []  # (open, high, low, close) as log offsets from prev_close, and volume multiple
    lead = np.linspace(0, -rng.uniform(0.02, 0.06), 6)[1:]
    for k, c in enumerate(lead):
        o = (lead[k - 1] if k else 0.0) + rng.normal(0, sigma / 3)
        bars.append((o, max(o, c) + sigma, min(o, c) - sigma / 2, c, 1.0))
    low = lead[-1] - 2 * sigma
    high = low + move
    top, band = high - rng.uniform(0.05, 0.15) * move, rng.uniform(0.12, 0.3) * move
    closes = low + move * np.sort(rng.uniform(0.05, 0.85, rally))
    closes[-1] = high - rng.uniform(0.05, 0.15) * move
    for k, c in enumerate(closes):
        o = bars[-1][3]
        lo = low if k == 0 else max(low + 0.02 * move, min(o, c) - sigma)
        hi = high if k == rally - 1 else min(high - 0.02 * move, max(o, c) + sigma)
        bars.append((o, hi, lo, c, 1.5))
    for _ in range(consol):
        c = rng.uniform(top - band, top)
        o = min(max(bars[-1][3], top - band), top)
        hi, lo = min(top, max(o, c) + sigma / 2), max(top - band, min(o, c) - sigma / 2)
        bars.append((o, hi, lo, c, 0.5))
    c = high + rng.uniform(0.01, 0.04)
    o = bars[-1][3]
    bars.append((o, c + rng.uniform(0, 0.9) * (c - o), min(o, c) - sigma / 3, c, 3.0))
    sign = -1.0 if short else 1.0
    out = []
    for o, hi, lo, c, v in bars:
        if short:
            hi, lo = lo, hi
        out.append(tuple(prev_close * math.exp(sign * x) for x in (o, hi, lo, c)) + (v,))
    return out


def random_market(
    seed: int, n: int = 4, m: int = 300, plants: int = 3, gaps: bool = True
) -> MarketArrays:
    """Geometric random walks (prices in cents) with planted setups and, optionally, missing
    bars (late listings and gaps)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        sigma = rng.uniform(0.008, 0.035)
        close = rng.uniform(5, 150)
        base_volume = rng.uniform(1e4, 1e6)
        at = set(rng.integers(20, m, plants).tolist())
        row: list[tuple] = []
        while len(row) < m:
            if len(row) in at:
                bars = _plant(rng, close, bool(rng.random() < 0.5))
            else:
                r = rng.normal(0, sigma)
                o = close * math.exp(rng.normal(0, sigma / 3))
                c = close * math.exp(r)
                hi = max(o, c) * math.exp(abs(rng.normal(0, sigma / 2)))
                lo = min(o, c) * math.exp(-abs(rng.normal(0, sigma / 2)))
                bars = [(o, hi, lo, c, math.exp(rng.normal(0, 0.4)))]
            for o, hi, lo, c, v in bars:
                o, hi, lo, c = (max(0.01, round(x, 2)) for x in (o, hi, lo, c))
                row.append((o, max(hi, o, c), min(lo, o, c), c, round(base_volume * v)))
            close = row[-1][3]
        row = row[:m]
        if gaps and rng.random() < 0.5:
            first = int(rng.integers(0, m // 3))  # listed late
            row[:first] = [(np.nan,) * 5] * first
            for k in rng.integers(0, m, 2):  # missing sessions
                row[k] = (np.nan,) * 5
        rows.append(row)
    return _arrays(rows)


# --- comparing setups --------------------------------------------------------------------------


def assert_same_setups(a: Setups, b: Setups, features: bool = True) -> None:
    assert len(a) == len(b)
    for f in fields(Setups):
        if f.name == "features":
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert np.array_equal(x, y), f"{f.name}: {x} != {y}"
    if features:
        for name in FEATURE_NAMES:
            np.testing.assert_allclose(
                a.features[name],
                b.features[name],
                rtol=1e-9,
                atol=1e-12,
                equal_nan=True,
                err_msg=name,
            )


def subset(setups: Setups, keep: np.ndarray) -> Setups:
    return setups.take(np.flatnonzero(keep))


# --- golden setups -------------------------------------------------------------------------------

LEAD = [
    (20.1, 20.3, 19.7, 20.0, 2000),
    (20.0, 20.1, 19.5, 19.8, 2000),
    (19.8, 19.9, 19.3, 19.6, 2000),
    (19.6, 19.7, 19.1, 19.4, 2000),
    (19.4, 19.5, 18.9, 19.2, 2000),
]
RALLY = [
    (19.0, 19.4, 18.0, 19.0, 3000),  # 5: the swing low, 18.0
    (19.0, 20.0, 18.8, 19.8, 3000),
    (19.8, 20.8, 19.6, 20.6, 3000),
    (20.6, 21.6, 20.4, 21.4, 3000),
    (21.4, 22.0, 21.2, 21.8, 3000),
]  # 9: the swing high, 22.0
FLAT = (21.2, 21.6, 20.8, 21.2, 1000)
DIP = (21.2, 21.6, 20.5, 21.2, 1000)
BASE = [FLAT, FLAT, FLAT, DIP, FLAT, FLAT, FLAT, FLAT]  # 10..17, the base's low is 20.5 (bar 13)
BREAKOUT = (21.4, 22.6, 21.3, 22.4, 5000)  # 18: closes at 22.4 > 22.0, 0.846 of its range
AFTER = [
    (22.4, 23.0, 22.2, 22.8, 2000),
    (22.8, 23.2, 22.5, 23.0, 2000),
    (23.0, 23.1, 22.6, 22.7, 2000),
]
GOLDEN = LEAD + RALLY + BASE + [BREAKOUT] + AFTER

# By hand. True ranges of the rally + base (bars 5..17; previous closes inside the bars except
# bar 5: prev 19.2 -> 19.4 - 18.0, and bar 10: prev 21.8 -> 21.8 - 20.8):
#   1.4, 1.2, 1.2, 1.2, 0.8 | 1.0, 0.8, 0.8, 1.1, 0.8, 0.8, 0.8, 0.8  -> sum 12.7 over 13 bars.
ATR = 12.7 / 13
EXPECTED_LONG = {
    "ticker": 0,
    "session": 18,
    "side": 1,
    "rally_start": 5,
    "rally_end": 9,
    "consol_start": 10,
    "consol_end": 17,
    "rally_high": 22.0,
    "rally_low": 18.0,
    "move_height": 4.0,
    "consol_high": 21.6,
    "consol_low": 20.5,
    "entry": 22.4,
    "atr": ATR,
    "atr_window": 13,
    "stop": 22.4 - 2 * ATR,
    "stop_rule": "atr",
    "target_50": 24.4,
    "target_75": 25.4,
    "target_100": 26.4,
    "adjusted_entry": False,
    "booked_target": 24.4,
    "risk": 2 * ATR,
    "reward_risk": 2.0 / (2 * ATR),
}


def mirror(bars: list[tuple], pivot: float = 40.0) -> list[tuple]:
    """The short mirror: prices reflected about pivot (highs and lows swap), same volume."""
    return [(pivot - o, pivot - lo, pivot - hi, pivot - c, v) for o, hi, lo, c, v in bars]


EXPECTED_SHORT = dict(
    EXPECTED_LONG,
    side=-1,
    rally_high=22.0,
    rally_low=18.0,
    consol_high=40 - 20.5,
    consol_low=40 - 21.6,
    entry=17.6,
    stop=17.6 + 2 * ATR,
    target_50=15.6,
    target_75=14.6,
    target_100=13.6,
    booked_target=15.6,
)


def assert_setup(setups: Setups, expected: dict) -> None:
    assert len(setups) == 1, setups.to_frame()
    row = setups.to_frame().iloc[0]
    for key, value in expected.items():
        if key == "side":
            assert row["side"] == ("long" if value > 0 else "short")
        elif isinstance(value, float):
            assert row[key] == pytest.approx(value, rel=1e-12), key
        else:
            assert row[key] == value, key


def test_golden_long() -> None:
    arrays = _arrays([GOLDEN])
    setups = scan(arrays)
    assert_setup(setups, EXPECTED_LONG)
    assert_setup(reference_scan(arrays), EXPECTED_LONG)
    f = {k: v[0] for k, v in setups.features.items()}
    base_tr = (1.0 + 0.8 + 0.8 + 1.1 + 0.8 * 4) / 8
    assert f["consol_duration"] == 8 and f["rally_duration"] == 5
    assert f["consol_rally_duration_ratio"] == pytest.approx(8 / 5)
    assert f["rally_pct"] == pytest.approx(4 / 18)
    assert f["rally_intensity"] == pytest.approx(4 / 18 / 5)
    assert f["basic_tightness"] == pytest.approx((21.6 - 20.5) / (base_tr * math.sqrt(8)))
    assert f["consol_end_close_pct"] == pytest.approx((21.2 - 20.5) / 1.1)
    assert f["consol_bearish_ratio"] == 0  # base bars open == close
    assert f["momentum_second_half"] == pytest.approx((22.0 - 20.6) / 4)  # middle bar 7 closes 20.6
    assert f["fib_retracement_zone"] == 1  # retracement 1.5 / 4 = 0.375: past 0.236, short of 0.382
    assert f["breakout_day_atr_multiple"] == pytest.approx((22.6 - 21.2) / ATR)
    assert f["rally_avg_volume_to_breakout_ratio"] == pytest.approx(3000 / 5000)
    assert f["consol_avg_volume_to_breakout_ratio"] == pytest.approx(1000 / 5000)
    assert f["consol_volume_pct"] == pytest.approx(1000 / 2000 - 1)
    assert f["rally_volume_pct"] == pytest.approx(3000 / 2000 - 1)
    base_range = (0.8 * 7 + 1.1) / 8
    assert f["breakout_range_to_consol_avg_range_ratio"] == pytest.approx(1.3 / base_range)
    assert f["candles_close_above_entry"] == 0 and f["old_entry_touches"] == 0
    # 18 bars before the breakout; the stop 20.446 lies in bars 7 (19.6-20.8) and 8 (20.4-21.6)
    assert f["stop_touches_ratio"] == pytest.approx(2 / 18)
    assert f["entry_month"] == 3  # 2024-03-01 + 18 business days is in March
    assert np.isnan(f["stock_vs_qqq_rally_strength"])  # no index series given


def test_golden_short_is_the_mirror() -> None:
    arrays = _arrays([mirror(GOLDEN)])
    assert_setup(scan(arrays), EXPECTED_SHORT)
    assert_setup(reference_scan(arrays), EXPECTED_SHORT)
    long_f = scan(_arrays([GOLDEN])).features
    short_f = scan(arrays).features
    for name in (
        "basic_tightness",
        "rally_duration",
        "consol_end_close_pct",
        "momentum_second_half",
        "fib_retracement_zone",
        "breakout_day_atr_multiple",
        "consol_volume_pct",
    ):
        assert short_f[name][0] == pytest.approx(long_f[name][0]), name


def test_golden_adjusted_entry_when_the_rule_is_on() -> None:
    """Off by default; with the 0.618 candle reading a strong close books 2 x MH, a weak one 50%."""
    config = ScannerConfig(adjusted_entry_fib=0.618)
    strong = dict(
        EXPECTED_LONG,
        adjusted_entry=True,
        booked_target=22.4 + 2 * 4.0,
        reward_risk=8.0 / (2 * ATR),
    )
    assert_setup(scan(_arrays([GOLDEN]), config), strong)
    assert_setup(reference_scan(_arrays([GOLDEN]), config), strong)
    strong_short = dict(
        EXPECTED_SHORT, adjusted_entry=True, booked_target=17.6 - 8.0, reward_risk=8.0 / (2 * ATR)
    )
    assert_setup(scan(_arrays([mirror(GOLDEN)]), config), strong_short)
    weak = (21.4, 23.4, 21.3, 22.4, 5000)  # closes at 1.1 / 2.1 = 0.52 of its range
    assert_setup(scan(_arrays([LEAD + RALLY + BASE + [weak]]), config), EXPECTED_LONG)
    assert_setup(scan(_arrays([mirror(LEAD + RALLY + BASE + [weak])]), config), EXPECTED_SHORT)


def test_golden_stop_falls_back_to_the_consolidation_extreme() -> None:
    config = ScannerConfig(stop_atr_multiple=30.0)  # 22.4 - 30 x 0.977 < 0: no ATR stop
    expected = dict(
        EXPECTED_LONG, stop=20.5, stop_rule="consolidation", risk=1.9, reward_risk=2.0 / 1.9
    )
    assert_setup(scan(_arrays([GOLDEN]), config), expected)
    assert_setup(reference_scan(_arrays([GOLDEN]), config), expected)


def test_golden_atr_is_capped_to_the_last_bars() -> None:
    config = ScannerConfig(atr_max_bars=8)  # the base only: 1.0 + 0.8 x 2 + 1.1 + 0.8 x 4 = 6.9
    atr = 6.9 / 8
    expected = dict(
        EXPECTED_LONG,
        atr=atr,
        atr_window=8,
        stop=22.4 - 2 * atr,
        risk=2 * atr,
        reward_risk=2.0 / (2 * atr),
    )
    assert_setup(scan(_arrays([GOLDEN]), config), expected)


@pytest.mark.parametrize(
    "name, bars, config",
    [
        (
            "consolidation too short (7 < 1.5 x 5 bars)",
            LEAD + RALLY + BASE[:7] + [BREAKOUT] + AFTER,
            DEFAULT,
        ),
        (
            "base too loose (retraces 80% of the move, past 78.6%)",
            LEAD
            + RALLY
            + BASE[:3]
            + [(21.2, 21.6, 18.8, 21.2, 1000)]
            + BASE[4:]
            + [BREAKOUT]
            + AFTER,
            DEFAULT,
        ),
        (
            "base too loose for a stricter retracement rule (62.5% > 50%)",
            LEAD
            + RALLY
            + BASE[:3]
            + [(21.2, 21.6, 19.5, 21.2, 1000)]
            + BASE[4:]
            + [BREAKOUT]
            + AFTER,
            ScannerConfig(consol_max_retracement=0.5),
        ),
        (
            "base too wide for a tighter range rule",
            GOLDEN,
            ScannerConfig(consol_max_range_pct=0.05),
        ),
        (
            "only an intraday poke above the rally high",
            LEAD
            + RALLY
            + BASE
            + [
                (21.4, 22.6, 21.3, 21.9, 5000),
                (21.9, 22.0, 21.2, 21.4, 2000),
                (21.4, 21.7, 21.0, 21.3, 2000),
                (21.3, 21.6, 21.0, 21.2, 2000),
            ],
            DEFAULT,
        ),
        (
            "rally too weak (the pattern at a fifth of its scale: 0.8 / 19.6 = 4.1% < 5%)",
            [tuple(20 + (p - 20) * 0.2 for p in bar[:4]) + (bar[4],) for bar in GOLDEN],
            DEFAULT,
        ),
        (
            "rally too weak for a stricter threshold (22.2% < 25%)",
            GOLDEN,
            ScannerConfig(rally_min_pct=0.25),
        ),
        (
            "breakout on thin volume (900 < the base's 1000) when the volume rule is on",
            LEAD + RALLY + BASE + [BREAKOUT[:4] + (900,)] + AFTER,
            ScannerConfig(breakout_min_volume_ratio=1.0),
        ),
        (
            "breakout close not clear enough (22.4 < 22.0 x 1.025)",
            GOLDEN,
            ScannerConfig(breakout_min_close_pct=0.025),
        ),
        (
            "a missing bar inside the base",
            LEAD + RALLY + BASE[:4] + [(np.nan,) * 5] + BASE[5:] + [BREAKOUT],
            DEFAULT,
        ),
    ],
)
def test_near_misses_give_no_setup(name: str, bars: list, config: ScannerConfig) -> None:
    for rows in (bars, mirror(bars)):
        arrays = _arrays([rows])
        assert len(scan(arrays, config)) == 0, name
        assert len(reference_scan(arrays, config)) == 0, name


def test_a_setup_is_signalled_once() -> None:
    # after the breakout the stock keeps closing above the old rally high: no second signal
    more = [tuple(p + k * 0.1 for p in (22.7, 23.0, 22.5, 22.9)) + (6000,) for k in range(10)]
    setups = scan(_arrays([GOLDEN + more]))
    assert len(setups) == 1 and setups.session[0] == 18


# --- properties of every setup -----------------------------------------------------------------


def check_setup_properties(arrays: MarketArrays, setups: Setups, config: ScannerConfig) -> None:
    frame = setups.to_frame()
    assert not frame.duplicated(["ticker", "session", "side"]).any()
    f50, f75, f100 = config.target_fractions
    for row in frame.itertuples():
        d = 1 if row.side == "long" else -1
        i, t, l, h = row.ticker, row.session, row.rally_start, row.rally_end
        hi, lo, cl = arrays.high[i], arrays.low[i], arrays.close[i]
        rally_bars, consol_bars = h - l + 1, row.consol_end - row.consol_start + 1
        assert row.consol_start == h + 1 and row.consol_end == t - 1
        assert config.rally_min_bars <= rally_bars <= config.rally_max_bars
        assert config.consol_min_ratio * rally_bars <= consol_bars <= config.consol_max_bars
        first_read = l - config.swing_bars
        assert not np.isnan(np.r_[hi[first_read : t + 1], lo[first_read : t + 1]]).any()
        # the geometry is read off the bars
        assert row.entry == cl[t]
        assert (row.rally_high, row.rally_low) == ((hi[h], lo[l]) if d > 0 else (hi[l], lo[h]))
        assert row.move_height == pytest.approx(row.rally_high - row.rally_low, rel=1e-12)
        assert (row.consol_high, row.consol_low) == (hi[h + 1 : t].max(), lo[h + 1 : t].min())
        if d > 0:  # the base stays under the rally high; the breakout closes above it
            assert row.consol_high <= row.rally_high < row.entry
            assert row.stop < row.entry < row.target_50 < row.target_75 < row.target_100
        else:
            assert row.consol_low >= row.rally_low > row.entry
            assert row.stop > row.entry > row.target_50 > row.target_75 > row.target_100 > 0
        for f, target in ((f50, row.target_50), (f75, row.target_75), (f100, row.target_100)):
            assert target == pytest.approx(row.entry + d * f * row.move_height, rel=1e-12)
        # ATR over the last <= atr_max_bars bars of the rally + base
        assert row.atr_window == min(rally_bars + consol_bars, config.atr_max_bars)
        first = t - row.atr_window
        assert first >= l
        atr = np.mean([true_range(hi, lo, cl, k) for k in range(first, t)])
        assert row.atr == pytest.approx(atr, rel=1e-12)
        if row.stop_rule == "atr":
            stop = row.entry - d * config.stop_atr_multiple * row.atr
            assert row.stop == pytest.approx(stop, rel=1e-12)
        else:
            assert row.stop_rule == "consolidation"
            assert row.stop == (row.consol_low if d > 0 else row.consol_high)
            assert not (row.atr > 0 and row.entry - d * config.stop_atr_multiple * row.atr > 0)
        # booked target and R:R
        rng = hi[t] - lo[t]
        position = 1.0 if rng <= 0 else ((cl[t] - lo[t]) if d > 0 else (hi[t] - cl[t])) / rng
        assert row.adjusted_entry == (position >= config.adjusted_threshold)
        booked = row.entry + d * config.adjusted_target_fraction * row.move_height
        booked = booked if row.adjusted_entry else row.target_50
        assert row.booked_target == pytest.approx(booked, rel=1e-12)
        assert row.risk == pytest.approx(abs(row.entry - row.stop), rel=1e-12)
        reward_risk = abs(row.booked_target - row.entry) / row.risk
        assert row.reward_risk == pytest.approx(reward_risk, rel=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), config=st.sampled_from(CONFIGS))
def test_every_setup_has_consistent_geometry(seed: int, config: ScannerConfig) -> None:
    arrays = random_market(seed, n=8, m=400, plants=4)
    setups = scan(arrays, config)
    check_setup_properties(arrays, setups, config)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), config=st.sampled_from(CONFIGS))
def test_fast_scanner_equals_the_reference(seed: int, config: ScannerConfig) -> None:
    arrays = random_market(seed, n=3, m=260, plants=3)
    index = {"SPY": arrays.close[0] * 3, "QQQ": arrays.close[1] + 5, "XLK": arrays.close[2] * 0.5}
    etf = np.array(["XLK", "XLF", "XLK"])
    fast = scan(arrays, config, index_close=index, sector_etf_of_ticker=etf)
    reference = reference_scan(arrays, config, index_close=index, sector_etf_of_ticker=etf)
    assert_same_setups(fast, reference)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), config=st.sampled_from(CONFIGS), cut=st.floats(0.2, 1.0))
def test_no_look_ahead(seed: int, config: ScannerConfig, cut: float) -> None:
    arrays = random_market(seed, n=6, m=300, plants=4)
    full = scan(arrays, config)
    t = int(cut * (arrays.shape[1] - 1))
    truncated = MarketArrays(
        arrays.tickers, arrays.sessions[: t + 1], *(getattr(arrays, f)[:, : t + 1] for f in OHLCV)
    )
    assert_same_setups(scan(truncated, config), subset(full, full.session <= t))
    assert_same_setups(scan(arrays, config, end=t + 1), subset(full, full.session <= t))
    # scanning from a session on (live use) reads only a short history and finds the same setups
    assert_same_setups(scan(arrays, config, emit_from=t), subset(full, full.session >= t))
    assert_same_setups(scan_session(arrays, t, config), subset(full, full.session == t))


def test_tickers_with_many_setups_are_rescanned_with_room() -> None:
    arrays = random_market(3, n=6, m=600, plants=12, gaps=False)
    full = detect(arrays, LOOSE)
    assert np.bincount(full[:, 0]).max() > 2
    assert np.array_equal(detect(arrays, LOOSE, capacity=1), full)


# --- the synthetic market's planted setups ----------------------------------------------------


def test_planted_setups_are_found_with_their_geometry() -> None:
    """Recall of the planted setups over ~4 years of a 300-ticker synthetic market.

    A plant matches a setup of the same ticker, side and breakout session with the same rally
    start / end, base start / end, rally high / low, move height, base high / low and entry.
    """
    source = SyntheticSource(n_tickers=300, seed=5, origin=date(2019, 1, 2))
    sessions = source.market.sessions(date(2019, 1, 2), date(2022, 12, 30))
    arrays = MarketArrays.from_bars(source.daily_bars(sessions))
    index_bars = source.index_bars(sessions, ["SPY", "QQQ", "XLK", "XLF"])
    index = index_close_arrays(index_bars, arrays.sessions)
    reference = source.ticker_reference(sessions[-1]).set_index("ticker")
    etf = reference.loc[arrays.tickers, "sector_etf"]
    setups = scan(arrays, index_close=index, sector_etf_of_ticker=etf.to_numpy())
    found = setups.to_frame(arrays)
    planted = source.planted_setups(sessions[0], sessions[-1])
    assert len(planted) > 500
    merged = planted.merge(
        found,
        left_on=["ticker", "side", "breakout_session"],
        right_on=["ticker", "side", "session"],
        how="left",
        suffixes=("_plant", ""),
    )
    match = merged["entry"].notna()
    for col in ("rally_start", "rally_end", "consol_start", "consol_end"):
        match &= merged[col + "_plant"] == merged[col]
    for col in ("rally_high", "rally_low", "move_height", "consol_high", "consol_low", "entry"):
        match &= np.isclose(merged[col + "_plant"], merged[col], rtol=1e-12)
    recall = match.mean()
    assert recall >= 0.95, merged.loc[~match].head()
    # features are there for every setup, index-relative ones included
    assert found["stock_vs_qqq_rally_strength"].notna().all()
    assert found["entry_month"].between(1, 12).all()
    check_setup_properties(arrays, setups, DEFAULT)


# --- inputs and settings -----------------------------------------------------------------------


def test_market_arrays_from_a_bars_frame() -> None:
    arrays = _arrays([GOLDEN, mirror(GOLDEN)[:10]])
    frame = pd.DataFrame(
        [
            {"ticker": t, "session": s, "open": o, "high": h, "low": lo, "close": c, "volume": v}
            for i, t in enumerate(arrays.tickers)
            for j, s in enumerate(arrays.sessions)
            for o, h, lo, c, v in [tuple(getattr(arrays, f)[i, j] for f in OHLCV)]
            if not np.isnan(c)
        ]
    ).sample(frac=1.0, random_state=1)
    rebuilt = MarketArrays.from_bars(frame)
    assert list(rebuilt.tickers) == list(arrays.tickers)
    assert np.array_equal(rebuilt.sessions, arrays.sessions)
    np.testing.assert_array_equal(rebuilt.close, arrays.close)
    assert_same_setups(scan(rebuilt), scan(arrays))


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError):
        ScannerConfig(rally_min_bars=10, rally_max_bars=5)
    with pytest.raises(ValidationError):
        ScannerConfig(target_fractions=(0.5, 0.4, 1.0))
    with pytest.raises(ValidationError):
        ScannerConfig(not_a_setting=1)
    assert DEFAULT.consol_min_ratio == 1.5 and DEFAULT.atr_max_bars == 50
    assert DEFAULT.stop_atr_multiple == 2.0
    assert DEFAULT.target_fractions == (0.5, 0.75, 1.0)
    assert DEFAULT.adjusted_entry_fib is None and DEFAULT.adjusted_threshold == math.inf
    assert ScannerConfig(adjusted_entry_fib=0.618).adjusted_threshold == 0.618


def test_empty_market() -> None:
    arrays = _arrays([[(np.nan,) * 5] * 5])
    setups = scan(arrays)
    assert len(setups) == 0 and set(setups.features) == set(FEATURE_NAMES)
    assert len(setups.to_frame(arrays)) == 0

"""core.hourly against the real raw hourly files (bundled copies) and small synthetic frames.

What the real data shows: none of AAPL, AMZN, GOOG, NFLX, TSLA has a daily series in the data
set, and FB's is called META, so every real file is rejected as it stands. The split tests give
the normaliser a daily reference built from the raw closes and the published splits (TSLA 5:1
and AAPL 4:1 on 2020-08-31, TSLA 3:1 on 2022-08-25), with vendor-like noise; the FB test
reconciles against the real META daily series.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from breakout_assets.core.bars import HOURLY_COLUMNS
from breakout_assets.core.hourly import (
    CLOSE_TOLERANCE,
    HourlyDataError,
    _snap,
    normalise_hourly,
)

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
SPLIT_DAY = pd.Timestamp("2020-08-31")


@pytest.fixture(scope="module")
def stocks() -> pd.DataFrame:
    return pd.read_parquet(SAMPLE / "stocks.parquet")


def read_raw(ticker: str) -> pd.DataFrame:
    return pd.read_csv(SAMPLE / "hourly_raw" / f"{ticker}.csv")


def raw_closes(raw: pd.DataFrame) -> pd.Series:
    """Raw-price session closes: the last close of each day's 09:00-15:00 buckets."""
    ts = pd.to_datetime(raw["date"].str.slice(0, 19))
    regular = raw.assign(ts=ts).loc[ts.dt.hour <= 15].sort_values("ts")
    return regular.groupby(regular["ts"].dt.normalize())["data.close"].last()


def reference_daily(raw: pd.DataFrame, splits: dict[str, float], seed: int = 1) -> pd.DataFrame:
    """A split-adjusted daily close series as a vendor would publish it (0.2% noise)."""
    closes = raw_closes(raw)
    factor = pd.Series(1.0, index=closes.index)
    for day, ratio in splits.items():
        factor[closes.index < pd.Timestamp(day)] *= ratio
    noise = 1 + np.random.default_rng(seed).uniform(-0.002, 0.002, len(closes))
    return pd.DataFrame(
        {"ticker": raw["ticker"].iloc[0], "session": closes.index, "close": closes / factor * noise}
    )


def session_of(bars: pd.DataFrame) -> pd.Series:
    return bars["ts"].dt.tz_localize(None).dt.normalize()


def regular_closes(bars: pd.DataFrame) -> pd.Series:
    regular = bars.loc[~bars["is_extended_hours"]]
    return regular.groupby(session_of(regular))["close"].last()


# --- the real files --------------------------------------------------------------------------


def test_fb_is_rejected_because_the_daily_set_calls_it_meta(stocks: pd.DataFrame) -> None:
    assert "FB" not in set(stocks["ticker"]) and "META" in set(stocks["ticker"])
    with pytest.raises(HourlyDataError, match=r"FB: no daily series"):
        normalise_hourly(read_raw("FB"), stocks)


@pytest.mark.parametrize("ticker", ["AAPL", "AMZN", "GOOG", "NFLX", "TSLA"])
def test_other_real_files_have_no_daily_series(stocks: pd.DataFrame, ticker: str) -> None:
    with pytest.raises(HourlyDataError, match=rf"{ticker}: no daily series"):
        normalise_hourly(read_raw(ticker), stocks)


@pytest.fixture(scope="module")
def fb(stocks: pd.DataFrame) -> pd.DataFrame:
    meta = stocks.loc[stocks["ticker"] == "META"].assign(ticker="FB")
    return normalise_hourly(read_raw("FB"), meta)


def test_fb_reconciles_with_the_real_meta_daily_closes(fb: pd.DataFrame, stocks) -> None:
    meta = stocks.loc[stocks["ticker"] == "META"]
    daily = pd.Series(meta["close"].to_numpy(), index=pd.to_datetime(meta["date"]))
    closes = regular_closes(fb)
    rel = (closes / daily.reindex(closes.index) - 1).abs()
    assert len(closes) == 506  # every session of 2020-04-29 .. 2022-04-29 reconciled
    assert rel.max() < 0.005 < CLOSE_TOLERANCE
    raw = read_raw("FB")
    assert len(fb) == len(raw)  # no split, no duplicates, no bad rows
    assert fb["close"].sum() == pytest.approx(raw["data.close"].sum())


def test_output_contract_and_order(fb: pd.DataFrame) -> None:
    assert tuple(fb.columns) == HOURLY_COLUMNS
    assert str(fb["ts"].dt.tz) == "America/New_York"
    assert fb["ts"].is_monotonic_increasing and fb["ts"].is_unique
    assert fb["is_extended_hours"].dtype == bool


def test_new_york_wall_clock_is_kept_not_shifted(fb: pd.DataFrame) -> None:
    first = fb.groupby(session_of(fb))["ts"].min()
    assert (first.dt.strftime("%H:%M") == "09:00").all()
    summer, winter = first[pd.Timestamp("2020-04-29")], first[pd.Timestamp("2021-01-04")]
    assert summer.tz_convert("UTC").hour == 13 and winter.tz_convert("UTC").hour == 14


def test_post_close_prints_are_flagged_extended() -> None:
    raw = read_raw("AMZN")
    daily = reference_daily(raw, {})
    bars = normalise_hourly(raw, daily)
    ext = bars.loc[bars["is_extended_hours"], "ts"]
    assert (raw["data.is_extended_hours"] == False).all()  # noqa: E712 - the vendor flags none
    assert set(ext.dt.hour) == {13, 16}
    assert (ext[ext.dt.hour == 13].dt.strftime("%Y-%m-%d") == "2021-11-26").all()  # early close
    assert len(bars.loc[~bars["is_extended_hours"]].groupby(session_of(bars))) == 506


@pytest.mark.parametrize(
    ("ticker", "splits", "before", "after"),
    [
        ("TSLA", {"2020-08-31": 5}, 5, 1),
        ("TSLA", {"2020-08-31": 5, "2022-08-25": 3}, 15, 3),  # daily adjusted as of 2024
        ("AAPL", {"2020-08-31": 4}, 4, 1),
    ],
)
def test_splits_are_detected_and_adjusted(ticker, splits, before, after) -> None:
    raw = read_raw(ticker)
    bars = normalise_hourly(raw, reference_daily(raw, splits))
    chrono = raw.iloc[::-1].reset_index(drop=True)
    assert len(bars) == len(raw)
    pre = (session_of(bars) < SPLIT_DAY).to_numpy()
    factor = np.where(pre, before, after)
    np.testing.assert_allclose(bars["close"], chrono["data.close"] / factor)
    np.testing.assert_allclose(bars["volume"], chrono["data.volume"] * factor)
    # continuity: raw falls ~80% (TSLA) / ~75% (AAPL) overnight; adjusted it is an ordinary gap
    last_pre = bars.loc[pre & ~bars["is_extended_hours"], "close"].iloc[-1]
    first_post = bars.loc[~pre, "open"].iloc[0]
    assert abs(first_post / last_pre - 1) < 0.15
    raw_last_pre = raw_closes(raw).loc[: SPLIT_DAY - pd.Timedelta(days=1)].iloc[-1]
    assert chrono.loc[~pre, "data.open"].iloc[0] / raw_last_pre < 0.3


def test_regular_close_matches_the_daily_close_after_adjustment() -> None:
    raw = read_raw("TSLA")
    daily = reference_daily(raw, {"2020-08-31": 5}, seed=3)
    closes = regular_closes(normalise_hourly(raw, daily))
    rel = closes / daily.set_index("session")["close"].reindex(closes.index) - 1
    assert rel.abs().max() < CLOSE_TOLERANCE


def test_unrelated_daily_series_is_rejected(stocks: pd.DataFrame) -> None:
    meta_as_tsla = stocks.loc[stocks["ticker"] == "META"].assign(ticker="TSLA")
    with pytest.raises(HourlyDataError, match=r"TSLA: hourly and daily series cannot be"):
        normalise_hourly(read_raw("TSLA"), meta_as_tsla)


def test_one_bad_daily_close_drops_that_session_only(stocks: pd.DataFrame) -> None:
    meta = stocks.loc[stocks["ticker"] == "META"].assign(ticker="FB").reset_index(drop=True)
    bad_day = date(2021, 6, 15)
    meta.loc[meta["date"] == bad_day, "close"] *= 2  # looks like a 1:2 factor for one session
    bars = normalise_hourly(read_raw("FB"), meta)
    sessions = set(session_of(bars))
    assert pd.Timestamp(bad_day) not in sessions and len(sessions) == 505


def test_a_few_bad_rows_are_dropped_but_many_reject(stocks: pd.DataFrame) -> None:
    meta = stocks.loc[stocks["ticker"] == "META"].assign(ticker="FB")
    raw = read_raw("FB")
    raw.loc[10, "data.low"] = -1.0
    assert len(normalise_hourly(raw, meta)) == len(raw) - 1
    raw.loc[:100, "data.high"] = 1.0  # high below open/close on 101 rows (2.8%)
    with pytest.raises(HourlyDataError, match=r"FB: .*high/low not bounding open/close"):
        normalise_hourly(raw, meta)


def test_true_utc_timestamps_are_rejected(stocks: pd.DataFrame) -> None:
    meta = stocks.loc[stocks["ticker"] == "META"].assign(ticker="FB")
    raw = read_raw("FB")
    utc = pd.to_datetime(raw["date"]).dt.tz_convert(None) + pd.Timedelta(hours=4)
    raw["date"] = utc.dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with pytest.raises(HourlyDataError, match="not New York wall clock"):
        normalise_hourly(raw, meta)


# --- synthetic frames ------------------------------------------------------------------------


def synthetic_raw() -> pd.DataFrame:
    """Two sessions newest first, with an exact duplicate and a partial duplicate bar."""
    rows = [
        ("2021-03-02T10:00:00.000Z", 101.0, 102.0, 100.5, 101.5, 900),
        ("2021-03-02T09:00:00.000Z", 100.0, 101.0, 99.5, 100.8, 1000),
        ("2021-03-02T09:00:00.000Z", 100.0, 101.0, 99.5, 100.8, 1000),  # exact duplicate
        ("2021-03-01T10:00:00.000Z", 99.0, 99.8, 98.5, 99.6, 500),
        ("2021-03-01T10:00:00.000Z", 99.0, 99.5, 98.9, 99.2, 120),  # partial, published early
        ("2021-03-01T09:00:00.000Z", 98.0, 99.2, 97.9, 99.0, 800),
    ]
    frame = pd.DataFrame(
        rows, columns=["date", "data.open", "data.high", "data.low", "data.close", "data.volume"]
    )
    frame.insert(1, "ticker", "XYZ")
    frame["data.is_extended_hours"] = False
    return frame.reset_index()


def synthetic_daily(closes: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"ticker": "XYZ", "session": pd.to_datetime(list(closes)), "close": list(closes.values())}
    )


def test_reverse_order_and_duplicates() -> None:
    daily = synthetic_daily({"2021-03-01": 99.6, "2021-03-02": 101.5})
    bars = normalise_hourly(synthetic_raw(), daily)
    assert list(bars["ts"].dt.strftime("%m-%d %H:%M")) == [
        "03-01 09:00",
        "03-01 10:00",
        "03-02 09:00",
        "03-02 10:00",
    ]
    assert bars.loc[1, "volume"] == 500 and bars.loc[1, "close"] == 99.6  # the complete bar
    assert bars["ticker"].tolist() == ["XYZ"] * 4


def test_synthetic_reverse_split() -> None:
    """Daily adjusted for a later 1:10 reverse split: hourly prices are multiplied by 10."""
    daily = synthetic_daily({"2021-03-01": 996.0, "2021-03-02": 1015.0})
    bars = normalise_hourly(synthetic_raw(), daily)
    assert bars["close"].tolist() == pytest.approx([990.0, 996.0, 1008.0, 1015.0])
    assert bars["volume"].tolist() == pytest.approx([80.0, 50.0, 100.0, 90.0])


def test_missing_columns_and_mixed_tickers_are_rejected() -> None:
    daily = synthetic_daily({"2021-03-01": 99.6})
    with pytest.raises(HourlyDataError, match=r"lacks columns \['data.volume'\]"):
        normalise_hourly(synthetic_raw().drop(columns="data.volume"), daily)
    mixed = synthetic_raw()
    mixed.loc[0, "ticker"] = "ABC"
    with pytest.raises(HourlyDataError, match="one ticker"):
        normalise_hourly(mixed, daily)


def test_empty_raw_gives_empty_contract_frame() -> None:
    bars = normalise_hourly(synthetic_raw().iloc[:0], synthetic_daily({}))
    assert tuple(bars.columns) == HOURLY_COLUMNS and bars.empty


@pytest.mark.parametrize(
    ("ratio", "factor"),
    [
        (1.0, 1.0),
        (1.004, 1.0),
        (2.01, 2.0),
        (3, 3),
        (4, 4),
        (5, 5),
        (10.05, 10),
        (20, 20),
        (15, 15),
        (0.5, 0.5),
        (0.1002, 0.1),
        (1.5, 1.5),
        (1.25, 1.25),
    ],
)
def test_split_ratios_snap(ratio: float, factor: float) -> None:
    assert _snap(ratio) == pytest.approx(factor)


@pytest.mark.parametrize("ratio", [1.1, 2.7, 7.4, 0.37, 0.0, float("nan")])
def test_other_ratios_do_not_snap(ratio: float) -> None:
    assert np.isnan(_snap(ratio))

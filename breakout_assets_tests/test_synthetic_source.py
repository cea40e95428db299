"""The synthetic source: deterministic, well-formed bars, exact planted setups, consistent hours."""

from __future__ import annotations

from datetime import date

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakout_assets.core.bars import BAR_COLUMNS, HOURLY_COLUMNS, REFERENCE_COLUMNS
from breakout_assets.core.sectors import sector_etf
from breakout_assets.resources.market_data.base import MarketDataError, MissingDataError
from breakout_assets.resources.market_data.synthetic import SyntheticSource
from breakout_assets.simulation import INDEX_TICKERS, PLANT_COLUMNS, SECTORS, SyntheticMarket

ORIGIN = date(2015, 1, 2)
SEED = 11
N_TICKERS = 300
START, END = date(2015, 1, 1), date(2016, 8, 31)
KEY = ["session", "ticker"]


@pytest.fixture(scope="module")
def source() -> SyntheticSource:
    return SyntheticSource(n_tickers=N_TICKERS, seed=SEED, origin=ORIGIN)


@pytest.fixture(scope="module")
def sessions(source: SyntheticSource) -> pd.DatetimeIndex:
    return source.market.sessions(START, END)


@pytest.fixture(scope="module")
def bars(source: SyntheticSource, sessions: pd.DatetimeIndex) -> pd.DataFrame:
    return source.daily_bars(sessions)


@pytest.fixture(scope="module")
def planted(source: SyntheticSource) -> pd.DataFrame:
    return source.planted_setups(START, END)


def _assert_ohlc(frame: pd.DataFrame) -> None:
    prices = frame[["open", "high", "low", "close"]]
    assert prices.notna().all().all()
    assert (prices > 0).all().all()
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame["volume"] >= 0).all()
    assert (frame["volume"] == np.round(frame["volume"])).all()
    assert np.allclose(prices * 100, np.round(prices * 100), rtol=0, atol=1e-6)  # cents


# --- daily bars ------------------------------------------------------------------------------


def test_daily_bars_follow_the_contract(bars: pd.DataFrame) -> None:
    assert tuple(bars.columns) == BAR_COLUMNS
    assert pd.api.types.is_datetime64_dtype(bars["session"])
    assert (bars["session"] == bars["session"].dt.normalize()).all()
    assert bars["volume"].dtype == "float64"
    assert not bars.duplicated(KEY).any()
    assert bars["ticker"].str.fullmatch(r"SYN\d{5}").all()


def test_sessions_are_exactly_the_nyse_sessions(
    source: SyntheticSource, bars: pd.DataFrame
) -> None:
    expected = xcals.get_calendar("XNYS").sessions_in_range(START, END)
    assert source.market.sessions(START, END).equals(expected)
    assert pd.DatetimeIndex(bars["session"].unique()).equals(expected)
    assert (bars.groupby("session").size() == N_TICKERS).all()


def test_non_sessions_are_missing_data(source: SyntheticSource) -> None:
    for day in (date(2015, 7, 4), date(2015, 12, 25), date(2016, 1, 2), date(2014, 12, 31)):
        with pytest.raises(MissingDataError, match=str(day)):
            source.daily_bars([day])


def test_ohlc_invariants_over_hundreds_of_tickers_and_sessions(bars: pd.DataFrame) -> None:
    _assert_ohlc(bars)
    assert (bars["volume"] >= 100).all()


def test_bars_are_identical_however_they_are_fetched(
    source: SyntheticSource, sessions: pd.DatetimeIndex, bars: pd.DataFrame
) -> None:
    whole = bars.set_index(KEY)
    picked = [sessions[0], sessions[17], sessions[18], sessions[200], sessions[-1]]
    fresh = SyntheticSource(n_tickers=N_TICKERS, seed=SEED, origin=ORIGIN)
    for day in picked:  # one session at a time, from a fresh source (late sessions first)
        for src in (fresh, source):
            pd.testing.assert_frame_equal(src.daily_bars([day]).set_index(KEY), whole.loc[[day]])
    chunks = list(fresh.iter_daily_bars(list(reversed(sessions)), chunk_sessions=37))
    assert [len(c) for c in chunks[:-1]] == [37 * N_TICKERS] * (len(chunks) - 1)
    pd.testing.assert_frame_equal(pd.concat(chunks).set_index(KEY), whole)
    scattered = source.daily_bars(picked).set_index(KEY)  # a non-contiguous list
    pd.testing.assert_frame_equal(scattered, whole.loc[picked])


def test_a_tickers_path_does_not_depend_on_the_universe_size(bars: pd.DataFrame) -> None:
    small = SyntheticSource(n_tickers=40, seed=SEED, origin=ORIGIN)
    mine = small.daily_bars(bars["session"].unique()[::50]).set_index(KEY)
    pd.testing.assert_frame_equal(mine, bars.set_index(KEY).loc[mine.index])


def test_another_seed_is_another_market(bars: pd.DataFrame, sessions: pd.DatetimeIndex) -> None:
    other = SyntheticSource(n_tickers=N_TICKERS, seed=SEED + 1, origin=ORIGIN)
    closes = other.daily_bars(sessions[:5])["close"]
    assert not np.allclose(closes, bars["close"][: len(closes)])


def test_bars_look_like_a_market(bars: pd.DataFrame) -> None:
    wide = bars.pivot(index="session", columns="ticker")
    ret = np.log(wide["close"]).diff().iloc[1:]
    gap = np.log(wide["open"] / wide["close"].shift()).iloc[1:]
    assert (gap.abs() > 1e-9).to_numpy().mean() > 0.8  # opens are not the previous close
    assert (gap.abs() > 0.05).to_numpy().sum() > 50  # and some gaps are large
    assert ret.corrwith(ret.mean(axis=1)).median() > 0.2  # a common market factor
    moves = ret.abs()
    assert np.nanmedian([moves[t].autocorr() for t in moves.columns]) > 0.03  # calm, wild spells
    log_volume = np.log(wide["volume"].iloc[1:])
    assert np.median([moves[t].corr(log_volume[t]) for t in moves.columns]) > 0.2
    first = wide["close"].iloc[0]
    assert first.max() / first.min() > 20  # each ticker its own price level


# --- planted setups --------------------------------------------------------------------------


def test_planted_setups_are_frequent_and_on_both_sides(
    planted: pd.DataFrame, sessions: pd.DatetimeIndex
) -> None:
    assert tuple(planted.columns) == PLANT_COLUMNS
    assert set(planted["side"]) == {"long", "short"}
    per_ticker_year = len(planted) / N_TICKERS / (len(sessions) / 252)
    assert 0.4 < per_ticker_year < 1.0  # roughly one per ticker every one to two years
    assert planted["breakout_session"].between(pd.Timestamp(START), pd.Timestamp(END)).all()
    for _, mine in planted.sort_values("rally_start").groupby("ticker"):  # never overlapping
        starts, ends = mine["rally_start"].to_numpy(), mine["breakout_session"].to_numpy()
        assert (starts[1:] > ends[:-1]).all()


def test_planted_geometry_matches_the_bars(planted: pd.DataFrame, bars: pd.DataFrame) -> None:
    by_ticker = {t: g.set_index("session") for t, g in bars.groupby("ticker")}
    for p in planted.itertuples():
        b = by_ticker[p.ticker]
        rally, consol = b.loc[p.rally_start : p.rally_end], b.loc[p.consol_start : p.consol_end]
        breakout = b.loc[p.breakout_session]
        assert b.index.get_loc(p.consol_start) == b.index.get_loc(p.rally_end) + 1
        assert b.index.get_loc(p.breakout_session) == b.index.get_loc(p.consol_end) + 1
        assert 5 <= len(rally) <= 15 and len(consol) >= 1.5 * len(rally)

        long = p.side == "long"
        swing_low, swing_high = (p.rally_start, p.rally_end)[:: 1 if long else -1]
        assert p.rally_low == rally["low"].min() == b.at[swing_low, "low"]
        assert p.rally_high == rally["high"].max() == b.at[swing_high, "high"]
        assert p.move_height == p.rally_high - p.rally_low
        assert np.log(1.14) < np.log(p.rally_high / p.rally_low) < np.log(1.41)
        assert (rally["close"].iloc[-1] > rally["close"].iloc[0]) == long

        assert p.consol_high == consol["high"].max() and p.consol_low == consol["low"].min()
        assert p.rally_low < p.consol_low and p.consol_high < p.rally_high  # inside the move
        assert p.consol_high - p.consol_low < 0.5 * p.move_height  # a tight base
        assert consol["volume"].max() < breakout["volume"]
        assert consol["volume"].mean() < rally["volume"].mean()

        breakout_bar = (breakout["close"], breakout["open"], breakout["high"], breakout["low"])
        assert (p.entry, p.breakout_open, p.breakout_high, p.breakout_low) == breakout_bar
        if long:
            assert p.entry > p.rally_high > p.consol_high
            assert (p.entry - p.consol_high) / p.entry > 0.005  # clearly through the base
        else:
            assert p.entry < p.rally_low < p.consol_low
            assert (p.consol_low - p.entry) / p.entry > 0.005


def test_planted_setups_do_not_depend_on_the_range_asked(
    source: SyntheticSource, planted: pd.DataFrame
) -> None:
    part = source.planted_setups(date(2015, 9, 1), date(2015, 12, 31))
    inside = planted[planted["breakout_session"].between("2015-09-01", "2015-12-31")]
    pd.testing.assert_frame_equal(part, inside.reset_index(drop=True))
    assert source.planted_setups(date(2014, 1, 1), date(2014, 12, 31)).empty


# --- index series, reference, hourly ---------------------------------------------------------


def test_index_series_for_every_session(
    source: SyntheticSource, sessions: pd.DatetimeIndex, bars: pd.DataFrame
) -> None:
    index = source.index_bars(sessions, INDEX_TICKERS)
    assert tuple(index.columns) == BAR_COLUMNS
    assert len(index) == len(sessions) * len(INDEX_TICKERS)
    for _, series in index.groupby("ticker"):
        assert pd.DatetimeIndex(series["session"]).equals(sessions)
    _assert_ohlc(index)
    vix = index[index["ticker"] == "VIX"]
    assert (vix["volume"] == 0).all() and vix["close"].between(9, 85).all()
    assert (index[index["ticker"] != "VIX"]["volume"] > 0).all()
    closes = np.log(index.pivot(index="session", columns="ticker", values="close")).diff()
    stocks = np.log(bars.pivot(index="session", columns="ticker", values="close")).diff()
    assert closes["SPY"].corr(stocks.mean(axis=1)) > 0.7
    assert closes["SPY"].corr(closes["VIX"]) < -0.3  # fear rises when the market falls
    assert source.index_bars(sessions[:3], ["SPY", "VIX"])["ticker"].tolist() == ["SPY", "VIX"] * 3
    with pytest.raises(MarketDataError, match="XLB"):
        source.index_bars(sessions[:3], ["SPY", "XLB"])


def test_ticker_reference(source: SyntheticSource, bars: pd.DataFrame) -> None:
    reference = source.ticker_reference(date(2016, 3, 6))  # a Sunday: caps at Friday's close
    assert tuple(reference.columns) == REFERENCE_COLUMNS
    assert reference["ticker"].is_unique and len(reference) == N_TICKERS
    assert set(reference["sector"]) <= set(SECTORS) and reference["sector"].nunique() > 8
    expected_etf = [sector_etf(s, INDEX_TICKERS) for s in reference["sector"]]
    assert (reference["sector_etf"] == expected_etf).all()
    friday = bars[bars["session"] == "2016-03-04"].set_index("ticker")["close"]
    caps = reference.set_index("ticker")
    assert np.allclose(caps["market_cap"], caps["shares_outstanding"] * friday)
    assert caps["market_cap"].max() / caps["market_cap"].min() > 100


def test_hourly_bars_add_up_to_the_daily_bars(source: SyntheticSource, bars: pd.DataFrame) -> None:
    start, end = date(2015, 11, 20), date(2015, 12, 31)  # with two early closes
    for ticker in ("SYN00001", "SYN00150", "SYN00300"):
        hourly = source.hourly_bars(ticker, start, end)
        assert tuple(hourly.columns) == HOURLY_COLUMNS
        assert str(hourly["ts"].dt.tz) == "America/New_York"
        assert not hourly["is_extended_hours"].any()
        _assert_ohlc(hourly)
        day = hourly.groupby(hourly["ts"].dt.tz_localize(None).dt.normalize())
        rebuilt = pd.DataFrame(
            {
                "open": day["open"].first(),
                "high": day["high"].max(),
                "low": day["low"].min(),
                "close": day["close"].last(),
                "volume": day["volume"].sum(),
            }
        )
        daily = bars[(bars["ticker"] == ticker) & bars["session"].between(str(start), str(end))]
        expected = daily.set_index("session")[rebuilt.columns]
        pd.testing.assert_frame_equal(rebuilt, expected, check_names=False)
        counts = day.size()
        assert set(counts) == {7, 4}
        assert counts.loc["2015-11-27"] == counts.loc["2015-12-24"] == 4
        starts = set(hourly["ts"].dt.strftime("%H:%M"))
        assert starts == {"09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30"}
    part = source.hourly_bars("SYN00150", date(2015, 12, 1), date(2015, 12, 3))
    whole = source.hourly_bars("SYN00150", start, end)
    same = whole[whole["ts"].between(part["ts"].min(), part["ts"].max())]
    pd.testing.assert_frame_equal(part, same.reset_index(drop=True))
    with pytest.raises(MarketDataError, match="SYN99999"):
        source.hourly_bars("SYN99999", start, end)


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_tickers=st.integers(1, 30),
    first=st.integers(0, 900),
    length=st.integers(1, 60),
)
def test_bars_are_well_formed_for_any_market_and_window(
    seed: int, n_tickers: int, first: int, length: int
) -> None:
    market = SyntheticMarket(n_tickers, seed, ORIGIN)
    days = market.sessions(ORIGIN, date(2030, 1, 1))[first : first + length]
    frame = market.daily_bars(days)
    assert len(frame) == n_tickers * len(days)
    _assert_ohlc(frame)
    _assert_ohlc(market.index_bars(days))
    for p in market.planted_setups(days[0], days[-1]).itertuples():
        assert p.entry > p.consol_high if p.side == "long" else p.entry < p.consol_low

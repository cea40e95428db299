"""FilesSource over the bundled sample (and small broken copies of it in tmp_path)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from breakout_assets.core.bars import BAR_COLUMNS, HOURLY_COLUMNS, REFERENCE_COLUMNS
from breakout_assets.resources.market_data.base import MarketDataError, MissingDataError
from breakout_assets.resources.market_data.files import FilesSource

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
FIRST, LAST = date(2018, 1, 2), date(2024, 3, 8)


@pytest.fixture(scope="module")
def source() -> FilesSource:
    return FilesSource(SAMPLE)


@pytest.fixture(scope="module")
def sessions(source: FilesSource) -> list[date]:
    return [s.date() for s in source.stocks.frame["session"].drop_duplicates()]


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's bar files as CSV, next to a copy of reference.csv."""
    target = tmp_path_factory.mktemp("csv_sample")
    for stem in ("stocks", "indices"):
        pd.read_parquet(SAMPLE / f"{stem}.parquet").to_csv(target / f"{stem}.csv", index=False)
    shutil.copy(SAMPLE / "reference.csv", target / "reference.csv")
    return target


def write_dir(path: Path, stocks: str, indices: str | None = None) -> Path:
    """A files directory from CSV text (indices and reference copied from the sample)."""
    (path / "stocks.csv").write_text(stocks)
    if indices is None:
        pd.read_parquet(SAMPLE / "indices.parquet").to_csv(path / "indices.csv", index=False)
    else:
        (path / "indices.csv").write_text(indices)
    shutil.copy(SAMPLE / "reference.csv", path / "reference.csv")
    return path


# --- daily bars --------------------------------------------------------------------------------


def test_sample_shape(source: FilesSource, sessions: list[date]) -> None:
    assert len(sessions) == 1556 and (sessions[0], sessions[-1]) == (FIRST, LAST)
    frame = source.stocks.frame
    assert frame["ticker"].nunique() == 150 and len(frame) == 150 * 1556
    assert "META" in set(frame["ticker"])


def test_daily_bars_follow_the_contract(source: FilesSource) -> None:
    bars = source.daily_bars([date(2020, 8, 31), date(2020, 9, 1)])
    assert tuple(bars.columns) == BAR_COLUMNS and len(bars) == 300
    assert bars["ticker"].dtype == "string" and bars["volume"].dtype == "float64"
    assert set(bars["session"]) == {pd.Timestamp("2020-08-31"), pd.Timestamp("2020-09-01")}
    meta = bars.loc[(bars["ticker"] == "META") & (bars["session"] == "2020-08-31")]
    assert meta["close"].item() == pytest.approx(293.2, abs=0.01)


def test_iter_daily_bars_chunks(source: FilesSource, sessions: list[date]) -> None:
    chunks = list(source.iter_daily_bars(sessions[:25], chunk_sessions=10))
    assert [c["session"].nunique() for c in chunks] == [10, 10, 5]
    pd.testing.assert_frame_equal(
        pd.concat(chunks, ignore_index=True), source.daily_bars(sessions[:25])
    )
    with pytest.raises(ValueError, match="chunk_sessions"):
        next(source.iter_daily_bars(sessions, 0))


def test_empty_request_gives_empty_bars(source: FilesSource) -> None:
    assert source.daily_bars([]).empty and tuple(source.daily_bars([]).columns) == BAR_COLUMNS


@pytest.mark.parametrize("missing", [date(2024, 3, 11), date(2018, 1, 6), date(2017, 12, 29)])
def test_missing_session_is_an_error_naming_it_and_the_range(source, missing: date) -> None:
    with pytest.raises(MissingDataError, match=rf"{missing}.*covers 2018-01-02 \.\. 2024-03-08"):
        source.daily_bars([date(2020, 1, 2), missing])


def test_csv_and_parquet_are_equivalent(source: FilesSource, csv_dir: Path) -> None:
    from_csv = FilesSource(csv_dir)
    some = [date(2018, 1, 2), date(2021, 6, 15), date(2024, 3, 8)]
    pd.testing.assert_frame_equal(source.daily_bars(some), from_csv.daily_bars(some))
    pd.testing.assert_frame_equal(
        source.index_bars(some, ["SPY", "VIX"]), from_csv.index_bars(some, ["SPY", "VIX"])
    )
    pd.testing.assert_frame_equal(
        source.ticker_reference(date(2022, 1, 3)), from_csv.ticker_reference(date(2022, 1, 3))
    )


def test_parquet_wins_over_csv(tmp_path: Path) -> None:
    shutil.copy(SAMPLE / "stocks.parquet", tmp_path / "stocks.parquet")
    (tmp_path / "stocks.csv").write_text("ticker,date,open,high,low,close,volume\n")
    assert FilesSource(tmp_path).stocks.path.name == "stocks.parquet"


# --- indices -----------------------------------------------------------------------------------


def test_index_bars(source: FilesSource) -> None:
    bars = source.index_bars([date(2017, 1, 3), date(2024, 3, 8)], ["SPY", "XLK", "VIX"])
    assert tuple(bars.columns) == BAR_COLUMNS and len(bars) == 6
    assert set(bars["ticker"]) == {"SPY", "XLK", "VIX"}
    assert (bars.loc[bars["ticker"] == "VIX", "volume"] == 0).all()


def test_unknown_index_ticker_is_a_clear_error(source: FilesSource) -> None:
    with pytest.raises(MarketDataError, match=r"\['XLB'\] are not in .*indices.parquet") as err:
        source.index_bars([date(2020, 1, 2)], ["SPY", "XLB"])
    assert not isinstance(err.value, MissingDataError)


def test_index_session_without_rows(source: FilesSource) -> None:
    with pytest.raises(MissingDataError, match=r"2016-12-30.*covers 2017-01-03"):
        source.index_bars([date(2016, 12, 30)], ["SPY"])


# --- malformed input ---------------------------------------------------------------------------


def test_missing_files_are_clear_errors(tmp_path: Path) -> None:
    src = FilesSource(tmp_path / "nowhere")  # lazy: constructing does not read
    with pytest.raises(MarketDataError, match="no stocks.parquet or stocks.csv"):
        src.daily_bars([FIRST])
    write_dir(tmp_path, "ticker,date,open,high,low,close,volume\nAAA,2020-01-02,1,1,1,1,1\n")
    (tmp_path / "reference.csv").unlink()
    with pytest.raises(MarketDataError, match=r"no reference file: .*reference.csv does not exist"):
        FilesSource(tmp_path).ticker_reference(LAST)


def test_file_missing_a_column_is_named(tmp_path: Path) -> None:
    stocks = "ticker,date,open,high,low,close\nAAA,2020-01-02,1,1,1,1\n"
    src = FilesSource(write_dir(tmp_path, stocks))
    with pytest.raises(MarketDataError, match=r"stocks.csv lacks columns \['volume'\]"):
        src.daily_bars([date(2020, 1, 2)])


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("stocks.parquet", b"not a parquet file"),
        ("stocks.csv", b"ticker,date,open\nA,2020-01-02,1,2,3\n"),  # a ragged row
    ],
)
def test_unreadable_file_is_named(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(MarketDataError, match=rf"cannot read .*{name}"):
        FilesSource(tmp_path).daily_bars([date(2020, 1, 2)])


def test_malformed_values_become_nan_and_the_row_is_kept(tmp_path: Path) -> None:
    stocks = (
        "ticker,date,open,high,low,close,volume\n"
        "AAA,2020-01-02,10,11,9,10.5,1000\n"
        "BBB,2020-01-02,20,21,19,abc,2000\n"
        "NA,2020-01-02,5,6,4,5.5,\n"
        "AAA,2020-01-03,10.5,11,10,10.8,1200\n"
        "BBB,2020-01-03,20,21,19,20.5,2100\n"
    )
    bars = FilesSource(write_dir(tmp_path, stocks)).daily_bars([date(2020, 1, 2)])
    assert list(bars["ticker"]) == ["AAA", "BBB", "NA"]  # "NA" is a ticker, not a null
    assert pd.isna(bars.loc[1, "close"]) and bars.loc[1, "open"] == 20
    assert pd.isna(bars.loc[2, "volume"])


def test_rows_of_no_session_come_with_the_run_that_answers_for_them(tmp_path: Path) -> None:
    """Weekend/holiday rows come with the next session, undated rows with the first chunk of
    every run: the quality layer quarantines them instead of their vanishing unseen."""
    stocks = (
        "ticker,date,open,high,low,close,volume\n"
        "AAA,2024-02-16,10,11,9,10.5,1000\n"
        "AAA,2024-02-17,10,11,9,10.5,1000\n"  # Saturday
        "AAA,2024-02-19,10,11,9,10.5,1000\n"  # Presidents' Day
        "AAA,2024-02-20,10,11,9,10.5,1000\n"
        "AAA,2024-02-21,10,11,9,10.5,1000\n"
        "AAA,someday,10,11,9,10.5,1000\n"
    )
    source = FilesSource(write_dir(tmp_path, stocks))
    first, second = source.iter_daily_bars([date(2024, 2, 20), date(2024, 2, 21)], 1)
    assert [None if pd.isna(s) else f"{s:%Y-%m-%d}" for s in first["session"]] == [
        "2024-02-17",
        "2024-02-19",
        "2024-02-20",
        None,
    ]
    assert list(second["session"].dt.strftime("%Y-%m-%d")) == ["2024-02-21"]
    friday = source.daily_bars([date(2024, 2, 16)])  # the weekend after it is not its own
    assert list(friday["session"].dt.strftime("%Y-%m-%d")) == ["2024-02-16"]


# --- reference ---------------------------------------------------------------------------------


def test_reference_rows_and_sector_etfs(source: FilesSource) -> None:
    ref = source.ticker_reference(LAST).set_index("ticker")
    assert tuple(ref.reset_index().columns) == REFERENCE_COLUMNS and len(ref) == 150
    by_sector = ref.groupby("sector")["sector_etf"].unique().map(list).to_dict()
    for sector in ("Basic Materials", "Real Estate", "Telecommunications"):
        assert by_sector[sector] == ["SPY"]
    assert by_sector["Technology"] == ["XLK"] and by_sector["Finance"] == ["XLF"]
    assert ref.loc["KAMN", "sector_etf"] == "SPY" and pd.isna(ref.loc["KAMN", "market_cap"])
    assert not ref.index.isin(["SPY", "XLK", "VIX"]).any()


def test_shares_outstanding_uses_the_snapshot_close(source: FilesSource) -> None:
    acn = source.ticker_reference(date(2019, 6, 3)).set_index("ticker").loc["ACN"]
    last_close = source.daily_bars([LAST]).set_index("ticker").loc["ACN", "close"]
    assert acn["sector"] == "Consumer Discretionary" and acn["sector_etf"] == "XLY"
    assert acn["shares_outstanding"] == pytest.approx(acn["market_cap"] / last_close)
    assert 5e8 < acn["shares_outstanding"] < 7e8


def test_reference_only_knows_tickers_that_have_traded(tmp_path: Path) -> None:
    stocks = (
        "ticker,date,open,high,low,close,volume\n"
        "ACN,2020-01-02,10,11,9,10,1\nACN,2020-01-03,10,11,9,10,1\nAMD,2020-01-03,5,6,4,5,1\n"
    )
    src = FilesSource(write_dir(tmp_path, stocks))
    assert list(src.ticker_reference(date(2020, 1, 2))["ticker"]) == ["ACN"]
    ref = src.ticker_reference(date(2020, 1, 3)).set_index("ticker")
    assert list(ref.index) == ["ACN", "AMD"]
    assert ref.loc["AMD", "shares_outstanding"] == pytest.approx(ref.loc["AMD", "market_cap"] / 5)


# --- hourly ------------------------------------------------------------------------------------


def test_hourly_without_a_daily_series_is_rejected(source: FilesSource) -> None:
    """The real data: FB's daily series is called META; TSLA has none at all."""
    for ticker in ("FB", "TSLA"):
        with pytest.raises(MarketDataError, match=rf"{ticker}.csv: {ticker}: no daily series"):
            source.hourly_bars(ticker, date(2020, 5, 1), date(2020, 5, 29))


def test_hourly_with_an_alias_reconciles(source: FilesSource) -> None:
    aliased = FilesSource(SAMPLE, hourly_aliases={"FB": "META"})
    bars = aliased.hourly_bars("FB", date(2021, 3, 1), date(2021, 3, 31))
    assert tuple(bars.columns) == HOURLY_COLUMNS and set(bars["ticker"]) == {"FB"}
    days = bars["ts"].dt.strftime("%Y-%m-%d")
    assert days.min() == "2021-03-01" and days.max() == "2021-03-31" and days.nunique() == 23
    assert bars["ts"].is_monotonic_increasing
    assert aliased.hourly_bars("FB", date(2019, 1, 1), date(2019, 12, 31)).empty


def test_hourly_missing_or_malformed_file(tmp_path: Path) -> None:
    shutil.copy(SAMPLE / "stocks.parquet", tmp_path / "stocks.parquet")
    src = FilesSource(tmp_path)
    with pytest.raises(MarketDataError, match=r"no hourly bars for AAPL: .*AAPL.csv does not"):
        src.hourly_bars("AAPL", FIRST, LAST)
    (tmp_path / "hourly_raw").mkdir()
    (tmp_path / "hourly_raw" / "ACN.csv").write_text(",date,ticker,data.open\n0,2020-01-02,ACN,1\n")
    with pytest.raises(MarketDataError, match=r"ACN.csv lacks columns"):
        src.hourly_bars("ACN", FIRST, LAST)
    (tmp_path / "hourly_raw" / "AMD.csv").write_bytes(b"")
    with pytest.raises(MarketDataError, match=r"cannot read .*AMD.csv"):
        src.hourly_bars("AMD", FIRST, LAST)
    with pytest.raises(MarketDataError, match="not a ticker"):
        src.hourly_bars("../stocks", FIRST, LAST)


def test_hourly_file_of_another_ticker(tmp_path: Path) -> None:
    shutil.copy(SAMPLE / "stocks.parquet", tmp_path / "stocks.parquet")
    (tmp_path / "hourly_raw").mkdir()
    shutil.copy(SAMPLE / "hourly_raw" / "FB.csv", tmp_path / "hourly_raw" / "META.csv")
    with pytest.raises(MarketDataError, match=r"META.csv holds bars of \['FB'\], not META"):
        FilesSource(tmp_path).hourly_bars("META", date(2021, 1, 4), date(2021, 1, 8))

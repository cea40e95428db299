"""The market-data assets materialised for real: sample files in, Postgres rows out."""

from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pytest

from breakout_assets.definitions import build_resources
from breakout_assets.resources.market_data import FilesMarketData, MarketDataSource
from breakout_assets.settings import load_settings
from breakout_assets_tests.conftest import SAMPLE_DIR
from breakout_assets_tests.helpers import market_assets, read_table, run_assets

BARS = "SELECT * FROM market_bars ORDER BY ticker, session"


def _sample_rows(session: str) -> pd.DataFrame:
    stocks = pd.read_parquet(SAMPLE_DIR / "stocks.parquet")
    return stocks[stocks["date"].astype(str) == session]


def _check(result, name: str):
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def test_one_session_lands_exactly(settings):
    result = run_assets(settings, ["market_bars"], "2024-03-01")
    rows = read_table(settings.database_url, BARS)
    expected = _sample_rows("2024-03-01")
    assert len(rows) == len(expected) == 150
    merged = rows.merge(expected, on="ticker")
    assert (merged["close_x"] == merged["close_y"]).all()
    assert (merged["volume_x"] == merged["volume_y"]).all()
    [materialization] = result.asset_materializations_for_node("market_bars")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["rows"] == 150 and meta["sessions"] == 1 and meta["source"] == "files"
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_rematerialising_yields_identical_rows(settings):
    run_assets(settings, ["market_bars", "index_bars"], "2024-02-26", "2024-03-01")
    first = read_table(settings.database_url, BARS)
    run_assets(settings, ["market_bars"], "2024-02-28")  # one partition of the range again
    run_assets(settings, ["market_bars", "index_bars"], "2024-02-26", "2024-03-01")
    again = read_table(settings.database_url, BARS)
    pd.testing.assert_frame_equal(first, again)
    assert len(first) == 5 * 150


def test_range_is_one_run_with_one_materialization_per_session(settings):
    result = run_assets(settings, ["market_bars", "index_bars"], "2024-01-02", "2024-03-08")
    keys = {m.partition for m in result.asset_materializations_for_node("market_bars")}
    assert len(keys) == 47 and "2024-01-15" not in keys  # MLK day is no session
    counts = read_table(
        settings.database_url, "SELECT count(DISTINCT session) AS n FROM index_bars"
    )
    assert counts["n"][0] == 47


def test_bulk_load_leaves_planner_statistics(settings):
    """A first load into an empty table is analysed in the same run: the scans right after it
    (features, signals) would otherwise plan without column statistics (a ticker filter taken
    for a handful of rows picks a sort-merge over millions)."""
    run_assets(settings, ["market_bars", "index_bars"], "2024-01-02", "2024-03-08")
    stats = read_table(
        settings.database_url,
        """
        SELECT tablename, attname, n_distinct FROM pg_stats
        WHERE tablename IN ('market_bars', 'index_bars') AND attname IN ('ticker', 'session')
        ORDER BY tablename, attname""",
    )
    distinct = {(t, a): n for t, a, n in stats.itertuples(index=False)}
    assert distinct[("market_bars", "ticker")] == 150
    assert distinct[("market_bars", "session")] == 47
    assert ("index_bars", "ticker") in distinct


class _CrashingSource(MarketDataSource):
    """The real files source, failing after its first chunk: a crash mid-write."""

    name = "files"

    def __init__(self, inner: MarketDataSource):
        self.inner = inner

    def daily_bars(self, sessions):
        return self.inner.daily_bars(sessions)

    def iter_daily_bars(self, sessions, chunk_sessions):
        chunks = self.inner.iter_daily_bars(sessions, 1)
        yield next(chunks)
        raise ConnectionResetError("source connection dropped mid-backfill")

    def index_bars(self, sessions, tickers):
        return self.inner.index_bars(sessions, tickers)

    def hourly_bars(self, ticker, start, end):
        raise NotImplementedError

    def ticker_reference(self, as_of):
        return self.inner.ticker_reference(as_of)


class _CrashingResource(FilesMarketData):
    def source(self) -> MarketDataSource:
        return _CrashingSource(super().source())


@pytest.mark.parametrize("existing", ["range", "subset"])
def test_crash_mid_write_leaves_previous_rows_intact(settings, existing):
    if existing == "range":  # the bulk path: truncate + index rebuild inside the transaction
        run_assets(settings, ["market_bars"], "2024-03-04", "2024-03-08")
    else:  # the incremental path: rows outside the range exist
        run_assets(settings, ["market_bars"], "2024-02-26", "2024-03-08")
    before = read_table(settings.database_url, BARS)
    resources = build_resources(settings)
    resources["market_data"] = _CrashingResource(**resources["market_data"].model_dump())
    result = run_assets(
        settings,
        ["market_bars"],
        "2024-03-04",
        "2024-03-08",
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    after = read_table(settings.database_url, BARS)
    pd.testing.assert_frame_equal(before, after)
    indexes = read_table(
        settings.database_url,
        "SELECT indexname FROM pg_indexes WHERE tablename = 'market_bars' ORDER BY 1",
    )
    assert list(indexes["indexname"]) == ["market_bars_pkey", "market_bars_session_idx"]


def _files_dir_with(tmp_path, mutate) -> str:
    target = tmp_path / "files"
    shutil.copytree(SAMPLE_DIR, target, ignore=shutil.ignore_patterns("hourly_raw", "*.py"))
    stocks = pd.read_parquet(target / "stocks.parquet")
    stocks = mutate(stocks)
    stocks.to_parquet(target / "stocks.parquet", index=False)
    return str(target)


def test_bad_rows_are_quarantined_with_reasons(settings, tmp_path):
    def corrupt(stocks: pd.DataFrame) -> pd.DataFrame:
        day = stocks["date"].astype(str) == "2024-03-01"
        idx = stocks.index[day]
        stocks.loc[idx[0], "high"] = stocks.loc[idx[0], "low"] - 1  # low above high
        stocks.loc[idx[1], "close"] = -3.0  # non-positive
        stocks.loc[idx[2], "volume"] = -10  # negative volume
        dup = stocks.loc[[idx[3]]].assign(volume=stocks.loc[idx[3], "volume"] + 1)
        return pd.concat([stocks, dup], ignore_index=True)  # conflicting duplicate

    bad = load_settings(
        database_url=settings.database_url, files_dir=_files_dir_with(tmp_path, corrupt)
    )
    result = run_assets(bad, ["market_bars"], "2024-03-01")
    quarantined = read_table(bad.database_url, "SELECT * FROM quarantined_bars ORDER BY reason")
    assert sorted(quarantined["reason"]) == sorted(
        [
            "low above high",
            "non-positive price",
            "negative volume",
            "conflicting duplicate rows for ticker and session",
            "conflicting duplicate rows for ticker and session",
        ]
    )
    stored = read_table(bad.database_url, "SELECT count(*) AS n FROM market_bars")
    assert stored["n"][0] == 150 - 4
    assert _check(result, "ohlc_consistent").passed  # nothing bad reached the table
    # re-running replaces the quarantine too: no duplicates of quarantined rows
    run_assets(bad, ["market_bars"], "2024-03-01")
    again = read_table(bad.database_url, "SELECT count(*) AS n FROM quarantined_bars")
    assert again["n"][0] == 5


def test_missing_session_is_an_error_not_an_empty_partition(settings):
    """A partition the files do not cover (the partitions end at the files' last session
    unless BREAKOUT_END_DATE says otherwise, as here)."""
    later = settings.model_copy(update={"end_date": date(2024, 3, 15)})
    result = run_assets(later, ["market_bars"], "2024-03-11", raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    cause = error.cause or error
    assert cause.cls_name == "MissingDataError"
    assert "2024-03-11" in cause.message and "covers" in cause.message


def test_session_coverage_is_a_blocking_check(settings):
    """What it blocks, and that it does so before the commit: test_data_safety."""
    spec = [s for s in market_assets(settings)[0].check_specs if s.name == "session_coverage"][0]
    assert spec.blocking


def test_unadjusted_split_is_flagged(settings, tmp_path):
    def unsplit(stocks: pd.DataFrame) -> pd.DataFrame:
        ticker = stocks["ticker"] == stocks["ticker"].iloc[0]
        before = stocks["date"].astype(str) < "2024-03-05"
        for col in ("open", "high", "low", "close"):
            stocks.loc[ticker & before, col] *= 4  # as if a 4:1 split were not adjusted
        return stocks

    raw = load_settings(
        database_url=settings.database_url, files_dir=_files_dir_with(tmp_path, unsplit)
    )
    result = run_assets(raw, ["market_bars"], "2024-03-04", "2024-03-06")
    jumps = _check(result, "overnight_jumps")
    assert not jumps.passed
    assert jumps.severity.value == "WARN"
    [flag] = jumps.metadata["largest"].value
    assert flag["session"] == "2024-03-05" and flag["jump"] < -0.7


def test_ticker_reference_never_regresses(settings):
    run_assets(settings, ["ticker_reference"], "2024-03-08")
    latest = read_table(settings.database_url, "SELECT * FROM tickers ORDER BY ticker")
    assert len(latest) == 150 and (latest["as_of"].astype(str) == "2024-03-08").all()
    assert set(latest["sector_etf"]) <= {
        "SPY",
        "XLE",
        "XLF",
        "XLI",
        "XLK",
        "XLP",
        "XLU",
        "XLV",
        "XLY",
    }
    run_assets(settings, ["ticker_reference"], "2023-03-01")  # an older partition re-run
    after = read_table(settings.database_url, "SELECT * FROM tickers ORDER BY ticker")
    pd.testing.assert_frame_equal(latest, after)


def test_index_bars_hold_every_series(settings):
    result = run_assets(settings, ["index_bars"], "2024-03-08")
    rows = read_table(settings.database_url, "SELECT * FROM index_bars ORDER BY ticker")
    assert set(rows["ticker"]) == set(settings.index_tickers)
    assert (rows.loc[rows["ticker"] == "VIX", "volume"] == 0).all()
    assert _check(result, "index_coverage").passed

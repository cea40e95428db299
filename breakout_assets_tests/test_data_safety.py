"""Bad data never replaces good data, and every dropped row is quarantined with its reason.

Regression tests of issue 14 (items 5 and 7), each reproducing one probe that failed: real
Postgres, real Dagster materialisations, the files source on copies of the sample data and the
real `massive` client against the fake Polygon server.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from datetime import date

import pandas as pd
import pytest

from breakout_assets.core.bars import conform_bars, non_session_days
from breakout_assets.core.quality import validate_bars
from breakout_assets.definitions import build_resources
from breakout_assets.resources.market_data import FilesMarketData, MarketDataSource
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import SAMPLE_DIR
from breakout_assets_tests.fake_polygon import FakePolygon, daily_agg_row, grouped_row
from breakout_assets_tests.helpers import read_table, run_assets, run_totals

BARS = "SELECT * FROM market_bars ORDER BY ticker, session"
INDEX = "SELECT * FROM index_bars ORDER BY ticker, session"
QUARANTINE = (
    "SELECT ticker, session, high, reason, source FROM quarantined_bars "
    "ORDER BY session NULLS LAST, ticker, reason"
)
NON_SESSION = "date is not a NYSE session (weekend or holiday)"
UNPRINTABLE = "ticker contains whitespace or control characters"
KEY = "pk-safety"


def _files(tmp_path, stocks: Callable | None = None, indices: Callable | None = None) -> str:
    """A copy of the sample files with the stock and/or index file rewritten."""
    target = tmp_path / "files"
    shutil.copytree(SAMPLE_DIR, target, ignore=shutil.ignore_patterns("hourly_raw", "*.py"))
    for stem, mutate in (("stocks", stocks), ("indices", indices)):
        if mutate is not None:
            frame = pd.read_parquet(target / f"{stem}.parquet")
            mutate(frame).to_parquet(target / f"{stem}.parquet", index=False)
    return str(target)


def _on(frame: pd.DataFrame, *days: str) -> pd.Series:
    return frame["date"].astype(str).isin(days)


def _with_rows(frame: pd.DataFrame, *rows: dict) -> pd.DataFrame:
    """The frame plus copies of its first row with the given fields changed (dates as text)."""
    frame = frame.assign(date=frame["date"].astype(str))
    extra = pd.DataFrame([{**frame.iloc[0].to_dict(), **row} for row in rows])
    return pd.concat([frame, extra], ignore_index=True)


def _failure(result) -> tuple[str, str]:
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    cause = error.cause or error
    return cause.cls_name, cause.message


def _invert_high_low(frame: pd.DataFrame, rows: pd.Series) -> pd.DataFrame:
    high = frame.loc[rows, "high"].copy()
    frame.loc[rows, "high"] = frame.loc[rows, "low"]
    frame.loc[rows, "low"] = high + 1
    return frame


# --- 5. bad data never replaces good data ------------------------------------------------------


@pytest.mark.parametrize("stored", ["wider range", "same range"])  # incremental / bulk path
def test_a_degraded_file_never_replaces_stored_sessions(settings, tmp_path, stored):
    first = "2024-02-26" if stored == "wider range" else "2024-03-04"
    run_assets(settings, ["market_bars"], first, "2024-03-08")
    before = read_table(settings.database_url, BARS)

    degraded = load_settings(
        database_url=settings.database_url,
        files_dir=_files(tmp_path, stocks=lambda s: _invert_high_low(s, s.index == s.index)),
    )  # every row bad
    result = run_assets(degraded, ["market_bars"], "2024-03-04", "2024-03-08", raise_on_error=False)

    cls, message = _failure(result)
    assert cls == "RefusedSessionsError"
    assert f"files in {tmp_path / 'files'}" in message
    assert "2024-03-04: all 150 rows quarantined" in message
    assert "2024-03-08: all 150 rows quarantined" in message
    assert "low above high: 750" in message
    pd.testing.assert_frame_equal(before, read_table(settings.database_url, BARS))
    assert read_table(settings.database_url, QUARANTINE).empty


def test_a_degraded_index_session_never_replaces_stored_rows(settings, tmp_path):
    run_assets(settings, ["index_bars"], "2024-03-04", "2024-03-08")
    before = read_table(settings.database_url, INDEX)
    degraded = load_settings(
        database_url=settings.database_url,
        files_dir=_files(tmp_path, indices=lambda s: _invert_high_low(s, _on(s, "2024-03-06"))),
    )
    result = run_assets(degraded, ["index_bars"], "2024-03-04", "2024-03-08", raise_on_error=False)
    cls, message = _failure(result)
    assert cls == "RefusedSessionsError"
    assert "index_bars" in message and "2024-03-06: all 13 rows quarantined" in message
    pd.testing.assert_frame_equal(before, read_table(settings.database_url, INDEX))


def test_a_polygon_session_of_malformed_rows_never_replaces_stored_rows(database_url, monkeypatch):
    monkeypatch.setenv("BREAKOUT_POLYGON_API_KEY", KEY)
    with FakePolygon(api_key=KEY) as fake:
        for day in ("2024-03-04", "2024-03-05"):
            fake.grouped[day] = [
                grouped_row("AAPL", 170, 172, 169, 171, 5e7, day=day),
                grouped_row("MSFT", 410, 415, 405, 412, 2e7, day=day),
            ]
        polygon = load_settings(
            database_url=database_url,
            data_source="polygon",
            polygon_base_url=fake.base_url,
            polygon_max_retries=0,
        )
        run_assets(polygon, ["market_bars"], "2024-03-04", "2024-03-05")
        before = read_table(database_url, BARS)

        fake.grouped["2024-03-05"] = [  # malformed values: text, a missing field, a null price
            {**grouped_row("AAPL", 170, 172, 169, 171, 5e7, day="2024-03-05"), "o": "n/a"},
            {
                k: v
                for k, v in grouped_row("MSFT", 410, 415, 405, 412, 2e7, day="2024-03-05").items()
                if k != "c"
            },
            {**grouped_row("NVDA", 800, 810, 790, 805, 3e7, day="2024-03-05"), "h": None},
        ]
        result = run_assets(
            polygon, ["market_bars"], "2024-03-04", "2024-03-05", raise_on_error=False
        )

    cls, message = _failure(result)
    assert cls == "RefusedSessionsError"
    assert f"polygon at {fake.base_url}" in message
    assert "2024-03-05: all 3 rows quarantined" in message
    assert "missing or non-numeric value: 3" in message
    pd.testing.assert_frame_equal(before, read_table(database_url, BARS))


def test_blocking_checks_refuse_the_run_before_its_commit(settings, tmp_path):
    """A session that lost two thirds of its tickers fails `session_coverage` inside the write
    transaction: the stored rows stay and the failure names the check and the sessions."""
    run_assets(settings, ["market_bars"], "2024-03-01", "2024-03-08")
    before = read_table(settings.database_url, BARS)

    def thin_out(stocks: pd.DataFrame) -> pd.DataFrame:
        return stocks.drop(index=stocks.index[_on(stocks, "2024-03-05")][:100])

    thin = load_settings(
        database_url=settings.database_url, files_dir=_files(tmp_path, stocks=thin_out)
    )
    result = run_assets(thin, ["market_bars"], "2024-03-04", "2024-03-06", raise_on_error=False)
    cls, message = _failure(result)
    assert cls == "RefusedSessionsError"
    assert "session_coverage" in message and "'session': '2024-03-05'" in message
    assert "before the commit" in message and "files in" in message
    pd.testing.assert_frame_equal(before, read_table(settings.database_url, BARS))


# --- 7. a reason for every dropped row ---------------------------------------------------------


def test_every_rule_of_the_quarantine_names_its_reason():
    sound = {
        "ticker": "AAA",
        "session": "2024-03-04",
        "open": 10.0,
        "high": 11.0,
        "low": 9.0,
        "close": 10.5,
        "volume": 1000.0,
    }
    cases = {
        "ticker contains whitespace or control characters": [
            {"ticker": "AAA\n"},
            {"ticker": " AAA"},
            {"ticker": "A\x00A"},
            {"ticker": "A\u00a0A"},
        ],
        "malformed ticker": [{"ticker": "aaa"}, {"ticker": None}, {"ticker": "A/B"}],
        "unparseable date": [{"session": "2024-02-30"}, {"session": "soon"}],
        "date is not a NYSE session (weekend or holiday)": [{"session": "2024-03-02"}],
        "session not requested": [{"session": "2024-03-05"}],
        "price above max_bar_price": [{"high": 1e300}, {"open": 2e7, "high": 2e7, "close": 2e7}],
        "volume out of range": [{"volume": 1e300}],
    }
    rows = [{**sound, **change} for changes in cases.values() for change in changes]
    bars = conform_bars(pd.DataFrame(rows))
    checked = validate_bars(bars, {date(2024, 3, 4)}, {date(2024, 3, 2), date(2024, 3, 3)})
    assert checked.valid.empty
    assert list(checked.quarantined["reason"]) == [
        reason for reason, changes in cases.items() for _ in changes
    ]
    bound = validate_bars(
        conform_bars(pd.DataFrame([{**sound, "high": 50.0}])), {date(2024, 3, 4)}, max_price=20.0
    )
    assert list(bound.quarantined["reason"]) == ["price above max_bar_price"]


def test_a_session_answers_for_the_closed_days_before_it():
    calendar = [date(2024, 2, 16), date(2024, 2, 20), date(2024, 2, 21)]
    assert non_session_days([date(2024, 2, 20), date(2024, 2, 21)], calendar) == [
        date(2024, 2, 17),
        date(2024, 2, 18),
        date(2024, 2, 19),
    ]
    assert non_session_days([date(2024, 2, 16)], calendar) == []


def test_weekend_holiday_and_undated_rows_are_quarantined_with_reasons(settings, tmp_path):
    def strays(stocks: pd.DataFrame) -> pd.DataFrame:
        return _with_rows(
            stocks,
            {"date": "2024-02-19"},  # Presidents' Day: answered by the run of 2024-02-20
            {"date": "2024-03-02"},  # a Saturday: answered by 2024-03-04
            {"date": "2024-03-09"},  # the Saturday after the range: another run's
            {"date": "not-a-date"},
            {"date": "2024-02-30"},
        )

    dirty = load_settings(
        database_url=settings.database_url, files_dir=_files(tmp_path, stocks=strays)
    )
    result = run_assets(dirty, ["market_bars"], "2024-02-20", "2024-03-08")
    for _ in range(2):  # a re-run replaces its quarantine, never duplicates it
        quarantined = read_table(settings.database_url, QUARANTINE)
        assert [
            (None if pd.isna(s) else str(s), r)
            for s, r in zip(quarantined["session"], quarantined["reason"], strict=True)
        ] == [
            ("2024-02-19", NON_SESSION),
            ("2024-03-02", NON_SESSION),
            (None, "unparseable date"),
            (None, "unparseable date"),
        ]
        run_assets(dirty, ["market_bars"], "2024-02-20", "2024-03-08")
    assert run_totals(result, "market_bars")["quarantined"] == 4  # the range's one observation
    stored = read_table(settings.database_url, "SELECT count(*) AS n FROM market_bars")
    assert stored["n"][0] == 14 * 150


def test_tickers_with_whitespace_or_control_characters_are_quarantined(settings, tmp_path):
    """A trailing newline used to pass the ticker pattern into market_bars, and a NUL byte
    aborted the whole load with a raw database encoding error naming neither file nor row."""

    def odd(stocks: pd.DataFrame) -> pd.DataFrame:
        return _with_rows(
            stocks,
            *(
                {"ticker": t, "date": "2024-03-01"}
                for t in ("ZZZ\n", " YYY", "X X", "W\x00W", "VV\t")
            ),
        )

    dirty = load_settings(database_url=settings.database_url, files_dir=_files(tmp_path, odd))
    run_assets(dirty, ["market_bars", "ticker_reference"], "2024-03-01")
    stored = read_table(settings.database_url, "SELECT DISTINCT ticker FROM market_bars")
    assert len(stored) == 150 and stored["ticker"].str.fullmatch(r"[A-Z][A-Z.]*").all()
    quarantined = read_table(settings.database_url, QUARANTINE)
    assert sorted(quarantined["ticker"]) == sorted(["ZZZ\\n", " YYY", "X X", "W\\x00W", "VV\\t"])
    assert set(quarantined["reason"]) == {UNPRINTABLE}
    reference = read_table(settings.database_url, "SELECT ticker FROM tickers")
    assert len(reference) == 150


def test_an_absurd_finite_price_is_quarantined_below_a_settable_bound(
    settings, tmp_path, monkeypatch
):
    def absurd(stocks: pd.DataFrame) -> pd.DataFrame:
        return _with_rows(
            stocks,
            {"ticker": "HUGE", "date": "2024-03-01", "high": 1e300},
            {
                "ticker": "DEAR",
                "date": "2024-03-01",
                "open": 5e6,
                "high": 5e6,
                "low": 5e6,
                "close": 5e6,
            },
        )

    files = _files(tmp_path, stocks=absurd)
    run_assets(
        load_settings(database_url=settings.database_url, files_dir=files),
        ["market_bars"],
        "2024-03-01",
    )
    quarantined = read_table(settings.database_url, QUARANTINE)
    assert list(zip(quarantined["ticker"], quarantined["reason"], strict=True)) == [
        ("HUGE", "price above max_bar_price")
    ]
    top = read_table(settings.database_url, "SELECT max(high) AS high FROM market_bars")
    assert top["high"][0] == 5e6  # DEAR is believable under the default bound

    monkeypatch.setenv("BREAKOUT_MAX_BAR_PRICE", "1000000")
    strict = load_settings(database_url=settings.database_url, files_dir=files)
    assert strict.max_bar_price == 1e6
    run_assets(strict, ["market_bars"], "2024-03-01")
    quarantined = read_table(settings.database_url, QUARANTINE)
    assert sorted(quarantined["ticker"]) == ["DEAR", "HUGE"]


@pytest.mark.parametrize(
    "body, shape",
    [
        ({"status": "OK", "results": {"T": "AAPL", "o": 1}}, "`results` is a dict"),
        ({"status": "OK", "results": "no data today"}, "`results` is a str"),
        ({"status": "OK", "results": [["AAPL", 1, 2, 0.5, 1.5, 100]]}, "holds a list"),
        ({"status": "OK", "results": [{"T": "AAPL"}, 42]}, "holds a int"),
        (["results"], "answered a JSON list"),
    ],
)
def test_grouped_results_of_the_wrong_shape_name_vendor_endpoint_and_session(
    database_url, monkeypatch, body, shape
):
    monkeypatch.setenv("BREAKOUT_POLYGON_API_KEY", KEY)
    with FakePolygon(api_key=KEY) as fake:
        fake.answer("/v2/aggs/grouped", body)
        polygon = load_settings(
            database_url=database_url,
            data_source="polygon",
            polygon_base_url=fake.base_url,
            polygon_max_retries=0,
        )
        result = run_assets(polygon, ["market_bars"], "2024-03-04", raise_on_error=False)
    cls, message = _failure(result)
    assert cls == "VendorPayloadError"
    assert "Polygon GET /v2/aggs/grouped/locale/us/market/stocks/2024-03-04" in message
    assert "session 2024-03-04" in message and shape in message


def test_index_aggregates_of_the_wrong_shape_name_vendor_endpoint_and_sessions(
    database_url, monkeypatch
):
    monkeypatch.setenv("BREAKOUT_POLYGON_API_KEY", KEY)
    with FakePolygon(api_key=KEY) as fake:
        fake.aggs[("SPY", "day")] = [daily_agg_row("2024-03-04", 510, 512, 508, 511, 6e7)]
        fake.answer("/v2/aggs/ticker/SPY/", {"status": "OK", "results": {"o": 510}})
        polygon = load_settings(
            database_url=database_url,
            data_source="polygon",
            polygon_base_url=fake.base_url,
            polygon_max_retries=0,
        )
        result = run_assets(
            polygon, ["index_bars"], "2024-03-04", "2024-03-05", raise_on_error=False
        )
    cls, message = _failure(result)
    assert cls == "VendorPayloadError"
    assert "Polygon GET /v2/aggs/ticker/SPY/range/1/day/2024-03-04/2024-03-05" in message
    assert "sessions 2024-03-04..2024-03-05" in message


# --- concurrent runs ---------------------------------------------------------------------------

_started = threading.Event()  # the gated run is inside its write transaction
_gate = threading.Event()  # ... and may go on


class _GatedSource(MarketDataSource):
    """The real files source, holding its first chunk until the test opens the gate."""

    name = "files"

    def __init__(self, inner: MarketDataSource):
        self.inner = inner

    def daily_bars(self, sessions):
        return self.inner.daily_bars(sessions)

    def iter_daily_bars(self, sessions, chunk_sessions):
        _started.set()
        _gate.wait(timeout=60)
        yield from self.inner.iter_daily_bars(sessions, chunk_sessions)

    def index_bars(self, sessions, tickers):
        return self.inner.index_bars(sessions, tickers)

    def hourly_bars(self, ticker, start, end):
        return self.inner.hourly_bars(ticker, start, end)

    def ticker_reference(self, as_of):
        return self.inner.ticker_reference(as_of)


class _GatedResource(FilesMarketData):
    def source(self) -> MarketDataSource:
        return _GatedSource(super().source())


def _lock_waiters(url: str) -> int:
    return int(
        read_table(
            url,
            """
        SELECT count(*) AS n FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'""",
        )["n"][0]
    )


def test_a_concurrent_run_of_the_same_partitions_waits_for_the_first(settings):
    """Two runs of one range used to collide: the second failed with a raw UniqueViolation."""
    run_assets(settings, ["market_bars"], "2024-02-26", "2024-03-08")
    before = read_table(settings.database_url, BARS)
    resources = build_resources(settings)
    resources["market_data"] = _GatedResource(**resources["market_data"].model_dump())
    results: dict[str, object] = {}

    def run(name: str) -> None:
        results[name] = run_assets(
            settings,
            ["market_bars"],
            "2024-03-04",
            "2024-03-08",
            resources=resources,
            raise_on_error=False,
        )

    _started.clear()
    _gate.clear()
    first = threading.Thread(target=run, args=("first",))
    second = threading.Thread(target=run, args=("second",))
    try:
        first.start()
        assert _started.wait(timeout=60), "the first run never reached its write"
        second.start()
        deadline = time.monotonic() + 60
        while _lock_waiters(settings.database_url) == 0:  # the second run blocks on the first
            assert time.monotonic() < deadline, "the second run never waited for the first"
            time.sleep(0.1)
    finally:
        _gate.set()
        first.join(timeout=120)
        second.join(timeout=120)

    for name in ("first", "second"):
        assert results[name].success, f"the {name} run failed"
    pd.testing.assert_frame_equal(before, read_table(settings.database_url, BARS))
    logs = helpers.DEFAULT_INSTANCE.all_logs(results["second"].run_id)
    assert any(
        "another run is writing market_bars; waiting" in (e.user_message or "") for e in logs
    )

"""PolygonSource with the real `massive` client against the local fake Polygon server."""

from __future__ import annotations

import logging
import socket
import time
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakout_assets.core.bars import BAR_COLUMNS, HOURLY_COLUMNS, REFERENCE_COLUMNS
from breakout_assets.resources.market_data.base import (
    AuthenticationError,
    MarketDataError,
    MissingDataError,
)
from breakout_assets.resources.market_data.polygon import (
    PolygonSource,
    ms_to_session,
    sic_sector,
)
from breakout_assets_tests.fake_polygon import (
    FakePolygon,
    agg_row,
    daily_agg_row,
    fake_polygon,  # noqa: F401 (pytest fixture)
    grouped_row,
    make_grouped_rows,
    ny_ms,
)

KEY = "test-key"  # what fake_polygon expects
D1, D2, D3 = date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)
GROUPED = "/v2/aggs/grouped/"


def source(fake: FakePolygon, **overrides: object) -> PolygonSource:
    """A source on the fake with fast retries (the suite must stay well under 20 s)."""
    kwargs: dict = {
        "api_key": KEY,
        "base_url": fake.base_url,
        "timeout_s": 2.0,
        "max_retries": 2,
        "backoff_s": 0.01,
    }
    return PolygonSource(**(kwargs | overrides))


def stock_day(fake: FakePolygon, day: date, *tickers: str) -> None:
    fake.grouped[day.isoformat()] = [
        grouped_row(t, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 1000.0 * (i + 1), day=day)
        for i, t in enumerate(tickers)
    ]


# --- grouped daily -----------------------------------------------------------------------------


def test_daily_bars_values_dtypes_and_one_request_per_session(fake_polygon: FakePolygon) -> None:
    stock_day(fake_polygon, D1, "AAPL", "MSFT")
    stock_day(fake_polygon, D2, "AAPL")
    fake_polygon.grouped[D1.isoformat()].append(
        grouped_row("OTCX", 1, 1, 1, 1, 1, day=D1, otc=True)
    )

    bars = source(fake_polygon).daily_bars([D2, D1])

    assert list(bars.columns) == list(BAR_COLUMNS)
    assert str(bars["ticker"].dtype) == "string"
    assert str(bars["session"].dtype).startswith("datetime64")
    assert all(str(bars[c].dtype) == "float64" for c in BAR_COLUMNS[2:])
    assert sorted(zip(bars["ticker"], bars["session"].dt.date, strict=True)) == [
        ("AAPL", D1),
        ("AAPL", D2),
        ("MSFT", D1),
    ]
    msft = bars[bars["ticker"] == "MSFT"].iloc[0]
    assert (msft["open"], msft["high"], msft["low"], msft["close"], msft["volume"]) == (
        11.0,
        12.0,
        10.0,
        11.5,
        2000.0,
    )
    calls = fake_polygon.requests_to(GROUPED)
    assert sorted(c.path.rsplit("/", 1)[1] for c in calls) == [D1.isoformat(), D2.isoformat()]
    assert all(c.query["include_otc"] == "false" and c.query["adjusted"] == "true" for c in calls)
    assert all(c.headers["authorization"] == f"Bearer {KEY}" for c in calls)
    assert all("apiKey" not in c.query for c in calls)


def test_otc_rows_are_dropped_even_if_the_server_ignores_the_flag(
    fake_polygon: FakePolygon,
) -> None:
    stock_day(fake_polygon, D1, "AAPL")
    fake_polygon.grouped[D1.isoformat()].append(
        grouped_row("OTCX", 1, 1, 1, 1, 1, day=D1, otc=True)
    )
    fake_polygon.honor_include_otc = False

    assert list(source(fake_polygon).daily_bars([D1])["ticker"]) == ["AAPL"]


def test_timestamps_are_accepted_as_sessions(fake_polygon: FakePolygon) -> None:
    stock_day(fake_polygon, D1, "AAPL")
    fake_polygon.aggs[("SPY", "day")] = [daily_agg_row(D1, 1, 2, 0.5, 1.5, 10)]
    src = source(fake_polygon)

    assert len(src.daily_bars([pd.Timestamp(D1)])) == 1
    assert len(src.index_bars([pd.Timestamp(D1)], ["SPY"])) == 1
    assert fake_polygon.requests_to(f"{GROUPED}locale/us/market/stocks/{D1}")
    assert fake_polygon.requests_to(f"/v2/aggs/ticker/SPY/range/1/day/{D1}/{D1}")


def test_iter_daily_bars_yields_one_frame_per_chunk(fake_polygon: FakePolygon) -> None:
    for day in (D1, D2, D3):
        stock_day(fake_polygon, day, "AAPL", "MSFT")

    chunks = list(source(fake_polygon).iter_daily_bars([D3, D1, D2], chunk_sessions=2))

    assert [sorted(set(c["session"].dt.date)) for c in chunks] == [[D1, D2], [D3]]
    assert len(fake_polygon.requests_to(GROUPED)) == 3


def test_ten_thousand_results_in_one_grouped_response(fake_polygon: FakePolygon) -> None:
    fake_polygon.grouped[D1.isoformat()] = make_grouped_rows(10_000, D1)

    started = time.perf_counter()
    bars = source(fake_polygon).daily_bars([D1])

    assert len(bars) == 10_000 and bars["ticker"].is_unique
    assert time.perf_counter() - started < 5


def test_empty_session_raises_missing_data_naming_it(fake_polygon: FakePolygon) -> None:
    stock_day(fake_polygon, D1, "AAPL")

    with pytest.raises(MissingDataError, match="2024-01-03"):
        source(fake_polygon).daily_bars([D1, D2])


# --- retries and errors ------------------------------------------------------------------------


def test_429_then_success(fake_polygon: FakePolygon) -> None:
    stock_day(fake_polygon, D1, "AAPL")
    fake_polygon.fail(GROUPED, 429)

    assert list(source(fake_polygon).daily_bars([D1])["ticker"]) == ["AAPL"]
    assert len(fake_polygon.requests_to(GROUPED)) == 2


def test_5xx_twice_then_success(fake_polygon: FakePolygon) -> None:
    stock_day(fake_polygon, D1, "AAPL")
    fake_polygon.fail(GROUPED, 500)
    fake_polygon.fail(GROUPED, 502)

    assert len(source(fake_polygon, max_retries=2).daily_bars([D1])) == 1
    assert len(fake_polygon.requests_to(GROUPED)) == 3


def test_persistent_5xx_gives_a_clear_error_after_max_retries(fake_polygon: FakePolygon) -> None:
    fake_polygon.fail(GROUPED, 503, times=None)

    with pytest.raises(MarketDataError) as caught:
        source(fake_polygon, max_retries=3).daily_bars([D1])

    message = str(caught.value)
    assert "grouped daily bars for 2024-01-02" in message
    assert "3 retries" in message and "HTTP 503" in message
    assert not isinstance(caught.value, (AuthenticationError, MissingDataError))
    assert len(fake_polygon.requests_to(GROUPED)) == 4


def test_backoff_grows_exponentially(fake_polygon: FakePolygon) -> None:
    fake_polygon.fail(GROUPED, 500, times=None)

    started = time.perf_counter()
    with pytest.raises(MarketDataError):
        source(fake_polygon, max_retries=3, backoff_s=0.1).daily_bars([D1])

    assert time.perf_counter() - started >= 0.1 + 0.2 + 0.4


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_names_the_variable_and_hides_the_key(
    fake_polygon: FakePolygon, status: int
) -> None:
    secret = "sk-very-secret-123"
    body = {"status": "ERROR", "error": f"API key {secret} is not valid"}  # a server echoing it
    fake_polygon.fail("/v2/", status, times=None, body=body)

    with pytest.raises(AuthenticationError) as caught:
        source(fake_polygon, api_key=secret).daily_bars([D1])

    assert "BREAKOUT_POLYGON_API_KEY" in str(caught.value)
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    chained = [caught.value.__cause__, caught.value.__context__]
    assert all(secret not in str(e) for e in chained)
    assert len(fake_polygon.requests_to(GROUPED)) == 1  # never retried


def test_wrong_key_is_an_authentication_error(fake_polygon: FakePolygon) -> None:
    with pytest.raises(AuthenticationError, match="BREAKOUT_POLYGON_API_KEY") as caught:
        source(fake_polygon, api_key="wrong-key").hourly_bars("AAPL", D1, D2)
    assert "wrong-key" not in str(caught.value)


def test_missing_key_is_an_authentication_error() -> None:
    with pytest.raises(AuthenticationError, match="BREAKOUT_POLYGON_API_KEY"):
        PolygonSource(
            api_key="", base_url="http://127.0.0.1:9", timeout_s=1, max_retries=0, backoff_s=0
        )


def test_timeout_after_retries_is_a_clear_error(fake_polygon: FakePolygon) -> None:
    fake_polygon.delay(1.0, prefix=GROUPED)

    started = time.perf_counter()
    with pytest.raises(MarketDataError, match=r"timed out.*0\.2 s") as caught:
        source(fake_polygon, timeout_s=0.2, max_retries=1).daily_bars([D1])

    assert "grouped daily bars for 2024-01-02" in str(caught.value)
    assert len(fake_polygon.requests_to(GROUPED)) == 2
    assert time.perf_counter() - started < 3


def test_unreachable_server_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: connection refused
    src = PolygonSource(
        api_key=KEY, base_url=f"http://127.0.0.1:{port}", timeout_s=1, max_retries=1, backoff_s=0.01
    )

    with pytest.raises(MarketDataError, match="could not connect to 127.0.0.1"):
        src.daily_bars([D1])


def test_key_never_logged_nor_put_in_urls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakePolygon(api_key=KEY, page_size=2, next_url_api_key=True) as fake:
        fake.aggs[("SPY", "day")] = [daily_agg_row(d, 1, 2, 0.5, 1.5, 10) for d in (D1, D2, D3)]
        fake.fail("/v2/aggs/ticker/SPY", 500)
        with caplog.at_level(logging.DEBUG):
            bars = source(fake).index_bars([D1, D2, D3], ["SPY"])

        assert len(bars) == 3
        calls = fake.requests_to("/v2/aggs/ticker/SPY")
        assert len(calls) == 3  # 500, first page, second page (via next_url)
        assert calls[-1].query.get("cursor") == "2" and "apiKey" not in calls[-1].query
    assert caplog.text and KEY not in caplog.text


# --- aggregates --------------------------------------------------------------------------------


def test_index_bars_paginate_and_keep_only_the_sessions() -> None:
    days = [D1 + timedelta(days=i) for i in range(10)]  # calendar days: a weekend included
    with FakePolygon(api_key=KEY, page_size=3) as fake:
        fake.aggs[("SPY", "day")] = [
            daily_agg_row(d, 100 + i, 101 + i, 99 + i, 100.5 + i, 1e6) for i, d in enumerate(days)
        ]
        sessions = [days[0], days[1], days[2], days[6], days[7], days[8]]  # a gap in between

        bars = source(fake).index_bars(sessions, ["SPY"])

        on_sessions = bars[bars["session"].dt.date.isin(sessions)]
        assert list(on_sessions["session"].dt.date) == sessions
        assert list(on_sessions["close"]) == [100.5, 101.5, 102.5, 106.5, 107.5, 108.5]
        # Friday days[3] is another run's session; the weekend bars before Monday days[6] are
        # a vendor fault this run answers for: delivered, for the quarantine.
        assert set(bars["session"].dt.date) - set(sessions) == {days[4], days[5]}
        calls = fake.requests_to("/v2/aggs/ticker/SPY/range/1/day/")
        assert len(calls) == 3  # 7 bars from days[0]..days[8] at 3 per page
        assert calls[0].path.endswith(f"/{days[0]}/{days[8]}")
        assert calls[0].query["adjusted"] == "true"


def test_vix_is_requested_as_i_vix_and_stored_as_vix(fake_polygon: FakePolygon) -> None:
    fake_polygon.aggs[("I:VIX", "day")] = [daily_agg_row(D1, 13, 14, 12, 13.5, 0)]
    fake_polygon.aggs[("SPY", "day")] = [daily_agg_row(D1, 470, 472, 468, 471, 5e7)]

    bars = source(fake_polygon).index_bars([D1], ["VIX", "SPY"])

    assert sorted(bars["ticker"]) == ["SPY", "VIX"]
    assert bars.set_index("ticker").loc["VIX", "close"] == 13.5
    assert fake_polygon.requests_to("/v2/aggs/ticker/I:VIX/range/1/day/")
    assert not fake_polygon.requests_to("/v2/aggs/ticker/VIX/")


def test_index_without_any_bar_is_missing_data(fake_polygon: FakePolygon) -> None:
    with pytest.raises(MissingDataError, match="I:VIX"):
        source(fake_polygon).index_bars([D1], ["VIX"])


@pytest.mark.parametrize(
    ("utc", "session"),
    [
        ("2024-01-02T05:00:00Z", date(2024, 1, 2)),  # Polygon's daily stamp, winter (EST)
        ("2024-07-01T04:00:00Z", date(2024, 7, 1)),  # Polygon's daily stamp, summer (EDT)
        ("2024-03-11T04:00:00Z", date(2024, 3, 11)),  # the Monday after the DST switch
        ("2024-01-03T02:30:00Z", date(2024, 1, 2)),  # 21:30 New York: still the 2nd
    ],
)
def test_epoch_ms_to_new_york_session(utc: str, session: date) -> None:
    ms = int(pd.Timestamp(utc).timestamp() * 1000)
    assert ms_to_session([ms]).iloc[0] == pd.Timestamp(session)


@settings(max_examples=100, deadline=None)
@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2035, 12, 31)),
    st.integers(min_value=0, max_value=23 * 60 + 59),
)
def test_any_new_york_time_maps_to_its_new_york_date(day: date, minute: int) -> None:
    local = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
    assert ms_to_session([ny_ms(local)]).iloc[0].date() == local.date()


def test_index_session_uses_the_new_york_date(fake_polygon: FakePolygon) -> None:
    fake_polygon.aggs[("SPY", "day")] = [
        agg_row(int(pd.Timestamp("2024-07-01T04:00:00Z").timestamp() * 1000), 1, 2, 0.5, 1.5, 9)
    ]
    bars = source(fake_polygon).index_bars([date(2024, 7, 1)], ["SPY"])
    assert list(bars["session"]) == [pd.Timestamp("2024-07-01")]


def test_hourly_bars_are_new_york_times_chronological_with_session_flag(
    fake_polygon: FakePolygon,
) -> None:
    stamps = [
        "2024-01-02 04:00",
        "2024-01-02 09:00",
        "2024-01-02 10:00",
        "2024-01-02 15:00",
        "2024-01-02 16:00",
        "2024-07-01 09:00",
        "2024-07-01 13:00",
    ]
    fake_polygon.aggs[("AAPL", "hour")] = [
        agg_row(ny_ms(s), 1, 2, 0.5, 1.5, 100) for s in reversed(stamps)
    ]

    bars = source(fake_polygon).hourly_bars("AAPL", date(2024, 1, 2), date(2024, 7, 1))

    assert list(bars.columns) == list(HOURLY_COLUMNS)
    assert str(bars["ts"].dt.tz) == "America/New_York"
    assert bars["ts"].is_monotonic_increasing
    assert [t.strftime("%Y-%m-%d %H:%M") for t in bars["ts"]] == stamps
    assert list(bars["is_extended_hours"]) == [True, True, False, False, True, True, False]
    assert bars["is_extended_hours"].dtype == bool
    assert set(bars["ticker"]) == {"AAPL"}
    call = fake_polygon.requests_to("/v2/aggs/ticker/AAPL/range/1/hour/")[0]
    assert call.path.endswith("/2024-01-02/2024-07-01") and call.query["adjusted"] == "true"


def test_hourly_bars_empty_range_is_an_empty_frame(fake_polygon: FakePolygon) -> None:
    bars = source(fake_polygon).hourly_bars("AAPL", D1, D2)
    assert bars.empty and list(bars.columns) == list(HOURLY_COLUMNS)


# --- reference ---------------------------------------------------------------------------------


def _reference_fake(fake: FakePolygon) -> None:
    fake.tickers = [
        {"ticker": t, "name": f"{t} Inc", "market": "stocks", "type": "CS", "active": True}
        for t in ("AAPL", "AMT", "JPM", "XOM", "ZZZZ")
    ]
    fake.details = {
        "AAPL": {
            "ticker": "AAPL",
            "name": "Apple Inc.",
            "sic_description": "ELECTRONIC COMPUTERS",
            "market_cap": 3.0e12,
            "share_class_shares_outstanding": 15_000_000_000,
            "weighted_shares_outstanding": 15_100_000_000,
        },
        "AMT": {
            "ticker": "AMT",
            "sic_description": "REAL ESTATE INVESTMENT TRUSTS",
            "market_cap": 9.0e10,
            "weighted_shares_outstanding": 466_000_000,
        },
        "JPM": {
            "ticker": "JPM",
            "sic_description": "NATIONAL COMMERCIAL BANKS",
            "market_cap": 5.0e11,
            "share_class_shares_outstanding": 2_900_000_000,
        },
        "XOM": {"ticker": "XOM", "sic_description": "SOMETHING UNHEARD OF"},
    }


def test_ticker_reference_lists_paginated_universe_and_maps_details() -> None:
    with FakePolygon(api_key=KEY, page_size=2) as fake:
        _reference_fake(fake)
        src = source(fake, index_tickers=("SPY", "XLK", "XLF"))

        ref = src.ticker_reference(D1, details_for=["AAPL", "AMT", "JPM", "XOM", "ZZZZ", "NOPE"])

        assert list(ref.columns) == list(REFERENCE_COLUMNS)
        assert list(ref["ticker"]) == ["AAPL", "AMT", "JPM", "XOM", "ZZZZ"]
        rows = ref.set_index("ticker")
        assert rows.loc["AAPL", "sector"] == "Technology"
        assert rows.loc["AAPL", "sector_etf"] == "XLK"
        assert rows.loc["AAPL", "name"] == "Apple Inc."
        assert rows.loc["AAPL", "industry"] == "ELECTRONIC COMPUTERS"
        assert rows.loc["AAPL", "shares_outstanding"] == 15_000_000_000  # share class first
        assert rows.loc["AAPL", "market_cap"] == 3.0e12
        assert rows.loc["AMT", "sector"] == "Real Estate"
        assert rows.loc["AMT", "sector_etf"] == "SPY"  # no XLRE series: the market stands in
        assert rows.loc["AMT", "shares_outstanding"] == 466_000_000
        assert (rows.loc["JPM", "sector"], rows.loc["JPM", "sector_etf"]) == ("Finance", "XLF")
        assert rows.loc["XOM", "sector"] == "Miscellaneous"
        assert pd.isna(rows.loc["ZZZZ", "sector"])  # 404 on details: unknown, not a failure
        assert rows.loc["ZZZZ", "name"] == "ZZZZ Inc"
        assert rows.loc["ZZZZ", "sector_etf"] == "SPY"

        lists = fake.requests_to("/v3/reference/tickers")
        pages = [r for r in lists if r.path == "/v3/reference/tickers"]
        assert len(pages) == 3
        first = pages[0].query
        assert (first["market"], first["type"], first["active"], first["date"], first["limit"]) == (
            "stocks",
            "CS",
            "true",
            "2024-01-02",
            "1000",
        )
        detail_paths = sorted(r.path for r in lists if r.path != "/v3/reference/tickers")
        assert detail_paths == [
            f"/v3/reference/tickers/{t}" for t in ("AAPL", "AMT", "JPM", "XOM", "ZZZZ")
        ]


def test_ticker_reference_makes_no_detail_calls_unless_asked(fake_polygon: FakePolygon) -> None:
    _reference_fake(fake_polygon)

    ref = source(fake_polygon).ticker_reference(D1)

    assert len(ref) == 5 and ref["sector"].isna().all() and (ref["sector_etf"] == "SPY").all()
    assert str(ref["market_cap"].dtype) == "float64"
    assert all(r.path == "/v3/reference/tickers" for r in fake_polygon.requests)


def test_details_for_defaults_to_the_constructor_list(fake_polygon: FakePolygon) -> None:
    _reference_fake(fake_polygon)

    ref = source(fake_polygon, details_for=["JPM"]).ticker_reference(D1)

    assert ref.set_index("ticker")["sector"].dropna().to_dict() == {"JPM": "Finance"}
    assert len(fake_polygon.requests_to("/v3/reference/tickers/")) == 1


@pytest.mark.parametrize(
    ("sic", "sector"),
    [
        ("SERVICES-PREPACKAGED SOFTWARE", "Technology"),
        ("SEMICONDUCTORS & RELATED DEVICES", "Technology"),
        ("PHARMACEUTICAL PREPARATIONS", "Health Care"),
        ("ELECTROMEDICAL & ELECTROTHERAPEUTIC APPARATUS", "Health Care"),
        ("REAL ESTATE INVESTMENT TRUSTS", "Real Estate"),
        ("STATE COMMERCIAL BANKS", "Finance"),
        ("BLANK CHECKS", "Finance"),
        ("CRUDE PETROLEUM & NATURAL GAS", "Energy"),
        ("NATURAL GAS TRANSMISSION", "Utilities"),
        ("ELECTRIC SERVICES", "Utilities"),
        ("RADIOTELEPHONE COMMUNICATIONS", "Telecommunications"),
        ("RETAIL-GROCERY STORES", "Consumer Staples"),
        ("PERFUMES, COSMETICS & OTHER TOILET PREPARATIONS", "Consumer Staples"),  # not "OIL"
        ("RETAIL-EATING PLACES", "Consumer Discretionary"),
        ("MOTOR VEHICLES & PASSENGER CAR BODIES", "Consumer Discretionary"),
        ("GOLD AND SILVER ORES", "Basic Materials"),
        ("AIRCRAFT ENGINES & ENGINE PARTS", "Industrials"),
        ("services-business services, nec", "Miscellaneous"),
        ("", None),
        (None, None),
    ],
)
def test_sic_description_maps_to_a_nasdaq_sector(sic: str | None, sector: str | None) -> None:
    assert sic_sector(sic) == sector

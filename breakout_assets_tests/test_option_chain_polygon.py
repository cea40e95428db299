"""PolygonOptionChain through the real `massive` client against the fake Polygon server.

Nothing is mocked in-process: the official client sends real HTTP requests to
`fake_polygon.FakePolygon` on 127.0.0.1, which answers the options contracts reference and the
option chain snapshot in Polygon's JSON shapes (filters, pagination by next_url, forced errors).
"""

from __future__ import annotations

import math
from datetime import date

import pytest

from breakout_assets.resources.option_chain.base import OptionChainError, OptionChainSource
from breakout_assets.resources.option_chain.polygon import PolygonOptionChain
from breakout_assets_tests.fake_polygon import (
    FakePolygon,
    fake_polygon,  # noqa: F401 (fixture)
    occ_ticker,
    option_contract_row,
    option_snapshot_row,
)

AS_OF = date(2024, 7, 1)
NEAR, FAR, LATE = "2024-07-19", "2024-08-16", "2024-12-20"
CONTRACTS = "/v3/reference/options/contracts"
SNAPSHOT = "/v3/snapshot/options/AAPL"


def source(fake: FakePolygon, key: str = "test-key", **kw: object) -> PolygonOptionChain:
    return PolygonOptionChain(
        api_key=key,
        base_url=fake.base_url,
        timeout_s=2.0,
        max_retries=3,
        backoff_s=0.01,
        **kw,  # type: ignore[arg-type]
    )


def list_aapl(fake: FakePolygon, strikes: tuple[float, ...] = (190.0, 195.0, 200.0)) -> None:
    """AAPL calls and puts at `strikes` for three expiries, quoted except the 200 put of FAR."""
    for expiry in (NEAR, FAR, LATE):
        for right in ("C", "P"):
            for strike in strikes:
                fake.option_contracts.append(option_contract_row("AAPL", expiry, right, strike))
                if (expiry, right, strike) == (FAR, "P", 200.0):
                    continue
                mid = max(0.5, (195 - strike) if right == "C" else (strike - 195)) + 2.0
                fake.option_snapshots.append(
                    option_snapshot_row(
                        "AAPL",
                        expiry,
                        right,
                        strike,
                        bid=round(mid - 0.05, 2),
                        ask=round(mid + 0.05, 2),
                        iv=0.25,
                        delta=0.5 if right == "C" else -0.5,
                        open_interest=strike * 10,
                        underlying_price=195.0,
                    )
                )


def chain(src: PolygonOptionChain, **kw: object):  # type: ignore[no-untyped-def]
    window = dict(min_expiry=date(2024, 7, 20), max_expiry=date(2024, 9, 30))
    window.update(kw)  # type: ignore[arg-type]
    return src.chain("AAPL", AS_OF, 195.0, **window)  # type: ignore[arg-type]


def test_is_an_option_chain_source(fake_polygon: FakePolygon) -> None:  # noqa: F811
    src = source(fake_polygon)
    assert isinstance(src, OptionChainSource) and src.name == "polygon"
    assert "test-key" not in repr(src)


def test_chain_mapped_and_expiries_filtered(fake_polygon: FakePolygon) -> None:  # noqa: F811
    list_aapl(fake_polygon)
    got = chain(source(fake_polygon))
    assert got.underlying == "AAPL" and got.as_of == AS_OF and got.underlying_price == 195.0
    assert got.expiries() == [date(2024, 8, 16)]  # NEAR and LATE are outside the window
    assert got.strikes(date(2024, 8, 16), "C") == [190.0, 195.0, 200.0]
    call = got.quote(date(2024, 8, 16), 190.0, "C")
    assert call is not None
    assert call.symbol == occ_ticker("AAPL", FAR, "C", 190.0) == "O:AAPL240816C00190000"
    assert (call.bid, call.ask) == (6.95, 7.05) and call.mid == pytest.approx(7.0)
    assert call.open_interest == 1900 and call.implied_vol == 0.25 and call.delta == 0.5
    assert call.con_id is None
    put = got.quote(date(2024, 8, 16), 190.0, "P")
    assert put is not None and put.right == "P" and put.delta == -0.5
    unquoted = got.quote(date(2024, 8, 16), 200.0, "P")  # listed, no snapshot row
    assert unquoted is not None and math.isnan(unquoted.bid) and math.isnan(unquoted.mid)
    assert unquoted.open_interest == 0
    # the window and the strike band went to Polygon as filters
    for request in (fake_polygon.requests_to(CONTRACTS)[0], fake_polygon.requests_to(SNAPSHOT)[0]):
        assert request.query["expiration_date.gte"] == "2024-07-20"
        assert request.query["expiration_date.lte"] == "2024-09-30"
        assert request.query["strike_price.gte"] == "97.5"
        assert request.query["strike_price.lte"] == "292.5"
    assert fake_polygon.requests_to(CONTRACTS)[0].query["underlying_ticker"] == "AAPL"
    assert fake_polygon.requests_to(CONTRACTS)[0].query["as_of"] == "2024-07-01"


def test_missing_fields_become_nan_and_adjusted_contracts_are_left_out(
    fake_polygon: FakePolygon,  # noqa: F811
) -> None:
    fake_polygon.option_contracts += [
        option_contract_row("AAPL", FAR, "C", 190.0),
        option_contract_row("AAPL", FAR, "C", 195.0, shares=150),  # adjusted after a merger
    ]
    fake_polygon.option_snapshots.append(
        option_snapshot_row(
            "AAPL", FAR, "C", 190.0, bid=1.0, ask=1.2, iv=None, delta=None, open_interest=None
        )
    )
    got = chain(source(fake_polygon))
    [quote] = got.quotes
    assert quote.strike == 190.0 and (quote.bid, quote.ask) == (1.0, 1.2)
    assert math.isnan(quote.implied_vol) and math.isnan(quote.delta) and quote.open_interest == 0


def test_pagination_followed_on_both_endpoints(fake_polygon: FakePolygon) -> None:  # noqa: F811
    strikes = tuple(float(s) for s in range(150, 241, 5))  # 19 strikes x 2 rights x 3 expiries
    list_aapl(fake_polygon, strikes)
    fake_polygon.page_size = 7
    got = chain(source(fake_polygon))
    assert len(got.quotes) == 19 * 2  # the FAR expiry only
    assert sum(1 for q in got.quotes if math.isfinite(q.mid)) == 19 * 2 - 1
    contract_pages = fake_polygon.requests_to(CONTRACTS)
    snapshot_pages = fake_polygon.requests_to(SNAPSHOT)
    assert len(contract_pages) == math.ceil(38 / 7) and len(snapshot_pages) == math.ceil(37 / 7)
    # later pages come from next_url (a cursor) and keep the filters
    assert all("cursor" in r.query for r in contract_pages[1:] + snapshot_pages[1:])
    assert all(r.query["expiration_date.gte"] == "2024-07-20" for r in snapshot_pages)


def test_429_then_success(fake_polygon: FakePolygon) -> None:  # noqa: F811
    list_aapl(fake_polygon)
    fake_polygon.fail(SNAPSHOT, 429, times=2)
    fake_polygon.fail(CONTRACTS, 503, times=1)
    got = chain(source(fake_polygon))
    assert len(got.quotes) == 6
    assert len(fake_polygon.requests_to(SNAPSHOT)) == 3
    assert len(fake_polygon.requests_to(CONTRACTS)) == 2


def test_429_forever_gives_up_with_a_clear_error(fake_polygon: FakePolygon) -> None:  # noqa: F811
    list_aapl(fake_polygon)
    fake_polygon.fail(SNAPSHOT, 429, times=None)
    with pytest.raises(OptionChainError) as info:
        chain(source(fake_polygon))
    text = str(info.value)
    assert "polygon" in text and "AAPL" in text and SNAPSHOT in text
    assert "after 3 retries" in text and "429" in text


def test_401_is_a_clear_error_without_the_key(fake_polygon: FakePolygon) -> None:  # noqa: F811
    list_aapl(fake_polygon)
    wrong = "sk-wrong-secret-123"
    with pytest.raises(OptionChainError) as info:
        chain(source(fake_polygon, key=wrong))
    text = str(info.value)
    assert "HTTP 401" in text and "polygon" in text and "AAPL" in text and CONTRACTS in text
    assert "BREAKOUT_POLYGON_API_KEY" in text
    assert wrong not in text and info.value.__cause__ is None


def test_key_in_a_vendor_body_or_next_url_never_reaches_the_error(
    fake_polygon: FakePolygon,  # noqa: F811
) -> None:
    list_aapl(fake_polygon)
    fake_polygon.next_url_api_key = True  # a proxy appends apiKey=<key> to next_url
    fake_polygon.page_size = 2
    assert len(chain(source(fake_polygon)).quotes) == 6
    leaked = [r for r in fake_polygon.requests if "apiKey" in r.query]
    assert leaked == []  # the client stripped it: the key travels in the header only
    fake_polygon.fail(SNAPSHOT, 500, times=None, body={"error": "bad key test-key in request"})
    with pytest.raises(OptionChainError) as info:
        chain(source(fake_polygon))
    assert "test-key" not in str(info.value)


def test_unknown_underlying_is_an_error(fake_polygon: FakePolygon) -> None:  # noqa: F811
    list_aapl(fake_polygon)
    with pytest.raises(OptionChainError, match=r"polygon lists no options of ZZZZ") as info:
        source(fake_polygon).chain(
            "ZZZZ", AS_OF, 10.0, min_expiry=date(2024, 7, 20), max_expiry=date(2024, 9, 30)
        )
    assert "/v3/snapshot/options/ZZZZ" in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        {"status": "OK", "results": [{"details": {"ticker": "O:X", "contract_type": "swap"}}]},
        {"status": "OK", "results": ["not an object"]},
        {"status": "OK", "results": [{"details": {"ticker": 5}}]},
    ],
)
def test_malformed_snapshot_is_an_error_naming_the_endpoint(
    fake_polygon: FakePolygon,  # noqa: F811
    body: dict,
) -> None:
    list_aapl(fake_polygon)
    fake_polygon.answer(SNAPSHOT, body)
    with pytest.raises(OptionChainError, match="unexpected shape") as info:
        chain(source(fake_polygon))
    assert SNAPSHOT in str(info.value) and "AAPL" in str(info.value)


def test_no_key_is_refused_up_front() -> None:
    with pytest.raises(OptionChainError, match="BREAKOUT_POLYGON_API_KEY"):
        PolygonOptionChain(api_key="")


def test_resource_reads_the_key_from_the_environment(
    fake_polygon: FakePolygon,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dagster import EnvVar

    from breakout_assets.core.config import OptionsConfig
    from breakout_assets.resources.option_chain.resource import (
        PolygonOptionChainResource,
        option_chain_resource,
    )

    monkeypatch.setenv("BREAKOUT_POLYGON_API_KEY", "test-key")
    list_aapl(fake_polygon)
    resource = PolygonOptionChainResource(
        api_key=EnvVar("BREAKOUT_POLYGON_API_KEY"),
        base_url=fake_polygon.base_url,
        max_retries=1,
        backoff_s=0.01,
    )
    assert "test-key" not in resource.model_dump_json()  # the UI shows the variable only
    with resource.session() as src:
        assert src.name == "polygon" and len(chain(src).quotes) == 6  # type: ignore[arg-type]
    chosen = option_chain_resource(
        OptionsConfig(chain_source="polygon"), polygon_key=EnvVar("BREAKOUT_POLYGON_API_KEY")
    )
    assert isinstance(chosen, PolygonOptionChainResource) and chosen.kind == "polygon"

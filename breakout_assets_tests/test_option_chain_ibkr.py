"""IbkrOptionChain against a fake `IB` at the adapter's boundary.

The IB Gateway / TWS cannot run here, so the ONLY mocked part is the live gateway: `ChainIB`
(extending test_ibkr_broker's `FakeIB`: connection, qualification of the stock) is injected
through `IbkrOptionChain(ib_factory=...)`. What it hands back are real ib_async objects
(`OptionChain` parameter rows, qualified `Option` contracts, `Ticker`s with an
`OptionComputation` as model greeks). The guard fixture (imported) fails any real connection.
"""

from __future__ import annotations

import math
from datetime import date

import pytest
from ib_async import Contract, OptionChain, OptionComputation, Ticker

from breakout_assets.resources.option_chain.base import OptionChainError, OptionChainSource
from breakout_assets.resources.option_chain.ibkr import IbkrOptionChain
from breakout_assets_tests.test_ibkr_broker import (  # noqa: F401 (the guard fixture)
    CONIDS,
    FakeIB,
    _no_network,
)

EXPIRIES = ["20240719", "20240816", "20240920", "20241220"]
STRIKES = [150.0, 170.0, 180.0, 185.0, 190.0, 195.0, 200.0, 205.0, 210.0, 220.0, 250.0]
MISSING = ("20240816", 205.0)  # a strike IB lists for the class but not for this expiry


class ChainIB(FakeIB):
    """FakeIB plus the option-chain requests (the only mocked part: the live gateway)."""

    def __init__(self) -> None:
        super().__init__()
        self.params = [
            OptionChain("SMART", CONIDS["AAPL"], "AAPL", "100", EXPIRIES, STRIKES),
            OptionChain("CBOE", CONIDS["AAPL"], "AAPL", "100", EXPIRIES, STRIKES),
            OptionChain("SMART", CONIDS["AAPL"], "AAPL1", "150", EXPIRIES, [17.5]),
        ]
        self.market_data_type = 0
        self.open_interest = True
        self.streaming: list[int] = []
        self.cancelled_md: list[int] = []
        self.qualify_calls: list[int] = []
        self.ticker_batches: list[int] = []

    def reqMarketDataType(self, marketDataType: int) -> None:
        self.market_data_type = marketDataType

    def reqSecDefOptParams(
        self, underlyingSymbol: str, futFopExchange: str, underlyingSecType: str, conId: int
    ) -> list[OptionChain]:
        self._need()
        assert (futFopExchange, underlyingSecType, conId) == ("", "STK", CONIDS["AAPL"])
        return self.params if underlyingSymbol == "AAPL" else []

    def qualifyContracts(self, *contracts: Contract) -> list[Contract | None]:
        if not any(c.secType == "OPT" for c in contracts):
            return super().qualifyContracts(*contracts)
        self._need()
        self.qualify_calls.append(len(contracts))
        out: list[Contract | None] = []
        for c in contracts:
            assert (c.exchange, c.currency, c.multiplier) == ("SMART", "USD", "100")
            assert c.tradingClass == "AAPL"
            key = (c.lastTradeDateOrContractMonth, float(c.strike))
            if key == MISSING or c.lastTradeDateOrContractMonth not in EXPIRIES:
                out.append(None)
                continue
            c.conId = _con_id(c)
            yymmdd = c.lastTradeDateOrContractMonth[2:]
            c.localSymbol = f"AAPL  {yymmdd}{c.right}{round(c.strike * 1000):08d}"
            out.append(c)
        return out

    def reqTickers(self, *contracts: Contract, regulatorySnapshot: bool = False) -> list[Ticker]:
        self._need()
        self.ticker_batches.append(len(contracts))
        out = []
        for c in contracts:
            ticker = Ticker(contract=c)  # its __post_init__ resets quotes: set them after
            out.append(ticker)
            if c.strike == 250.0:  # no market: IB's -1 and no greeks
                ticker.bid = ticker.ask = -1.0
                continue
            mid = max(0.2, 195 - c.strike if c.right == "C" else c.strike - 195) + 3.0
            greeks = OptionComputation(
                0, impliedVol=0.3, delta=0.55 if c.right == "C" else -0.45, undPrice=195.0
            )
            ticker.bid, ticker.ask, ticker.modelGreeks = mid - 0.1, mid + 0.1, greeks
        return out

    def reqMktData(
        self,
        contract: Contract,
        genericTickList: str = "",
        snapshot: bool = False,
        regulatorySnapshot: bool = False,
        mktDataOptions: list | None = None,
    ) -> Ticker:
        self._need()
        assert genericTickList == "101" and snapshot is False  # tick 101 only streams
        self.streaming.append(contract.conId)
        ticker = Ticker(contract=contract)
        if self.open_interest:
            oi = float(int(contract.strike) * 10)
            if contract.right == "C":
                ticker.callOpenInterest = oi
            else:
                ticker.putOpenInterest = oi
        return ticker

    def cancelMktData(self, contract: Contract) -> bool:
        self.cancelled_md.append(contract.conId)
        return True


def _con_id(c: Contract) -> int:
    return (
        700_000_000
        + int(c.lastTradeDateOrContractMonth[4:]) * 10_000
        + int(c.strike) * 2
        + (c.right == "P")
    )


@pytest.fixture
def fake() -> ChainIB:
    return ChainIB()


def make_source(fake: ChainIB, **kw: object) -> IbkrOptionChain:
    return IbkrOptionChain(
        "gw.local",
        4002,
        18,
        connect_timeout_s=3,
        request_timeout_s=0.5,
        ib_factory=lambda: fake,
        **kw,  # type: ignore[arg-type]
    )


def get(src: IbkrOptionChain, underlying: str = "AAPL", **kw: object):  # type: ignore[no-untyped-def]
    window = dict(min_expiry=date(2024, 8, 1), max_expiry=date(2024, 10, 1))
    window.update(kw)  # type: ignore[arg-type]
    return src.chain(underlying, date(2024, 7, 1), 195.0, **window)  # type: ignore[arg-type]


def test_is_an_option_chain_source_and_connects_lazily(fake: ChainIB) -> None:
    src = make_source(fake, market_data_type=3)
    assert isinstance(src, OptionChainSource) and src.name == "ibkr"
    assert fake.connects == []
    get(src)
    assert fake.connects == [
        dict(host="gw.local", port=4002, clientId=18, timeout=3, readonly=True, account="")
    ]
    assert fake.RequestTimeout == 0.5 and fake.market_data_type == 3
    src.close()
    assert not fake.connected


def test_chain_mapped_from_qualified_contracts_and_tickers(fake: ChainIB) -> None:
    chain = get(make_source(fake))
    assert chain.underlying == "AAPL" and chain.underlying_price == 195.0
    assert chain.underlying_con_id == CONIDS["AAPL"]
    assert chain.expiries() == [date(2024, 8, 16), date(2024, 9, 20)]
    # strikes within 25% of 195 (146.25..243.75): 250 is outside; 205 missing in August only
    assert chain.strikes(date(2024, 8, 16), "C") == [
        150.0, 170.0, 180.0, 185.0, 190.0, 195.0, 200.0, 210.0, 220.0
    ]  # fmt: skip
    assert 205.0 in chain.strikes(date(2024, 9, 20), "P")
    call = chain.quote(date(2024, 8, 16), 190.0, "C")
    assert call is not None
    assert (call.bid, call.ask) == pytest.approx((7.9, 8.1))
    assert call.implied_vol == 0.3 and call.delta == 0.55 and call.open_interest == 1900
    assert call.con_id == _con_id(Contract(lastTradeDateOrContractMonth="20240816", strike=190.0))
    assert call.symbol == "AAPL  240816C00190000"
    put = chain.quote(date(2024, 9, 20), 200.0, "P")
    assert put is not None and put.delta == -0.45 and put.open_interest == 2000
    # open interest came from a streaming subscription that was cancelled afterwards
    assert sorted(fake.streaming) == sorted(fake.cancelled_md) and fake.streaming


def test_no_market_is_nan_not_minus_one(fake: ChainIB) -> None:
    chain = get(make_source(fake, strike_band=0.5))
    quote = chain.quote(date(2024, 8, 16), 250.0, "C")
    assert quote is not None
    assert math.isnan(quote.bid) and math.isnan(quote.ask) and math.isnan(quote.mid)
    assert math.isnan(quote.implied_vol) and math.isnan(quote.delta)


def test_batches_bound_the_market_data_lines(fake: ChainIB) -> None:
    get(make_source(fake, batch_size=7))
    assert fake.qualify_calls == [2 * 2 * 10]  # 2 expiries x 2 rights x 10 strikes, one call
    assert max(fake.ticker_batches) <= 7 and sum(fake.ticker_batches) == 40 - 2


def test_open_interest_switched_off_is_zero(fake: ChainIB) -> None:
    chain = get(make_source(fake, open_interest_wait_s=0))
    assert fake.streaming == []
    assert {q.open_interest for q in chain.quotes} == {0}


def test_open_interest_missing_waits_bounded_then_zero(fake: ChainIB) -> None:
    fake.open_interest = False
    chain = get(make_source(fake, open_interest_wait_s=0.05))
    assert {q.open_interest for q in chain.quotes} == {0}
    assert sorted(fake.cancelled_md) == sorted(fake.streaming)


def test_unknown_underlying_is_an_error(fake: ChainIB) -> None:
    with pytest.raises(OptionChainError, match=r"ibkr knows no unique US stock ZZZZ"):
        get(make_source(fake), "ZZZZ")


def test_no_expiry_in_the_window_is_an_error(fake: ChainIB) -> None:
    with pytest.raises(OptionChainError, match=r"ibkr lists no AAPL options expiring") as info:
        get(make_source(fake), min_expiry=date(2025, 1, 1), max_expiry=date(2025, 3, 1))
    assert "gw.local:4002" in str(info.value)


def test_gateway_down_is_an_error_naming_it(fake: ChainIB) -> None:
    fake.refuse_connect = True
    with pytest.raises(OptionChainError, match=r"ibkr option chain of AAPL.*gw.local:4002"):
        get(make_source(fake))


def test_request_failure_is_an_error_naming_the_request(fake: ChainIB) -> None:
    def timeout(*args: object) -> list:
        raise TimeoutError("no answer")

    fake.reqSecDefOptParams = timeout  # type: ignore[method-assign,assignment]
    with pytest.raises(OptionChainError, match=r"reqSecDefOptParams.*TimeoutError"):
        get(make_source(fake))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="strike_band"):
        IbkrOptionChain(strike_band=1.5)
    with pytest.raises(ValueError, match="market_data_type"):
        IbkrOptionChain(market_data_type=9)


def test_resources_build_their_sources() -> None:
    from breakout_assets.core.config import OptionsConfig
    from breakout_assets.resources.option_chain.resource import (
        IbkrOptionChainResource,
        ModelOptionChainResource,
        option_chain_resource,
    )

    resource = IbkrOptionChainResource(port=7497, client_id=21, market_data_type=3)
    src = resource.build()
    assert isinstance(src, IbkrOptionChain) and src.name == "ibkr"
    assert (src.host, src.port, src.client_id, src.market_data_type) == ("127.0.0.1", 7497, 21, 3)
    assert src.strike_band == 0.25 and src.open_interest_wait_s == 3.0
    with resource.session() as opened:  # nothing connects until a chain is asked for
        assert opened.name == "ibkr"
    chosen = option_chain_resource(OptionsConfig(chain_source="ibkr"), ibkr_client_id=30)
    assert isinstance(chosen, IbkrOptionChainResource) and chosen.client_id == 30
    model = option_chain_resource(OptionsConfig(iv_multiplier=1.3))
    assert isinstance(model, ModelOptionChainResource) and model.kind == "model"
    assert model.options_config().iv_multiplier == 1.3
    with pytest.raises(OptionChainError, match="volatility"):
        model.build()

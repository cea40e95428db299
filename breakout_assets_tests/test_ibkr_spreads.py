"""IbkrBroker.place_spread: one BAG combo limit order plus its GTC conditional close (issue 11).

The IB Gateway / TWS cannot run here, so the ONLY mocked part is the live gateway: `SpreadIB`
extends test_ibkr_broker's `FakeIB` (injected through `IbkrBroker(ib_factory=...)`) so it also
qualifies option contracts. Every object the adapter builds and sends is a real ib_async one
(`Bag`, `ComboLeg`, `Option`, `LimitOrder`, `MarketOrder`, `PriceCondition`), inspected here as IB
would receive it. The guard fixture (imported) makes any real ib_async connection fail the test.
"""

from __future__ import annotations

from datetime import date

import pytest
from ib_async import Contract, Option, Order, PriceCondition, Trade
from ib_async import Position as IbPosition

from breakout_assets.core.options import CLOSE_SUFFIX, SpreadOrder, close_ref
from breakout_assets.resources.broker.base import Broker
from breakout_assets.resources.broker.ibkr import PRICE_TRIGGER_LAST, IbkrBroker
from breakout_assets_tests.test_ibkr_broker import (  # noqa: F401 (the guard fixture)
    ACCOUNT,
    CONIDS,
    FakeIB,
    _no_network,
    make_broker,
)

EXPIRY = date(2024, 8, 16)


class Crash(BaseException):
    """A process dying mid-call: no `except Exception` cleanup runs."""


class SpreadIB(FakeIB):
    """FakeIB that also knows the listed options of AAPL (conIds by expiry, strike, right)."""

    def __init__(self) -> None:
        super().__init__()
        self.options: dict[tuple[str, str, float, str], int] = {}
        next_id = 500_000
        for right in ("C", "P"):
            for strike in (180.0, 185.0, 190.0, 195.0, 200.0, 205.0, 210.0):
                next_id += 1
                self.options[("AAPL", "20240816", strike, right)] = next_id
        self.crash_on_ref: str | None = None  # placeOrder of this orderRef kills the process

    def qualifyContracts(self, *contracts: Contract) -> list[Contract | None]:
        out: list[Contract | None] = []
        for c in contracts:
            if c.secType != "OPT":
                out.extend(super().qualifyContracts(c))
                continue
            self._need()
            key = (c.symbol, c.lastTradeDateOrContractMonth, float(c.strike), c.right)
            con_id = self.options.get(key)
            if con_id is not None:
                c.conId, c.tradingClass = con_id, c.symbol
            out.append(c if con_id is not None else None)
        return out

    def placeOrder(self, contract: Contract, order: Order) -> Trade:
        if self.crash_on_ref is not None and order.orderRef == self.crash_on_ref:
            raise Crash(f"process killed while sending {order.orderRef}")
        return super().placeOrder(contract, order)


def spread(
    ref: str = "sp-aapl-1", right: str = "C", long_strike: float = 190.0, **kw: float
) -> SpreadOrder:
    short = kw.pop("short_strike", 200.0 if right == "C" else 180.0)
    fields: dict = dict(
        order_ref=ref,
        ticker="AAPL",
        right=right,
        expiry=EXPIRY,
        long_strike=long_strike,
        short_strike=short,
        contracts=3,
        limit_debit=4.123,
        close_trigger=201.004 if right == "C" else 178.996,
        session=date(2024, 7, 1),
    )
    fields.update(kw)
    return SpreadOrder(**fields)


@pytest.fixture
def fake() -> SpreadIB:
    return SpreadIB()


@pytest.fixture
def broker(fake: SpreadIB) -> IbkrBroker:
    return make_broker(fake)


def _by_ref(fake: SpreadIB, ref: str) -> list[tuple[Contract, Order]]:
    return [(c, o) for c, o in fake.placed if o.orderRef == ref]


def test_broker_protocol_includes_spreads(broker: IbkrBroker) -> None:
    assert isinstance(broker, Broker)
    assert close_ref("x") == "x" + CLOSE_SUFFIX == "x-close"


def test_bag_structure_and_entry_limit(fake: SpreadIB, broker: IbkrBroker) -> None:
    placed = broker.place_spread(spread())
    assert placed.status == "submitted", placed.error
    [(bag, entry)] = _by_ref(fake, "sp-aapl-1")
    assert (bag.secType, bag.symbol, bag.currency, bag.exchange) == ("BAG", "AAPL", "USD", "SMART")
    near, far = bag.comboLegs
    assert near.conId == fake.options[("AAPL", "20240816", 190.0, "C")]
    assert far.conId == fake.options[("AAPL", "20240816", 200.0, "C")]
    assert (near.action, near.ratio, near.exchange) == ("BUY", 1, "SMART")
    assert (far.action, far.ratio, far.exchange) == ("SELL", 1, "SMART")
    assert entry.orderType == "LMT" and entry.action == "BUY"
    assert entry.totalQuantity == 3 and entry.lmtPrice == 4.12  # on the cent grid
    assert entry.tif == "DAY" and entry.account == ACCOUNT and entry.parentId == 0
    assert not entry.transmit  # the attached close transmits both, as a bracket's stop does
    assert fake.trades[entry.orderId].orderStatus.status == "Submitted"  # live once both sent
    assert placed.broker_order_ids == [str(entry.orderId), str(fake.placed[1][1].orderId)]


def test_conditional_close_on_the_underlying_for_calls(fake: SpreadIB, broker: IbkrBroker) -> None:
    broker.place_spread(spread())
    [(_, entry)] = _by_ref(fake, "sp-aapl-1")
    [(bag, close)] = _by_ref(fake, "sp-aapl-1-close")
    assert bag.secType == "BAG" and [leg.action for leg in bag.comboLegs] == ["BUY", "SELL"]
    assert close.action == "SELL" and close.totalQuantity == 3
    assert close.orderType == "MKT" and close.tif == "GTC" and close.transmit
    assert close.parentId == entry.orderId  # works only once the entry has filled
    assert close.conditionsCancelOrder is False
    [cond] = close.conditions
    assert isinstance(cond, PriceCondition)
    assert cond.conId == CONIDS["AAPL"] and cond.exch == "SMART"
    assert cond.isMore is True and cond.price == 201.0
    assert cond.triggerMethod == PRICE_TRIGGER_LAST


def test_put_spread_closes_when_the_underlying_falls(fake: SpreadIB, broker: IbkrBroker) -> None:
    placed = broker.place_spread(spread("sp-aapl-p", right="P", long_strike=195.0))
    assert placed.status == "submitted", placed.error
    [(bag, _)] = _by_ref(fake, "sp-aapl-p")
    near, far = bag.comboLegs
    assert near.conId == fake.options[("AAPL", "20240816", 195.0, "P")] and near.action == "BUY"
    assert far.conId == fake.options[("AAPL", "20240816", 180.0, "P")] and far.action == "SELL"
    [(_, close)] = _by_ref(fake, "sp-aapl-p-close")
    [cond] = close.conditions
    assert cond.isMore is False and cond.price == 179.0 and cond.conId == CONIDS["AAPL"]


def test_option_legs_qualified_as_smart_usd_100(fake: SpreadIB, broker: IbkrBroker) -> None:
    asked: list[Contract] = []
    original = fake.qualifyContracts

    def spy(*contracts: Contract) -> list[Contract | None]:
        asked.extend(contracts)
        return original(*contracts)

    fake.qualifyContracts = spy  # type: ignore[method-assign]
    broker.place_spread(spread())
    options = [c for c in asked if isinstance(c, Option)]
    assert [(c.lastTradeDateOrContractMonth, c.strike, c.right) for c in options] == [
        ("20240816", 190.0, "C"),
        ("20240816", 200.0, "C"),
    ]
    assert all((c.exchange, c.currency, c.multiplier) == ("SMART", "USD", "100") for c in options)


def test_rerun_sends_nothing_twice(fake: SpreadIB, broker: IbkrBroker) -> None:
    first = broker.place_spread(spread())
    assert broker.place_spread(spread()) == first  # the same broker remembers
    sent = len(fake.placed)
    rerun = make_broker(fake)  # a new run: learns from IB's open orders
    again = rerun.place_spread(spread())
    assert again.status == "submitted"
    assert len(fake.placed) == sent
    assert sorted(again.broker_order_ids) == sorted(first.broker_order_ids)
    known = rerun.find_refs(["sp-aapl-1", "sp-aapl-1-close"])
    assert set(known) == {"sp-aapl-1", "sp-aapl-1-close"}


def test_crash_between_entry_and_close_rerun_sends_only_the_close(fake: SpreadIB) -> None:
    fake.crash_on_ref = "sp-aapl-1-close"
    with pytest.raises(Crash):
        make_broker(fake).place_spread(spread())
    [(_, entry)] = _by_ref(fake, "sp-aapl-1")
    assert _by_ref(fake, "sp-aapl-1-close") == []
    fake.crash_on_ref = None
    rerun = make_broker(fake)
    placed = rerun.place_spread(spread())
    assert placed.status == "submitted", placed.error
    assert len(_by_ref(fake, "sp-aapl-1")) == 1  # the entry was not sent again
    [(_, close)] = _by_ref(fake, "sp-aapl-1-close")
    assert close.parentId == entry.orderId  # attached to the still-working entry
    assert placed.broker_order_ids == [str(entry.orderId), str(close.orderId)]


def test_filled_entry_without_close_gets_a_standalone_close(fake: SpreadIB) -> None:
    fake.crash_on_ref = "sp-aapl-1-close"
    with pytest.raises(Crash):
        make_broker(fake).place_spread(spread())
    [(_, entry)] = _by_ref(fake, "sp-aapl-1")
    fake.fill(entry.orderId, 3, 4.12)  # transmitted by hand in TWS and filled meanwhile
    fake.crash_on_ref = None
    placed = make_broker(fake).place_spread(spread())
    assert placed.status == "submitted", placed.error
    assert len(_by_ref(fake, "sp-aapl-1")) == 1
    [(_, close)] = _by_ref(fake, "sp-aapl-1-close")
    assert close.parentId == 0 and close.totalQuantity == 3 and close.conditions


def test_entry_ended_unfilled_gets_no_close(fake: SpreadIB) -> None:
    fake.crash_on_ref = "sp-aapl-1-close"
    with pytest.raises(Crash):
        make_broker(fake).place_spread(spread())
    [(_, entry)] = _by_ref(fake, "sp-aapl-1")
    fake.cancelOrder(entry)  # the DAY order expired
    fake.crash_on_ref = None
    placed = make_broker(fake).place_spread(spread())
    assert placed.status == "error" and "unfilled" in (placed.error or "")
    assert _by_ref(fake, "sp-aapl-1-close") == []


def test_rejection_is_an_answer_and_leaves_nothing_working(
    fake: SpreadIB, broker: IbkrBroker
) -> None:
    fake.reject.add("AAPL")
    placed = broker.place_spread(spread())
    assert placed.status == "rejected" and "201" in (placed.error or "")
    assert fake.openTrades() == []  # the combo and its close were refused together


def test_refused_close_cancels_the_entry_too(fake: SpreadIB, broker: IbkrBroker) -> None:
    original = fake._transmit

    def refuse_close(contract: Contract, parent_id: int) -> None:
        if any(t.order.orderRef.endswith("-close") for t in fake._group(parent_id)):
            fake._fail(parent_id, 201, "Order rejected - reason:conditions", contract)
        else:
            original(contract, parent_id)

    fake._transmit = refuse_close  # type: ignore[method-assign]
    placed = broker.place_spread(spread())
    assert placed.status == "rejected" and "conditions" in (placed.error or "")
    assert fake.openTrades() == []  # all-or-nothing: no entry works without its close
    assert {t.orderStatus.status for t in fake.trades.values()} == {"Cancelled"}


def test_duplicate_order_id_is_retried_with_fresh_ids(fake: SpreadIB, broker: IbkrBroker) -> None:
    fake.duplicate_id_errors = 1
    placed = broker.place_spread(spread())
    assert placed.status == "submitted", placed.error
    entries = _by_ref(fake, "sp-aapl-1")
    assert len(entries) == 2 and entries[0][1].orderId != entries[1][1].orderId
    assert len(fake.openTrades()) == 2


def test_unknown_strike_is_an_error_and_sends_nothing(fake: SpreadIB, broker: IbkrBroker) -> None:
    placed = broker.place_spread(spread(long_strike=191.0, short_strike=200.0))
    assert placed.status == "error" and "191" in (placed.error or "")
    assert fake.placed == []


def test_open_spread_counts_its_debit_as_risk_and_hides_from_stock_positions(
    fake: SpreadIB, broker: IbkrBroker
) -> None:
    broker.place_spread(spread())
    assert broker.account().open_risk == pytest.approx(3 * 4.12 * 100)  # the working entry
    [(_, entry)] = _by_ref(fake, "sp-aapl-1")
    fake.trades[entry.orderId].orderStatus.status = "Filled"
    fake.trades[entry.orderId].orderStatus.filled = 3
    for strike, qty, cost in ((190.0, 3, 900.0), (200.0, -3, 488.0)):
        leg = Option("AAPL", "20240816", strike, "C", "SMART", "100", "USD")
        fake.qualifyContracts(leg)
        fake.held[leg.conId] = IbPosition(ACCOUNT, leg, qty, cost)
    assert broker.positions() == []  # the stock book sees no option legs
    snap = broker.account()
    assert snap.open_risk == pytest.approx(3 * 900.0 - 3 * 488.0)
    assert snap.open_positions == 1

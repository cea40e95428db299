"""IbkrBroker against a fake `IB` at the adapter's boundary.

The IB Gateway / TWS cannot run here, so `FakeIB` below stands in for `ib_async.IB` and is the ONLY
mocked part: it is injected through `IbkrBroker(ib_factory=...)`. Everything it hands back is a
real ib_async object (`Stock`, `ContractDetails`, `LimitOrder`/`StopOrder`, `Trade`,
`OrderStatus`, `TradeLogEntry`, `Fill`, `Execution`, `Position`, `AccountValue`), its
`errorEvent` is a real eventkit `Event`, and brackets are built by ib_async's own
`IB.bracketOrder`, run unchanged. It mimics IB's observable behaviour: orders with transmit=False
wait for the transmitting child, errors arrive through `errorEvent` (103 synchronously, 201 only
on the next `waitOnUpdate`, as over the socket) and cancel the Trade as ib_async's wrapper does.
A guard fixture makes any real ib_async connection attempt fail the test.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from datetime import UTC, date, datetime

import ib_async
import pytest
from eventkit import Event
from ib_async import (
    IB,
    AccountValue,
    CommissionReport,
    Contract,
    ContractDetails,
    Execution,
    Fill,
    Order,
    OrderStatus,
    Stock,
    Trade,
)
from ib_async import Position as IbPosition
from ib_async.objects import TradeLogEntry

from breakout_assets.resources.broker.base import BracketOrder, Broker, BrokerError
from breakout_assets.resources.broker.ibkr import (
    IbkrBroker,
    bracket_prices,
    last_closed_session,
    round_to_tick,
)

ACCOUNT = "DU1234567"
CONIDS = {"AAPL": 265598, "MSFT": 272093, "TSLA": 76792991, "PENNY": 1111}
NOW = datetime(2024, 7, 2, 13, 0, tzinfo=UTC)


class FakeClient:
    """ib_async.Client's id sequence, the one part of the client the adapter uses."""

    def __init__(self, ib: FakeIB) -> None:
        self._ib, self._next = ib, 100

    def getReqId(self) -> int:
        if not self._ib.connected:
            raise ConnectionError("Not connected")
        self._next += 1
        return self._next


class FakeIB:
    """Scripted stand-in for ib_async.IB (see the module docstring: the only mocked part)."""

    bracketOrder = IB.bracketOrder  # ib_async's own bracket construction

    def __init__(self) -> None:
        self.RequestTimeout = 0.0
        self.client = FakeClient(self)
        self.errorEvent = Event("errorEvent")
        self.connected = False
        self.refuse_connect = False
        self.connects: list[dict] = []
        self.requests: list[str] = []
        self.placed: list[tuple[Contract, Order]] = []  # a snapshot of every placeOrder call
        self.cancelled: list[int] = []
        self.trades: dict[int, Trade] = {}
        self.completed: list[Trade] = []  # from earlier sessions
        self.fills: list[Fill] = []
        self.held: dict[int, IbPosition] = {}
        self.min_ticks = {"AAPL": 0.01, "MSFT": 0.01, "TSLA": 0.05, "PENNY": 0.0}
        self.duplicate_id_errors = 0  # the next N transmitted brackets fail with 103
        self.reject: set[str] = set()  # tickers IB rejects with 201, asynchronously
        self.summary = [
            AccountValue(ACCOUNT, tag, value, "USD", "")
            for tag, value in (
                ("NetLiquidation", "100000.5"),
                ("BuyingPower", "400000"),
                ("ExcessLiquidity", "80000"),
                ("TotalCashValue", "50000"),
            )
        ]
        self._pending: list[Callable[[], None]] = []
        self._perm = 9000

    # connection
    def connect(
        self,
        host: str,
        port: int,
        clientId: int,
        timeout: float = 4,
        readonly: bool = False,
        account: str = "",
    ) -> FakeIB:
        self.connects.append(
            dict(
                host=host,
                port=port,
                clientId=clientId,
                timeout=timeout,
                readonly=readonly,
                account=account,
            )
        )
        if self.refuse_connect:
            raise ConnectionRefusedError(111, "Connect call failed")
        self.connected = True
        return self

    def isConnected(self) -> bool:
        return self.connected

    def disconnect(self) -> None:
        self.connected = False

    def _need(self) -> None:
        if not self.connected:
            raise ConnectionError("Not connected")

    # contracts
    def qualifyContracts(self, *contracts: Contract) -> list[Contract | None]:
        self._need()
        out: list[Contract | None] = []
        for c in contracts:
            if c.symbol in CONIDS:
                c.conId, c.primaryExchange = CONIDS[c.symbol], "NASDAQ"
            out.append(c if c.symbol in CONIDS else None)
        return out

    def reqContractDetails(self, contract: Contract) -> list[ContractDetails]:
        self._need()
        tick = self.min_ticks.get(contract.symbol)
        return [] if tick is None else [ContractDetails(contract=contract, minTick=tick)]

    # orders
    def placeOrder(self, contract: Contract, order: Order) -> Trade:
        self._need()
        self.placed.append((contract, copy.copy(order)))
        trade = self.trades.get(order.orderId)
        if trade is not None and not trade.isDone():  # a modification, as in ib_async
            trade.log.append(TradeLogEntry(NOW, trade.orderStatus.status, "Modify"))
            return trade
        order.clientId = 7
        trade = Trade(
            contract,
            order,
            OrderStatus(orderId=order.orderId, status="PendingSubmit"),
            [],
            [TradeLogEntry(NOW, "PendingSubmit")],
        )
        self.trades[order.orderId] = trade
        if order.transmit:
            self._transmit(contract, order.parentId or order.orderId)
        return trade

    def _group(self, parent_id: int) -> list[Trade]:
        return [t for t in self.trades.values() if parent_id in (t.order.orderId, t.order.parentId)]

    def _fail(self, parent_id: int, code: int, text: str, contract: Contract) -> None:
        for t in self._group(parent_id):  # what ib_async's wrapper.error does to a live Trade
            t.orderStatus.status = "Cancelled"
            t.log.append(TradeLogEntry(NOW, "Cancelled", f"Error {code}: {text}", code))
        self.errorEvent.emit(parent_id, code, text, contract)

    def _transmit(self, contract: Contract, parent_id: int) -> None:
        if self.duplicate_id_errors:
            self.duplicate_id_errors -= 1
            self._fail(parent_id, 103, "Duplicate order id", contract)
        elif contract.symbol in self.reject:
            self._pending.append(
                lambda: self._fail(
                    parent_id, 201, "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED", contract
                )
            )
        else:
            for t in self._group(parent_id):
                self._perm += 1
                t.order.permId = t.orderStatus.permId = self._perm
                t.orderStatus.status = "Submitted" if t.order.parentId == 0 else "PreSubmitted"
                t.orderStatus.remaining = float(t.order.totalQuantity)

    def waitOnUpdate(self, timeout: float = 0) -> bool:
        events, self._pending = self._pending, []
        for event in events:
            event()
        return bool(events)

    def cancelOrder(self, order: Order) -> Trade | None:
        self._need()
        self.cancelled.append(order.orderId)
        trade = self.trades.get(order.orderId)
        if trade is not None and not trade.isDone():
            trade.orderStatus.status = "Cancelled"
        return trade

    def openTrades(self) -> list[Trade]:
        return [t for t in self.trades.values() if not t.isDone()]

    def reqAllOpenOrders(self) -> list[Trade]:
        self._need()
        self.requests.append("reqAllOpenOrders")
        return self.openTrades()

    def reqCompletedOrders(self, apiOnly: bool) -> list[Trade]:
        self._need()
        self.requests.append(f"reqCompletedOrders(apiOnly={apiOnly})")
        return self.completed + [t for t in self.trades.values() if t.isDone()]

    def reqExecutions(self, execFilter: object = None) -> list[Fill]:
        self._need()
        self.requests.append("reqExecutions")
        return list(self.fills)

    def reqPositions(self) -> list[IbPosition]:
        self._need()
        self.requests.append("reqPositions")
        return list(self.held.values())

    def positions(self, account: str = "") -> list[IbPosition]:
        return [p for p in self.held.values() if not account or p.account == account]

    def accountSummary(self, account: str = "") -> list[AccountValue]:
        self._need()
        return [v for v in self.summary if not account or v.account == account]

    # scripting: what the market and earlier sessions did
    def fill(self, order_id: int, shares: float, price: float) -> None:
        """An execution of a working order, with its position (same direction only)."""
        trade = self.trades[order_id]
        status = trade.orderStatus
        status.filled += shares
        status.remaining = float(trade.order.totalQuantity) - status.filled
        status.status = "Filled" if status.remaining == 0 else "Submitted"
        self.execution(
            trade.contract,
            trade.order.orderRef,
            shares,
            price,
            trade.order.action,
            order_id,
            trade.order.permId,
        )

    def execution(
        self,
        contract: Contract,
        ref: str,
        shares: float,
        price: float,
        action: str = "BUY",
        order_id: int = 0,
        perm_id: int = 0,
    ) -> None:
        signed = shares if action == "BUY" else -shares
        execution = Execution(
            execId=f"e{len(self.fills)}",
            time=NOW,
            acctNumber=ACCOUNT,
            side="BOT" if action == "BUY" else "SLD",
            shares=shares,
            price=price,
            permId=perm_id,
            clientId=7,
            orderId=order_id,
            cumQty=shares,
            avgPrice=price,
            orderRef=ref,
        )
        self.fills.append(Fill(contract, execution, CommissionReport(), NOW))
        old = self.held.get(contract.conId)
        qty = signed + (old.position if old else 0.0)
        avg = price if old is None else (old.avgCost * old.position + price * signed) / qty
        self.held[contract.conId] = IbPosition(ACCOUNT, contract, qty, avg)

    def earlier_order(self, ticker: str, ref: str, status: str, perm_id: int) -> None:
        """A completed order of an earlier session, as reqCompletedOrders returns it."""
        order = ib_async.LimitOrder("BUY", 10, 50.0, orderRef=ref, permId=perm_id)
        self.completed.append(Trade(stock(ticker), order, OrderStatus(status=status), [], []))


def stock(ticker: str) -> Stock:
    return Stock(ticker, "SMART", "USD", conId=CONIDS[ticker])


def bracket(
    ref: str = "sig-aapl-1",
    ticker: str = "AAPL",
    side: str = "long",
    valid_sessions: int = 1,
    **levels: float,
) -> BracketOrder:
    default = (
        dict(entry=100.004, stop=97.996, take_profit=104.999)
        if side == "long"
        else dict(entry=50.02, stop=52.03, take_profit=45.01)
    )
    return BracketOrder(
        order_ref=ref,
        ticker=ticker,
        side=side,  # type: ignore[arg-type]
        quantity=100,
        session=date(2024, 7, 1),
        valid_sessions=valid_sessions,
        **{**default, **levels},
    )


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any real ib_async connection attempt fails the test: only FakeIB may be used."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a real IB connection was attempted")

    monkeypatch.setattr(ib_async.IB, "connect", refuse)
    monkeypatch.setattr(ib_async.IB, "connectAsync", refuse)
    monkeypatch.setattr(ib_async.client.Client, "connectAsync", refuse)


@pytest.fixture
def fake() -> FakeIB:
    """The only mocked part, injected at the adapter's boundary: no IB Gateway can run here."""
    return FakeIB()


def make_broker(fake: FakeIB) -> IbkrBroker:
    return IbkrBroker(
        "gw.local",
        4002,
        7,
        ACCOUNT,
        connect_timeout_s=3,
        request_timeout_s=0.5,
        ib_factory=lambda: fake,
    )


@pytest.fixture
def broker(fake: FakeIB) -> IbkrBroker:
    return make_broker(fake)


# --- construction and connection -------------------------------------------------------------


def test_default_factory_is_ib_async_and_nothing_connects_until_used() -> None:
    """Lazy: building the broker with the real default factory opens no connection (the guard
    fixture would fail the test), and the default is ib_async's own IB."""
    assert inspect.signature(IbkrBroker).parameters["ib_factory"].default is ib_async.IB
    broker = IbkrBroker("127.0.0.1", 4002, 1, ACCOUNT)
    assert isinstance(broker, Broker)
    broker.close()  # never connected: nothing to do


def test_connects_lazily_and_reconciles(fake: FakeIB, broker: IbkrBroker) -> None:
    assert fake.connects == []
    broker.find_refs(["x"])
    assert fake.connects == [
        dict(host="gw.local", port=4002, clientId=7, timeout=3, readonly=False, account=ACCOUNT)
    ]
    assert fake.RequestTimeout == 0.5
    assert fake.requests[:4] == [
        "reqAllOpenOrders",
        "reqCompletedOrders(apiOnly=False)",
        "reqExecutions",
        "reqPositions",
    ]
    broker.close()
    assert not fake.connected


def test_not_connected_raises_broker_error_naming_the_gateway(
    fake: FakeIB, broker: IbkrBroker
) -> None:
    fake.refuse_connect = True
    for call in (
        lambda: broker.place_bracket(bracket()),
        lambda: broker.find_refs(["a"]),
        broker.account,
        broker.positions,
    ):
        with pytest.raises(BrokerError, match="gw.local:4002") as info:
            call()
        assert ACCOUNT not in str(info.value) and "DU***67" in str(info.value)
    assert fake.placed == []


def test_reconnects_once_after_a_drop(fake: FakeIB, broker: IbkrBroker) -> None:
    assert broker.place_bracket(bracket("a")).status == "submitted"
    fake.disconnect()  # the socket dropped
    assert broker.place_bracket(bracket("b", "MSFT")).status == "submitted"
    assert len(fake.connects) == 2 and fake.requests.count("reqAllOpenOrders") == 2
    assert set(broker.find_refs(["a", "b"])) == {"a", "b"}
    fake.disconnect()
    fake.refuse_connect = True
    with pytest.raises(BrokerError, match="cannot connect"):
        broker.find_refs(["a"])
    assert len(fake.connects) == 3  # one attempt per request, no retry loop


# --- the current session ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "now, session",
    [
        ("2024-07-02T13:00:00+00:00", date(2024, 7, 1)),  # 09:00 New York: before the open
        ("2024-07-02T19:59:59+00:00", date(2024, 7, 1)),  # a second before the close
        ("2024-07-02T20:00:00+00:00", date(2024, 7, 2)),  # the close
        ("2024-07-03T17:30:00+00:00", date(2024, 7, 3)),  # after the 13:00 early close
        ("2024-07-05T03:00:00+00:00", date(2024, 7, 3)),  # the night after the holiday
        ("2024-07-06T15:00:00+00:00", date(2024, 7, 5)),  # a Saturday
        ("2024-07-08T12:00:00", date(2024, 7, 5)),  # naive: read as UTC
    ],
)
def test_last_closed_session_follows_the_exchange_calendar(now: str, session: date) -> None:
    assert last_closed_session(datetime.fromisoformat(now)) == session


def test_current_session_is_the_wall_clocks_not_the_pipelines(fake: FakeIB) -> None:
    """IBKR trades in real time: whatever session the pipeline runs, the current session is
    the calendar's last close at the adapter's clock, and finding it needs no connection."""
    broker = IbkrBroker(
        "gw.local",
        4002,
        7,
        ACCOUNT,
        ib_factory=lambda: fake,
        clock=lambda: datetime(2024, 7, 9, 21, 0, tzinfo=UTC),
    )
    assert broker.current_session(date(2023, 3, 10)) == date(2024, 7, 9)
    assert broker.current_session(date(2030, 1, 2)) == date(2024, 7, 9)
    assert fake.connects == []
    default = IbkrBroker("gw.local", 4002, 7, ACCOUNT, ib_factory=lambda: fake)
    assert default.current_session(date(2024, 1, 2)) == last_closed_session(datetime.now(UTC))


# --- bracket structure -----------------------------------------------------------------------


def test_long_bracket_structure(fake: FakeIB, broker: IbkrBroker) -> None:
    placed = broker.place_bracket(bracket())
    assert len(fake.placed) == 3
    (c1, parent), (c2, take), (c3, stop) = fake.placed
    assert c1.symbol == "AAPL" and c1.conId == CONIDS["AAPL"] and c1.exchange == "SMART"
    assert (parent.orderType, take.orderType, stop.orderType) == ("LMT", "LMT", "STP")
    assert (parent.transmit, take.transmit, stop.transmit) == (False, False, True)
    assert parent.parentId == 0 and take.parentId == stop.parentId == parent.orderId
    assert {o.orderRef for o in (parent, take, stop)} == {"sig-aapl-1"}
    assert {o.account for o in (parent, take, stop)} == {ACCOUNT}
    assert (parent.action, take.action, stop.action) == ("BUY", "SELL", "SELL")
    assert parent.totalQuantity == take.totalQuantity == stop.totalQuantity == 100
    # entry to the nearest tick, stop and take-profit toward the entry
    assert (parent.lmtPrice, stop.auxPrice, take.lmtPrice) == (100.0, 98.0, 104.99)
    assert (parent.tif, parent.goodTillDate, take.tif, stop.tif) == ("DAY", "", "GTC", "GTC")
    assert placed.status == "submitted" and placed.error is None
    assert placed.broker_order_ids == [str(o.orderId) for o in (parent, take, stop)]


def test_short_bracket_structure_with_gtd_entry(fake: FakeIB, broker: IbkrBroker) -> None:
    """TSLA is scripted with a 0.05 tick; two sessions after 2024-07-01 end on the 3 July early
    close (13:00 New York = 17:00 UTC)."""
    placed = broker.place_bracket(bracket("s1", "TSLA", "short", valid_sessions=2))
    (_, parent), (_, take), (_, stop) = fake.placed
    assert (parent.action, take.action, stop.action) == ("SELL", "BUY", "BUY")
    assert (parent.lmtPrice, stop.auxPrice, take.lmtPrice) == (50.0, 52.0, 45.05)
    assert (parent.tif, parent.goodTillDate) == ("GTD", "20240703 17:00:00 UTC")
    assert (take.tif, stop.tif, stop.transmit, take.parentId) == (
        "GTC",
        "GTC",
        True,
        parent.orderId,
    )
    assert placed.status == "submitted"


def test_prices_on_tick_and_fallback_tick(fake: FakeIB, broker: IbkrBroker) -> None:
    assert round_to_tick(10.006, 0.01, "nearest") == 10.01
    assert round_to_tick(10.001, 0.01, "up") == 10.01
    assert round_to_tick(10.019, 0.01, "down") == 10.01
    levels = bracket(entry=20.0, stop=19.03, take_profit=21.12)
    assert bracket_prices(levels, 0.05) == (20.0, 19.05, 21.1)
    # PENNY's contract details carry no min tick: 0.01 is used
    broker.place_bracket(bracket("p", "PENNY", entry=3.333, stop=3.001, take_profit=3.999))
    prices = [o.lmtPrice if o.orderType == "LMT" else o.auxPrice for _, o in fake.placed]
    assert prices == [3.33, 3.99, 3.01]


def test_levels_collapsing_on_tick_or_unknown_ticker_are_errors_not_orders(
    fake: FakeIB, broker: IbkrBroker
) -> None:
    collapsed = broker.place_bracket(bracket("c", "TSLA", entry=50.0, stop=49.97, take_profit=51))
    unknown = broker.place_bracket(bracket("u", "ZZZZ"))
    assert collapsed.status == unknown.status == "error"
    assert "collapse" in (collapsed.error or "") and "ZZZZ" in (unknown.error or "")
    assert fake.placed == []


# --- failures of one order -------------------------------------------------------------------


def test_duplicate_order_id_is_retried_once_with_fresh_ids(
    fake: FakeIB, broker: IbkrBroker
) -> None:
    fake.duplicate_id_errors = 1
    placed = broker.place_bracket(bracket())
    assert placed.status == "submitted" and len(fake.placed) == 6
    first, second = [o.orderId for _, o in fake.placed[:3]], [o.orderId for _, o in fake.placed[3:]]
    assert placed.broker_order_ids == [str(i) for i in second] and not set(first) & set(second)
    assert [o.parentId for _, o in fake.placed[3:]] == [0, second[0], second[0]]


def test_duplicate_order_id_twice_is_an_error(fake: FakeIB, broker: IbkrBroker) -> None:
    fake.duplicate_id_errors = 2
    placed = broker.place_bracket(bracket())
    assert placed.status == "error" and "103" in (placed.error or "")
    assert len(fake.placed) == 6  # one retry only


def test_rejection_201_is_an_answer_and_the_other_orders_still_go(
    fake: FakeIB, broker: IbkrBroker
) -> None:
    """The 201 arrives only on the next network update, as from the real gateway."""
    fake.reject = {"MSFT"}
    results = [
        broker.place_bracket(bracket(ref, ticker))
        for ref, ticker in (("a", "AAPL"), ("m", "MSFT"), ("t", "TSLA"))
    ]
    assert [r.status for r in results] == ["submitted", "rejected", "submitted"]
    assert "201" in (results[1].error or "") and "NOT ACCEPTED" in (results[1].error or "")
    assert len(fake.placed) == 9
    assert broker.find_refs(["m"])["m"].state == "cancelled"
    assert broker.find_refs(["a", "t"]).keys() == {"a", "t"}


def test_rejected_child_cancels_the_surviving_legs(fake: FakeIB, broker: IbkrBroker) -> None:
    """All-or-nothing: when IB kills only the stop, the entry must not work unprotected."""
    broker.place_bracket(bracket("warm-up"))  # contract cached
    real_transmit = fake._transmit

    def stop_only(contract: Contract, parent_id: int) -> None:
        real_transmit(contract, parent_id)
        stop_trade = fake._group(parent_id)[-1]
        stop_trade.orderStatus.status = "Cancelled"
        fake.errorEvent.emit(stop_trade.order.orderId, 201, "Order rejected - stop price", contract)

    fake._transmit = stop_only  # type: ignore[method-assign]
    placed = broker.place_bracket(bracket("k"))
    assert placed.status == "rejected"
    parent_id = int(placed.broker_order_ids[0])
    assert parent_id in fake.cancelled and fake.trades[parent_id].isDone()


def test_same_ref_is_sent_once_per_broker(fake: FakeIB, broker: IbkrBroker) -> None:
    first, again = broker.place_bracket(bracket()), broker.place_bracket(bracket())
    assert first == again and len(fake.placed) == 3


# --- idempotency: find_refs ------------------------------------------------------------------


def test_find_refs_open_orders(fake: FakeIB, broker: IbkrBroker) -> None:
    placed = broker.place_bracket(bracket())
    found = broker.find_refs(["sig-aapl-1", "never-sent"])
    assert list(found) == ["sig-aapl-1"]
    assert found["sig-aapl-1"].state == "open"
    assert found["sig-aapl-1"].broker_order_ids == placed.broker_order_ids


def test_find_refs_completed_orders_and_executions_of_earlier_sessions(fake: FakeIB) -> None:
    fake.earlier_order("AAPL", "done", "Filled", perm_id=501)
    fake.earlier_order("MSFT", "gone", "Cancelled", perm_id=502)
    fake.execution(stock("TSLA"), "exec-only", 10, 50.0, order_id=0, perm_id=503)
    found = make_broker(fake).find_refs(["done", "gone", "exec-only", "other"])
    assert {r: k.state for r, k in found.items()} == {
        "done": "filled",
        "gone": "cancelled",
        "exec-only": "executed",
    }
    assert found["done"].broker_order_ids == ["501"]


def test_partial_fill_is_known_so_nothing_is_resent(fake: FakeIB, broker: IbkrBroker) -> None:
    placed = broker.place_bracket(bracket())
    fake.fill(int(placed.broker_order_ids[0]), 40, 100.0)
    assert broker.find_refs(["sig-aapl-1"])["sig-aapl-1"].state == "partially_filled"
    # a re-run (a new broker, a new connection) sees it too
    rerun = make_broker(fake)
    assert rerun.find_refs(["sig-aapl-1"])["sig-aapl-1"].state == "partially_filled"
    fake.fill(int(placed.broker_order_ids[0]), 60, 100.0)
    assert rerun.find_refs(["sig-aapl-1"])["sig-aapl-1"].state == "executed"  # exits working


# --- account, positions, cancel, modify ------------------------------------------------------


def test_account_snapshot_and_positions(fake: FakeIB, broker: IbkrBroker) -> None:
    """Open risk: AAPL 100 @ 100 with its stop at 98 -> 200; MSFT 10 @ 400 with no stop -> the
    10% fallback, 400; the working TSLA short entry 100 x |50 - 52| -> 200."""
    aapl = broker.place_bracket(bracket())
    fake.fill(int(aapl.broker_order_ids[0]), 100, 100.0)
    fake.execution(stock("MSFT"), "", 10, 400.0)
    broker.place_bracket(bracket("tsla-short", "TSLA", "short"))
    snap = broker.account()
    assert (snap.equity, snap.buying_power, snap.excess_liquidity) == (100000.5, 400000, 80000)
    assert snap.open_positions == 2
    assert snap.open_risk == pytest.approx(200 + 400 + 200)
    held = {p.ticker: p for p in broker.positions()}
    assert held["AAPL"].quantity == 100 and held["AAPL"].average_price == 100.0
    assert held["AAPL"].order_ref == "sig-aapl-1" and held["MSFT"].order_ref is None
    assert "TSLA" not in held


def test_stop_past_breakeven_risks_nothing(fake: FakeIB, broker: IbkrBroker) -> None:
    placed = broker.place_bracket(bracket())
    fake.fill(int(placed.broker_order_ids[0]), 100, 100.0)
    broker.modify_stop("sig-aapl-1", 101.0)
    assert broker.account().open_risk == 0.0


def test_account_missing_tags_is_a_broker_error(fake: FakeIB, broker: IbkrBroker) -> None:
    fake.summary = fake.summary[:1]
    with pytest.raises(BrokerError, match="BuyingPower"):
        broker.account()


def test_cancel_every_working_order_of_the_ref(fake: FakeIB, broker: IbkrBroker) -> None:
    keep = broker.place_bracket(bracket("keep", "MSFT"))
    placed = broker.place_bracket(bracket())
    broker.cancel("sig-aapl-1")
    assert sorted(fake.cancelled) == sorted(int(i) for i in placed.broker_order_ids)
    assert broker.find_refs(["sig-aapl-1"])["sig-aapl-1"].state == "cancelled"
    assert broker.find_refs(["keep"])["keep"].state == "open" and keep.status == "submitted"
    broker.cancel("unknown")  # nothing working: nothing to do


def test_modify_stop_replaces_the_same_order_on_tick(fake: FakeIB, broker: IbkrBroker) -> None:
    placed = broker.place_bracket(bracket())
    stop_id = int(placed.broker_order_ids[2])
    broker.modify_stop("sig-aapl-1", 99.004)
    contract, order = fake.placed[-1]
    assert len(fake.placed) == 4 and order.orderId == stop_id and contract.symbol == "AAPL"
    assert order.orderType == "STP" and order.auxPrice == 99.01  # a SELL stop rounds up
    assert fake.trades[stop_id].order.auxPrice == 99.01
    with pytest.raises(BrokerError, match="no working stop"):
        broker.modify_stop("unknown", 1.0)

"""Interactive Brokers through `ib_async` (2.1): the live implementation of `Broker`.

Design notes (see the ib_async 2.1.0 source):

* Lazy connection: the gateway is contacted on the first request, reconnected once when a request
  finds it dropped, and every connection-level failure becomes `BrokerError` naming host:port (the
  account id only masked). On each connect we reconcile: all open orders (every client id),
  completed orders, executions and positions, so a re-run sees what an earlier run left.
* One order's failure is an answer, never an exception: IB reports rejections asynchronously
  through `errorEvent` (the wrapper also cancels the Trade), so after placing a bracket we wait,
  bounded by `request_timeout_s`, until IB acknowledged all three legs or reported an error. A
  bracket is all-or-nothing: after an error the surviving legs are cancelled. Error 103 (duplicate
  order id) is retried once with fresh ids. `modify_stop` has no return value, so a missing stop
  or IB's refusal of the change raises BrokerError.
* Brackets come from `IB.bracketOrder` (parent LMT transmit=False, take-profit LMT transmit=False,
  stop STP transmit=True, children with parentId), then carry our `orderRef`, the account and the
  time in force: the entry DAY for one session, else GTD to the close of its last session; the
  children GTC. A stop-entry (`entry_type='stop'`) swaps the parent for a `StopOrder` (STP at
  the entry; same id, children and flags). Brackets sharing an `oca_group` put their PARENTS in
  that IB OCA group with ocaType 1 (cancel the others, with block: no overfill), so the first
  entry fill cancels the other entries and, with them, their children; the children keep only
  the bracket's own parent/child OCA handling. Stop-losses and take-profits are told apart from
  a STP/LMT parent by their parentId.
* Prices sit on the contract's min tick (`reqContractDetails`, 0.01 when missing): the entry to the
  nearest tick (the outcome rules fill at E; off by at most half a tick), a stop-entry's trigger
  toward the market (a buy stop down, a sell stop up: the trigger is never worse than planned, so
  the risk never widens, at the cost of triggering up to a tick early), the stop and the
  take-profit toward the entry. The stop's rounding never widens the risk (so per-share risk is at
  most R plus the entry's half tick); a take-profit rounded toward the entry is reached whenever
  the planned target is. Levels that collapse onto one tick are an 'error', not an order.
* Open risk: per position |qty| x (avg cost - its working stop), floored at zero (a stop past
  breakeven risks nothing); a position without a stop counts `unprotected_risk_fraction` (10%,
  about a 2 x ATR stop on a momentum stock, deliberately on the high side) of its cost; working
  entries count remaining qty x |limit (or stop-entry trigger) - stop|, an OCA group its largest
  entry only (at most one of them can fill).
* Spreads (issue 11, `place_spread`): a BAG combo (BUY the near strike, SELL the far one, ratio 1,
  SMART) as one LMT BUY at the net debit on the cent grid (DAY), plus an attached GTC MKT SELL of
  the same combo conditioned on the underlying's last price through the close trigger (orderRef
  `<ref>-close`); sent like a bracket (entry transmit=False, the close transmits both). Option
  legs stay out of `positions()` (the stock book); `account()` counts a spread's net premium
  (working: remaining x limit x 100) as open risk.
* The current session is the exchange calendar's last closed session at the wall clock
  (`clock`): IBKR trades in real time, so a plan of an older session is stale there whatever
  partition the pipeline runs (the caller expires it; `place_bracket` itself does not judge).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd
from ib_async import (
    IB,
    Bag,
    ComboLeg,
    Contract,
    Fill,
    LimitOrder,
    MarketOrder,
    Option,
    Order,
    OrderStatus,
    PriceCondition,
    Stock,
    StopOrder,
    Trade,
    util,
)

from breakout_assets.core.journal import Purpose, TradeFill, combo_fill
from breakout_assets.core.options import (
    CLOSE_SUFFIX,
    CONTRACT_MULTIPLIER,
    SpreadOrder,
    close_ref,
)
from breakout_assets.partitions import nyse_calendar, nyse_sessions
from breakout_assets.resources.broker.base import (
    AccountSnapshot,
    BracketOrder,
    BrokerError,
    KnownOrder,
    PlacedBracket,
    Position,
)

DEFAULT_TICK = 0.01
UNPROTECTED_RISK_FRACTION = 0.10
DUPLICATE_ORDER_ID, ORDER_REJECTED = 103, 201
# Order messages that leave the order working: 399 (held until the open), 404 (locating shares
# for a short), 10167 (delayed data) and the 2100-2199 informational range.
_INFO_CODES = frozenset({399, 404, 10167})
_ACKED = frozenset({"PreSubmitted", "Submitted", "Filled", "ApiPending"})
_KILLED = frozenset({"Cancelled", "ApiCancelled"})
_DEAD = _KILLED | {"Inactive"}
_SUMMARY_TAGS = ("NetLiquidation", "BuyingPower", "ExcessLiquidity")
COMBO_TICK = 0.01  # SMART option combos take cent increments
PRICE_TRIGGER_LAST = 2  # PriceCondition.triggerMethod: the last traded price


def round_to_tick(price: float, tick: float, mode: str) -> float:
    """`mode` is 'nearest', 'up' or 'down'; Decimal so that 0.01 steps land exactly."""
    step = Decimal(str(tick))
    rounding = {"nearest": ROUND_HALF_UP, "up": ROUND_CEILING, "down": ROUND_FLOOR}[mode]
    return float((Decimal(str(price)) / step).to_integral_value(rounding=rounding) * step)


def bracket_prices(order: BracketOrder, tick: float) -> tuple[float, float, float]:
    """(entry, stop, take-profit) on tick; refuses levels that collapse onto one tick. A
    stop-entry's trigger rounds toward the market (never a worse trigger than planned)."""
    up, down = ("up", "down") if order.side == "long" else ("down", "up")
    entry = round_to_tick(order.entry, tick, "nearest" if order.entry_type == "limit" else down)
    stop, take = round_to_tick(order.stop, tick, up), round_to_tick(order.take_profit, tick, down)
    sign = 1 if order.side == "long" else -1
    if not (sign * (entry - stop) > 0 and sign * (take - entry) > 0):
        raise ValueError(
            f"levels collapse on tick {tick}: stop {stop}, entry {entry}, take-profit {take}"
        )
    return entry, stop, take


def good_till(session: date, valid_sessions: int) -> str:
    """IB's GTD stamp: the close (early closes included) of the entry's last working session."""
    first = session + timedelta(days=1)
    after = nyse_sessions(first, first + timedelta(days=2 * valid_sessions + 10))
    close = nyse_calendar().session_close(pd.Timestamp(after[valid_sessions - 1]))
    return util.formatIBDatetime(close.to_pydatetime())


def last_closed_session(now: datetime) -> date:
    """The latest NYSE session whose close (early closes included) is at or before `now`."""
    at = pd.Timestamp(now)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    today = at.tz_convert("America/New_York").date()
    calendar = nyse_calendar()
    for session in reversed(nyse_sessions(today - timedelta(days=14), today)):
        if calendar.session_close(pd.Timestamp(session)) <= at:
            return session
    raise BrokerError(f"no NYSE session closed in the two weeks before {now}")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _order_id(order: Order) -> int:
    return order.orderId or order.permId  # orders from TWS or earlier sessions may lack orderId


def _index(trades: Iterable[Trade], fills: Iterable[Fill]) -> dict[str, KnownOrder]:
    """What IB holds per orderRef. States: 'partially_filled' (a working order has fills),
    'executed' (fills, exits still working), 'open', 'filled' (done, filled), 'cancelled'."""
    ids: dict[str, set[int]] = defaultdict(set)
    flags: dict[str, set[str]] = defaultdict(set)
    open_ids: dict[str, set[int]] = defaultdict(set)
    for trade in trades:
        ref = trade.order.orderRef
        if not ref:
            continue
        ids[ref].add(_order_id(trade.order))
        status = trade.orderStatus.status
        if status in OrderStatus.DoneStates:
            flags[ref].add("filled" if status == OrderStatus.Filled else "cancelled")
        else:
            flags[ref].add("open")
            open_ids[ref].add(_order_id(trade.order))
            if float(trade.orderStatus.filled) > 0:
                flags[ref].add("partial")
    for fill in fills:
        ref = fill.execution.orderRef
        if not ref:
            continue
        ids[ref].add(fill.execution.orderId or fill.execution.permId)
        flags[ref].add("executed")
        if (fill.execution.orderId or fill.execution.permId) in open_ids[ref]:
            flags[ref].add("partial")
    return {
        ref: KnownOrder(ref, [str(i) for i in sorted(ids[ref])], _state(f))
        for ref, f in flags.items()
    }


def _state(flags: set[str]) -> str:
    if "partial" in flags:
        return "partially_filled"
    if "open" in flags:
        return "executed" if "executed" in flags else "open"
    if "filled" in flags:
        return "filled"
    return "executed" if "executed" in flags else "cancelled"


def _refs_by_conid(trades: Iterable[Trade], fills: Iterable[Fill]) -> dict[int, str]:
    """The bracket behind each contract: its working orders, overridden by its fills."""
    refs = {t.contract.conId: t.order.orderRef for t in trades if t.order.orderRef}
    for fill in sorted(fills, key=lambda f: f.execution.time):
        if fill.execution.orderRef:
            refs[fill.contract.conId] = fill.execution.orderRef
    return refs


class IbkrBroker:
    """`Broker` against IB Gateway/TWS. `ib_factory` is the seam where tests inject a fake IB."""

    name = "ibkr"

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        account: str,
        connect_timeout_s: float = 10.0,
        request_timeout_s: float = 10.0,
        ib_factory: Callable[[], Any] = IB,
        unprotected_risk_fraction: float = UNPROTECTED_RISK_FRACTION,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.host, self.port, self.client_id = host, int(port), int(client_id)
        self.account_id = account
        self.connect_timeout_s, self.request_timeout_s = connect_timeout_s, request_timeout_s
        self.unprotected_risk_fraction = unprotected_risk_fraction
        self._factory = ib_factory
        self._clock = clock
        self._conn: Any = None
        self._contracts: dict[str, tuple[Contract, float]] = {}
        self._reconciled: dict[str, KnownOrder] = {}
        self._submitted: dict[str, PlacedBracket] = {}

    @property
    def where(self) -> str:
        acct = self.account_id
        masked = f"{acct[:2]}***{acct[-2:]}" if len(acct) > 4 else "***"
        return f"{self.host}:{self.port} (client id {self.client_id}, account {masked})"

    # -- connection ---------------------------------------------------------------------------

    def _ib(self) -> Any:
        """The connected IB, connecting (or reconnecting once after a drop) and reconciling."""
        ib = self._conn
        if ib is not None and ib.isConnected():
            return ib
        if ib is None:
            ib = self._conn = self._factory()
            ib.RequestTimeout = self.request_timeout_s  # bounds every blocking ib_async request
        try:
            ib.connect(
                self.host,
                self.port,
                self.client_id,
                timeout=self.connect_timeout_s,
                account=self.account_id,
                readonly=False,
            )
        except Exception as exc:
            raise BrokerError(
                f"cannot connect to IB Gateway/TWS at {self.where}: {type(exc).__name__}: {exc}"
            ) from exc
        if not ib.isConnected():
            raise BrokerError(f"IB Gateway/TWS at {self.where} did not become ready")
        with self._guard("reconciliation on connect"):
            ib.reqAllOpenOrders()  # all client ids, so orders of an earlier run are seen
            completed = ib.reqCompletedOrders(apiOnly=False)
            fills = ib.reqExecutions()
            ib.reqPositions()
            self._reconciled = _index([*ib.openTrades(), *completed], fills)
        return ib

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """A failed request (timeout, dropped socket) must never read as 'nothing there'."""
        try:
            yield
        except BrokerError:
            raise
        except Exception as exc:
            raise BrokerError(
                f"IB at {self.where}: {what} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def sync(self, through: date) -> None:
        """Nothing to do: IBKR itself is the record of fills and positions."""

    def current_session(self, through: date) -> date:
        """The last closed session at the wall clock; `through` changes nothing here."""
        return last_closed_session(self._clock())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None

    # -- orders -------------------------------------------------------------------------------

    def _contract(self, ib: Any, ticker: str) -> tuple[Contract, float]:
        if ticker not in self._contracts:
            contract = Stock(ticker, "SMART", "USD")
            qualified = ib.qualifyContracts(contract)
            if not qualified or qualified[0] is None or not contract.conId:
                raise ValueError(f"IB knows no unique US stock {ticker}")
            details = ib.reqContractDetails(contract)
            tick = details[0].minTick if details and details[0].minTick > 0 else DEFAULT_TICK
            self._contracts[ticker] = (contract, float(tick))
        return self._contracts[ticker]

    def place_bracket(self, order: BracketOrder) -> PlacedBracket:
        if order.order_ref in self._submitted:  # never twice from one broker, whatever the caller
            return self._submitted[order.order_ref]
        ib = self._ib()
        ref = order.order_ref
        try:
            contract, tick = self._contract(ib, order.ticker)
            entry, stop, take = bracket_prices(order, tick)
            tif = (
                ("DAY", "")
                if order.valid_sessions <= 1
                else ("GTD", good_till(order.session, order.valid_sessions))
            )
        except Exception as exc:
            return PlacedBracket(ref, "error", error=f"{order.ticker}: {exc}")
        for attempt in (1, 2):
            legs: list[Order] = []
            try:
                bracket = ib.bracketOrder(
                    "BUY" if order.side == "long" else "SELL", order.quantity, entry, take, stop
                )
                if order.entry_type == "stop":  # same id and flags, STP at the entry
                    limit = bracket.parent
                    bracket = bracket._replace(
                        parent=StopOrder(
                            limit.action,
                            limit.totalQuantity,
                            entry,
                            orderId=limit.orderId,
                            transmit=limit.transmit,
                        )
                    )
                legs = list(bracket)
                bracket.parent.tif, bracket.parent.goodTillDate = tif
                if order.oca_group is not None:  # the parents only: children stay the bracket's
                    bracket.parent.ocaGroup, bracket.parent.ocaType = order.oca_group, 1
                for leg in legs:
                    leg.orderRef, leg.account = ref, self.account_id
                bracket.takeProfit.tif = bracket.stopLoss.tif = "GTC"
                errors = self._send(ib, contract, legs, cancel_on_error=True)
            except Exception as exc:
                return PlacedBracket(
                    ref, "error", [str(o.orderId) for o in legs], f"{type(exc).__name__}: {exc}"
                )
            ids = [str(o.orderId) for o in legs]
            if not errors:
                self._submitted[ref] = PlacedBracket(ref, "submitted", ids)
                return self._submitted[ref]
            codes = {code for code, _ in errors}
            if DUPLICATE_ORDER_ID in codes and attempt == 1:
                continue  # bracketOrder draws fresh ids from ib.client.getReqId()
            message = "; ".join(f"IB {code}: {text}" for code, text in errors)
            status = "rejected" if ORDER_REJECTED in codes else "error"
            return PlacedBracket(ref, status, ids, message)
        raise AssertionError("unreachable")

    # -- spreads (issue 11) ---------------------------------------------------------------------

    def _option(self, ib: Any, ticker: str, expiry: date, strike: float, right: str) -> Contract:
        contract = Option(
            ticker,
            expiry.strftime("%Y%m%d"),
            strike,
            right,
            "SMART",
            multiplier=str(CONTRACT_MULTIPLIER),
            currency="USD",
        )
        qualified = ib.qualifyContracts(contract)
        if not qualified or qualified[0] is None or not contract.conId:
            raise ValueError(f"IB knows no unique {ticker} {expiry} {strike:g} {right} option")
        return contract

    def spread_combo(self, ib: Any, order: SpreadOrder) -> tuple[Contract, Contract]:
        """(the BAG: BUY the long strike, SELL the short one, ratio 1 each, SMART; the stock)."""
        underlying, _ = self._contract(ib, order.ticker)
        near = self._option(ib, order.ticker, order.expiry, order.long_strike, order.right)
        far = self._option(ib, order.ticker, order.expiry, order.short_strike, order.right)
        bag = Bag(
            symbol=order.ticker,
            currency="USD",
            exchange="SMART",
            comboLegs=[
                ComboLeg(conId=near.conId, ratio=1, action="BUY", exchange="SMART"),
                ComboLeg(conId=far.conId, ratio=1, action="SELL", exchange="SMART"),
            ],
        )
        return bag, underlying

    def place_spread(self, order: SpreadOrder) -> PlacedBracket:
        """One BAG limit order (BUY `contracts` at the net debit, DAY, orderRef = the plan's ref)
        and its conditional close (orderRef `<ref>-close`): a GTC MARKET SELL of the same combo
        attached to the entry (parentId: it works only once the entry fills and dies with an
        unfilled entry), whose PriceCondition watches the underlying's last price through
        `close_trigger` (up for calls, down for puts).

        Sent like a bracket: the entry with transmit=False, the close transmitting both, so IB
        never works an entry without its close (and a marketable entry cannot fill before the
        close is attached). A refusal of either cancels both: all-or-nothing.

        Why a market order: when the condition fires the spread must go, and a vertical is worth
        between 0 and its width, so selling at any price never loses more than the debit paid
        (the defined risk); a limit could be left behind by a fast market. Conditions are
        evaluated in regular trading hours only (conditionsIgnoreRth False).

        Idempotent: our refs are searched first (open, completed, executed). A re-run sends only
        what is missing: nothing when both exist; only the close when the entry exists (a crash
        between the two placeOrder calls), attached to the entry while it still works at this
        client id, standalone once it has filled; nothing when the entry ended unfilled.
        """
        ref, cref = order.order_ref, close_ref(order.order_ref)
        if ref in self._submitted:  # never twice from one broker, whatever the caller
            return self._submitted[ref]
        ib = self._ib()
        known = self.find_refs([ref, cref])
        entry_known, close_known = known.get(ref), known.get(cref)
        if close_known is not None:
            entry_ids = entry_known.broker_order_ids if entry_known else []
            ids = [*entry_ids, *close_known.broker_order_ids]
            if entry_known is None:
                return PlacedBracket(
                    ref, "error", ids, f"{cref} exists at IB without its entry: nothing sent"
                )
            self._submitted[ref] = PlacedBracket(ref, "submitted", ids)
            return self._submitted[ref]
        if entry_known is not None and entry_known.state == "cancelled":
            return PlacedBracket(
                ref,
                "error",
                entry_known.broker_order_ids,
                f"{ref} ended unfilled at IB: no close sent",
            )
        try:
            bag, underlying = self.spread_combo(ib, order)
            _, tick = self._contract(ib, order.ticker)
            debit = round_to_tick(order.limit_debit, COMBO_TICK, "nearest")
            width = abs(order.short_strike - order.long_strike)
            if not 0 < debit < width:
                raise ValueError(f"the debit {debit} on tick is not inside (0, {width:g})")
            condition = PriceCondition(
                isMore=order.close_when_above,
                price=round_to_tick(order.close_trigger, tick, "nearest"),
                conId=underlying.conId,
                exch="SMART",
                triggerMethod=PRICE_TRIGGER_LAST,
            )
        except Exception as exc:
            return PlacedBracket(ref, "error", error=f"{order.ticker}: {exc}")
        if entry_known is None:
            return self._send_spread(ib, bag, order, debit, condition)
        parent_id = self._parent_id(ib, ref)
        if parent_id == 0 and entry_known.state == "open":  # unfilled, not ours to attach to
            return PlacedBracket(
                ref,
                "error",
                entry_known.broker_order_ids,
                f"{ref} works at IB under another client id: its close cannot be attached "
                f"(a standalone close could fire before the entry fills); nothing sent",
            )
        close = self._close_order(order, condition, parent_id)
        try:
            close.orderId = ib.client.getReqId()
            errors = self._send(ib, bag, [close], cancel_on_error=True)
        except Exception as exc:
            errors = [(0, f"{type(exc).__name__}: {exc}")]
        ids = [*entry_known.broker_order_ids, str(close.orderId)]
        return self._spread_answer(ref, ids, errors)

    def _close_order(self, order: SpreadOrder, condition: PriceCondition, parent_id: int) -> Order:
        return MarketOrder(
            "SELL",
            order.contracts,
            orderRef=close_ref(order.order_ref),
            account=self.account_id,
            tif="GTC",
            parentId=parent_id,
            transmit=True,
            conditions=[condition],
            conditionsCancelOrder=False,
        )

    def _send_spread(
        self,
        ib: Any,
        bag: Contract,
        order: SpreadOrder,
        debit: float,
        condition: PriceCondition,
    ) -> PlacedBracket:
        """Entry (transmit=False) and its attached close (transmits both); 103 retried once."""
        ref = order.order_ref
        for attempt in (1, 2):
            legs: list[Order] = []
            try:
                entry = LimitOrder(
                    "BUY",
                    order.contracts,
                    debit,
                    orderRef=ref,
                    account=self.account_id,
                    tif="DAY",
                    transmit=False,
                )
                entry.orderId = ib.client.getReqId()
                close = self._close_order(order, condition, entry.orderId)
                close.orderId = ib.client.getReqId()
                legs = [entry, close]
                errors = self._send(ib, bag, legs, cancel_on_error=True)
            except Exception as exc:
                return PlacedBracket(
                    ref, "error", [str(o.orderId) for o in legs], f"{type(exc).__name__}: {exc}"
                )
            if DUPLICATE_ORDER_ID in {c for c, _ in errors} and attempt == 1:
                continue
            return self._spread_answer(ref, [str(o.orderId) for o in legs], errors)
        raise AssertionError("unreachable")

    def _spread_answer(
        self, ref: str, ids: list[str], errors: list[tuple[int, str]]
    ) -> PlacedBracket:
        if not errors:
            self._submitted[ref] = PlacedBracket(ref, "submitted", ids)
            return self._submitted[ref]
        message = "; ".join(f"IB {code}: {text}" for code, text in errors)
        status = "rejected" if ORDER_REJECTED in {c for c, _ in errors} else "error"
        return PlacedBracket(ref, status, ids, message)

    def _parent_id(self, ib: Any, ref: str) -> int:
        """The working entry's orderId when this client id placed it (a child can attach to
        it), else 0: the close goes standalone (the entry has filled)."""
        with self._guard(f"entry search for {ref}"):
            for trade in ib.openTrades():
                o = trade.order
                if o.orderRef == ref and o.parentId == 0 and o.clientId == self.client_id:
                    return int(o.orderId)
        return 0

    def _send(
        self,
        ib: Any,
        contract: Contract,
        orders: Sequence[Order],
        *,
        cancel_on_error: bool,
        modify: bool = False,
    ) -> list[tuple[int, str]]:
        """Place `orders` and wait (bounded) for IB's verdict, which arrives asynchronously."""
        ids = {o.orderId for o in orders}
        errors: list[tuple[int, str]] = []

        def on_error(req_id: int, code: int, text: str, _contract: Any = None) -> None:
            if req_id in ids and code not in _INFO_CODES and not 2100 <= code < 2200:
                errors.append((code, text))

        trades: list[Trade] = []
        ib.errorEvent += on_error
        try:
            for o in orders:
                trades.append(ib.placeOrder(contract, o))
            deadline, waited = time.monotonic() + self.request_timeout_s, False
            while not errors and not any(t.orderStatus.status in _KILLED for t in trades):
                acked = all(t.orderStatus.status in _ACKED for t in trades)
                left = deadline - time.monotonic()
                if (acked and (waited or not modify)) or left <= 0:
                    break
                ib.waitOnUpdate(timeout=left)
                waited = True
        except Exception:
            if cancel_on_error:
                self._cancel_trades(ib, trades)
            raise
        finally:
            ib.errorEvent -= on_error
        seen = {code for code, _ in errors}
        for t in trades:  # errors ib_async logged on a new order's Trade but we did not hear
            for entry in [] if modify else t.log:
                if entry.errorCode and entry.errorCode not in seen and entry.status in _DEAD:
                    errors.append((entry.errorCode, entry.message))
                    seen.add(entry.errorCode)
            if not errors and t.orderStatus.status in _KILLED:
                errors.append((0, f"order {t.order.orderId} {t.orderStatus.status} by IB"))
        if errors and cancel_on_error:
            self._cancel_trades(ib, trades)
        return errors

    @staticmethod
    def _cancel_trades(ib: Any, trades: Iterable[Trade]) -> None:
        for t in trades:
            if not t.isDone():
                try:
                    ib.cancelOrder(t.order)
                except Exception:  # best effort: the error being reported matters more
                    pass

    def find_refs(self, order_refs: list[str]) -> dict[str, KnownOrder]:
        ib = self._ib()
        with self._guard("order search"):
            fresh = _index(
                [*ib.openTrades(), *ib.reqCompletedOrders(apiOnly=False)], ib.reqExecutions()
            )
        known = {**self._reconciled, **fresh}
        return {ref: known[ref] for ref in order_refs if ref in known}

    def cancel(self, order_ref: str) -> None:
        """Cancel every working order of the ref (entry and exits); a position stays as it is."""
        ib = self._ib()
        with self._guard(f"cancel of {order_ref}"):
            self._cancel_trades(ib, [t for t in ib.openTrades() if t.order.orderRef == order_ref])

    def modify_stop(self, order_ref: str, new_stop: float) -> None:
        """Move the working stop (same orderId). No return channel, so a missing stop or IB's
        refusal raises BrokerError."""
        # toward the position: a SELL stop (long) rounds up, a BUY stop (short) down
        self._modify_exit(order_ref, "STP", "auxPrice", new_stop, sell_rounds="up")

    def modify_take_profit(self, order_ref: str, new_take_profit: float) -> None:
        """Move the working take-profit limit (same orderId), rounded toward the entry."""
        # a SELL take-profit (long) rounds down, a BUY take-profit (short) up
        self._modify_exit(order_ref, "LMT", "lmtPrice", new_take_profit, sell_rounds="down")

    def _modify_exit(
        self, order_ref: str, order_type: str, field: str, price: float, sell_rounds: str
    ) -> None:
        """Re-price one kind of child of the bracket (children carry a parentId; a stop-entry
        or limit parent does not)."""
        what = "stop" if order_type == "STP" else "take-profit"
        ib = self._ib()
        with self._guard(f"{what} modification of {order_ref}"):
            children = [
                t
                for t in ib.openTrades()
                if t.order.orderRef == order_ref
                and t.order.orderType == order_type
                and t.order.parentId
            ]
            if not children:
                raise BrokerError(f"no working {what} order for {order_ref} at {self.where}")
            for trade in children:
                _, tick = self._contract(ib, trade.contract.symbol)
                buy_rounds = "down" if sell_rounds == "up" else "up"
                setattr(
                    trade.order,
                    field,
                    round_to_tick(
                        price, tick, sell_rounds if trade.order.action == "SELL" else buy_rounds
                    ),
                )
                errors = self._send(
                    ib, trade.contract, [trade.order], cancel_on_error=False, modify=True
                )
                if errors:
                    raise BrokerError(f"IB refused the {what} of {order_ref}: {errors}")

    def close_position(self, order_ref: str) -> None:
        """Expiry: cancel the bracket's exit orders, then close at market (ref `<ref>-EXP`)."""
        ib = self._ib()
        with self._guard(f"closing {order_ref}"):
            held = {p.order_ref: p for p in self.positions()}
            self.cancel(order_ref)
            position = held.get(order_ref)
            if position is None or position.quantity == 0:
                return
            contract, _ = self._contract(ib, position.ticker)
            order = MarketOrder(
                "SELL" if position.quantity > 0 else "BUY",
                abs(position.quantity),
                orderRef=f"{order_ref}-EXP",
                account=self.account_id,
                tif="DAY",
            )
            order.orderId = ib.client.getReqId()
            errors = self._send(ib, contract, [order], cancel_on_error=False, modify=False)
            if errors:
                raise BrokerError(f"IB refused to close {order_ref}: {errors}")

    # -- account ------------------------------------------------------------------------------

    def _ib_positions(self, ib: Any, sec_type: str = "STK") -> list[Any]:
        """Held positions of one security type: stocks are the bracket book, option legs the
        spread book (tracked by its own table, so `positions()` lists stocks only)."""
        return [
            p
            for p in ib.positions(self.account_id)
            if float(p.position) != 0 and (p.contract.secType or "STK") == sec_type
        ]

    def positions(self) -> list[Position]:
        ib = self._ib()
        with self._guard("positions"):
            held = self._ib_positions(ib)
            refs = _refs_by_conid(ib.openTrades(), ib.reqExecutions())
        return [
            Position(
                p.contract.symbol,
                int(round(float(p.position))),
                float(p.avgCost),
                refs.get(p.contract.conId),
            )
            for p in held
        ]

    def executions(self) -> list[TradeFill]:
        """The executions IB still serves (the current day's; older ones: a Flex statement) with
        their commission reports, in the journal's terms. Each fill's order (open or completed,
        any client) says what it was for: a bracket's entry (no parent), take-profit (LMT child)
        or stop (STP child)."""
        ib = self._ib()
        with self._guard("executions"):
            fills = ib.reqExecutions()
            trades = [*ib.openTrades(), *ib.reqCompletedOrders(apiOnly=False)]
        orders = {t.order.permId: t.order for t in trades if t.order.permId}
        return journal_fills(fills, orders)

    def account(self) -> AccountSnapshot:
        ib = self._ib()
        with self._guard("account snapshot"):
            values: dict[str, float] = {}
            for v in ib.accountSummary(self.account_id):
                if v.tag in _SUMMARY_TAGS:
                    values.setdefault(v.tag, float(v.value))
            held, trades = self._ib_positions(ib), ib.openTrades()
            legs = self._ib_positions(ib, "OPT")
            refs = _refs_by_conid(trades, ib.reqExecutions())
        missing = [tag for tag in _SUMMARY_TAGS if tag not in values]
        if missing:
            raise BrokerError(f"IB at {self.where}: account summary lacks {', '.join(missing)}")
        return AccountSnapshot(
            values["NetLiquidation"],
            values["BuyingPower"],
            values["ExcessLiquidity"],
            self._open_risk(held, trades, refs) + _spread_risk(legs, trades),
            len(held) + len({p.contract.symbol for p in legs}),
        )

    def _open_risk(
        self, held: Iterable[Any], trades: Sequence[Trade], refs: dict[int, str]
    ) -> float:
        stops = {
            t.order.orderRef: t.order
            for t in trades  # stop-losses, not stop-entries
            if t.order.orderType == "STP" and t.order.orderRef and t.order.parentId
        }
        risk = 0.0
        for p in held:
            qty, avg = float(p.position), float(p.avgCost)
            stop = stops.get(refs.get(p.contract.conId, ""))
            per_share = (
                avg * self.unprotected_risk_fraction
                if stop is None
                else max(0.0, (avg - float(stop.auxPrice)) * (1 if qty > 0 else -1))
            )
            risk += abs(qty) * per_share
        groups: dict[str, float] = {}  # an OCA group of entries: at most one can fill
        for t in trades:  # working entries, to their stops
            o = t.order
            if o.parentId == 0 and o.orderType in ("LMT", "STP") and o.orderRef in stops:
                remaining = max(0.0, float(o.totalQuantity) - float(t.orderStatus.filled))
                level = float(o.lmtPrice if o.orderType == "LMT" else o.auxPrice)
                leg = remaining * abs(level - float(stops[o.orderRef].auxPrice))
                if o.ocaGroup:
                    groups[o.ocaGroup] = max(groups.get(o.ocaGroup, 0.0), leg)
                else:
                    risk += leg
        return risk + sum(groups.values())


def _spread_risk(legs: Iterable[Any], trades: Iterable[Trade]) -> float:
    """Dollars at risk in the spread book: per underlying the net premium paid for its option
    legs (IB's avgCost of an option is per contract, multiplier included; a short leg's negative
    position nets its credit off), floored at zero, plus every working BAG entry's remaining
    contracts x its limit debit x the multiplier. A debit spread can lose no more than that."""
    net: dict[str, float] = defaultdict(float)
    for p in legs:
        net[p.contract.symbol] += float(p.position) * float(p.avgCost)
    risk = sum(max(0.0, v) for v in net.values())
    for t in trades:
        o = t.order
        if t.contract.secType == "BAG" and o.action == "BUY" and o.orderType == "LMT":
            remaining = max(0.0, float(o.totalQuantity) - float(t.orderStatus.filled))
            risk += remaining * float(o.lmtPrice) * CONTRACT_MULTIPLIER
    return risk


# The market order `close_position` sends carries `<ref>-EXP`: the journal books it to `<ref>`.
EXPIRY_CLOSE_SUFFIX = "-EXP"
_EXIT_PURPOSE: dict[str, Purpose] = {"LMT": "take_profit", "STP": "stop", "MKT": "close"}


def journal_ref(order_ref: str) -> tuple[str, Purpose | None]:
    """The trade an order ref belongs to, and what its suffix says the order was for: a
    spread's conditional close (`-close`), a close we sent (`-EXP`), else nothing."""
    if order_ref.endswith(CLOSE_SUFFIX):
        return order_ref.removesuffix(CLOSE_SUFFIX), "condition"
    if order_ref.endswith(EXPIRY_CLOSE_SUFFIX):
        return order_ref.removesuffix(EXPIRY_CLOSE_SUFFIX), "close"
    return order_ref, None


def order_purpose(order_type: str | None, opening: bool | None) -> Purpose | None:
    """An opening order is the entry; a closing one is told by its type (a bracket's
    take-profit is its only limit exit, its stop the only stop); None when unknown."""
    if opening is None:
        return None
    return "entry" if opening else _EXIT_PURPOSE.get(order_type or "")


def exchange_session(at: datetime) -> date:
    """The session of an execution: its New York date (IB stamps executions in UTC)."""
    stamp = pd.Timestamp(at)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return stamp.tz_convert("America/New_York").date()


def journal_fills(fills: Iterable[Fill], orders: dict[int, Order]) -> list[TradeFill]:
    """IB executions as the journal reads them. Stocks one by one; a spread's option legs
    (each leg's execution carries the combo's orderRef) grouped by order into one combo fill,
    bought on the spread's own ref and sold on its close's; a BAG execution repeats what its
    legs say and is skipped. Commissions from the fills' commission reports."""
    found: list[TradeFill] = []
    combos: dict[tuple[str, Purpose | None, int], list[Fill]] = defaultdict(list)
    for fill in sorted(fills, key=lambda f: (f.execution.time, f.execution.execId)):
        ex, contract = fill.execution, fill.contract
        ref, purpose = journal_ref(ex.orderRef or "")
        if contract.secType == "BAG":
            continue
        if contract.secType == "OPT":
            combos[(ref, purpose, ex.permId or ex.orderId)].append(fill)
            continue
        order = orders.get(ex.permId)
        if purpose is None and order is not None:
            purpose = order_purpose(order.orderType, order.parentId == 0)
        found.append(
            TradeFill(
                order_ref=ref,
                ticker=contract.symbol,
                action="BUY" if ex.side == "BOT" else "SELL",
                quantity=int(round(float(ex.shares))),
                price=float(ex.price),
                session=exchange_session(ex.time),
                purpose=purpose,
                time=ex.time,
                commission=abs(float(fill.commissionReport.commission or 0.0)),
                fill_id=ex.execId,
            )
        )
    for (ref, purpose, _), legs in combos.items():
        last = legs[-1].execution
        found.append(
            combo_fill(
                ref,
                legs[0].contract.symbol,
                "BUY" if purpose is None else "SELL",
                purpose or "entry",
                [
                    (
                        (1 if f.execution.side == "BOT" else -1) * int(float(f.execution.shares)),
                        float(f.execution.price),
                        int(f.contract.multiplier or CONTRACT_MULTIPLIER),
                        abs(float(f.commissionReport.commission or 0.0)),
                    )
                    for f in legs
                ],
                exchange_session(last.time),
                last.time,
                "+".join(sorted(f.execution.execId for f in legs)),
            )
        )
    return found

"""The trade journal: the broker's fills matched to our plans, one record per trade.

Pure: fills and plans in, trades and exceptions out, whatever broker reported the fills (the
simulated broker's tables, IBKR executions, an IBKR Flex statement), so the same trades give the
same journal from any of them.

A trade is one order ref: a primary bracket, its add-on (`<ref>-ADD`), one fade leg (`-ALT` or
`-LIM`) or an option spread. Opening fills are those in the plan's direction (a debit spread is
always bought); several opening or closing fills (partial executions) are averaged by quantity.
Gross P&L is the cash the fills moved (sells in, buys out), so the journal totals equal the
broker's cash movement exactly; R divides it by the initial risk, |entry fill - initial stop| x
quantity (for a spread the debit paid, its maximum loss).

A trade belongs to the session of its latest fill: the entry while open, the exit once closed.
Nothing is dropped: a fill with no plan, a plan the broker says filled without fills, a plan the
broker does not know once its entry window has closed, a quantity that disagrees with the plan and
an exit without an entry are `JournalException`s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

Side = Literal["long", "short"]
Action = Literal["BUY", "SELL"]
Book = Literal["primary", "add_on", "opposing", "option_spread"]
# What the filled order was for, when the broker says: the entry, a bracket's take-profit or
# stop, a close we sent (market), the broker's own holding-limit exit, a spread's conditional
# close, a spread settled at expiry. None: the broker does not say (the price decides).
Purpose = Literal["entry", "take_profit", "stop", "close", "expiry", "condition", "settlement"]
ExitReason = Literal["target", "stop", "breakeven", "trail", "expiry", "manual", "settlement"]
ExceptionKind = Literal[
    "fill_without_plan",
    "plan_without_fills",
    "quantity_mismatch",
    "exit_without_entry",
]

# Stop moves that change the stop in force (stop_updates actions); `expire` closes the position.
STOP_MOVES = frozenset({"breakeven", "trail", "add_on"})
PRICE_TOLERANCE = 0.005  # half a cent: prices on the cent grid compare equal within it


@dataclass(frozen=True)
class TradeFill:
    """One execution as the broker reported it, in the journal's terms."""

    order_ref: str  # the trade's ref (a closing order's own suffix, e.g. -EXP, removed)
    ticker: str
    action: Action
    quantity: int  # shares; a combo's contracts x 100
    price: float  # per share; a combo's net price (long leg - short leg)
    session: date
    purpose: Purpose | None = None
    time: datetime | None = None
    commission: float = 0.0  # dollars the broker charged (>= 0)
    fill_id: str | None = None  # the broker's execution id: a fill seen twice is one fill

    @property
    def cash(self) -> float:
        """What the fill moved: a sale brings cash in, a purchase pays it out."""
        return (1 if self.action == "SELL" else -1) * self.price * self.quantity


@dataclass(frozen=True)
class PlannedTrade:
    """What we meant to trade under one order ref (a sent plan)."""

    trade_id: str
    book: Book
    ticker: str
    side: Side
    quantity: int  # shares planned
    initial_stop: float | None  # None for a spread: its risk is the debit
    take_profit: float | None
    entry_deadline: date  # the last session the entry can fill
    signal_id: str | None = None
    parent_ref: str | None = None  # the primary (add-on, spread), the fade plan (fade leg)
    confidence: float | None = None
    tier: str | None = None
    oca_group: str | None = None  # fade legs: one of the group fills, the other is cancelled

    @property
    def opening_action(self) -> Action:
        return "BUY" if self.side == "long" or self.book == "option_spread" else "SELL"

    @property
    def managed_ref(self) -> str:
        """The ref the management records (stop_updates) are kept under: an add-on moves with
        its primary."""
        return self.parent_ref if self.book == "add_on" and self.parent_ref else self.trade_id


@dataclass(frozen=True)
class StopMove:
    """A management action recorded in stop_updates (applied, not dry-run)."""

    order_ref: str
    session: date  # decided after this close: in force from the next session
    action: str  # breakeven | trail | add_on | take_profit | expire
    old_stop: float
    new_stop: float


@dataclass(frozen=True)
class JournalTrade:
    """One row of the `journal` table (broker and source are the caller's)."""

    trade_id: str
    session: date
    book: Book
    parent_ref: str | None
    signal_id: str | None
    ticker: str
    side: Side
    quantity: int
    entry_session: date
    entry_time: datetime | None
    entry_price: float
    exit_session: date | None
    exit_time: datetime | None
    exit_price: float | None
    initial_stop: float | None
    initial_risk: float | None
    fees: float
    gross_pnl: float | None
    net_pnl: float | None
    r_gross: float | None
    r_net: float | None
    confidence: float | None
    tier: str | None
    exit_reason: ExitReason | None
    status: Literal["open", "closed"]


@dataclass(frozen=True)
class JournalException:
    session: date
    kind: ExceptionKind
    ref: str
    detail: str


@dataclass(frozen=True)
class Journal:
    trades: list[JournalTrade]
    exceptions: list[JournalException]

    def of_session(self, session: date) -> Journal:
        return Journal(
            [t for t in self.trades if t.session == session],
            [e for e in self.exceptions if e.session == session],
        )


def _average(fills: Sequence[TradeFill]) -> float:
    return sum(f.price * f.quantity for f in fills) / sum(f.quantity for f in fills)


def _chronological(fill: TradeFill) -> tuple[date, float, bool]:
    return (fill.session, fill.time.timestamp() if fill.time else 0.0, fill.purpose != "entry")


def _describe(fill: TradeFill) -> str:
    return f"{fill.action} {fill.quantity} {fill.ticker} @ {fill.price:.4f} on {fill.session}"


def _stop_in_force(plan: PlannedTrade, moves: Sequence[StopMove], exit_session: date):
    """The last stop move decided before the exit's session (moves apply from the next one),
    after the trade's own placement (an add-on's initial stop is its add_on move's)."""
    last = None
    for move in sorted(moves, key=lambda m: m.session):
        if move.session >= exit_session or move.action not in STOP_MOVES:
            continue
        if plan.book == "add_on" and move.action == "add_on":
            continue  # that move placed the add-on: its stop is the add-on's initial stop
        if abs(move.new_stop - move.old_stop) > PRICE_TOLERANCE:
            last = move
    return last


def _stopped_reason(
    plan: PlannedTrade, moves: Sequence[StopMove], exit_session: date, entry: float
) -> ExitReason:
    move = _stop_in_force(plan, moves, exit_session)
    if move is None or (
        plan.initial_stop is not None and abs(move.new_stop - plan.initial_stop) <= PRICE_TOLERANCE
    ):
        return "stop"
    if move.action == "trail":
        return "trail"
    if move.action == "breakeven" or abs(move.new_stop - entry) <= PRICE_TOLERANCE:
        return "breakeven"
    return "trail"


def exit_reason(
    plan: PlannedTrade,
    last_exit: TradeFill,
    exit_price: float,
    entry_price: float,
    moves: Sequence[StopMove],
) -> ExitReason:
    """How the trade ended, from the order that closed it and our management records."""
    purpose = last_exit.purpose
    if purpose == "settlement":
        return "settlement"
    if purpose in ("take_profit", "condition"):
        return "target"
    if purpose == "expiry":
        return "expiry"
    if purpose == "stop":
        return _stopped_reason(plan, moves, last_exit.session, entry_price)
    if purpose == "close":
        expired = any(m.action == "expire" and m.session <= last_exit.session for m in moves)
        return "expiry" if expired else "manual"
    # the broker did not say which order filled: the price against the levels decides
    sign = 1 if plan.side == "long" else -1
    if plan.take_profit is not None and sign * (exit_price - plan.take_profit) >= -PRICE_TOLERANCE:
        return "target"
    move = _stop_in_force(plan, moves, last_exit.session)
    stop = move.new_stop if move is not None else plan.initial_stop
    if stop is not None and sign * (exit_price - stop) <= PRICE_TOLERANCE:
        return _stopped_reason(plan, moves, last_exit.session, entry_price)
    if any(m.action == "expire" and m.session <= last_exit.session for m in moves):
        return "expiry"
    return "manual"


def journal_trade(
    plan: PlannedTrade, fills: Sequence[TradeFill], moves: Sequence[StopMove]
) -> tuple[JournalTrade | None, list[JournalException]]:
    """The trade of one plan from its fills (None: no entry yet), with what disagrees."""
    fills = sorted(fills, key=_chronological)
    opening = [f for f in fills if f.action == plan.opening_action]
    closing = [f for f in fills if f.action != plan.opening_action]
    latest = max(f.session for f in fills)
    problems: list[JournalException] = []
    if not opening:
        problems.append(
            JournalException(
                latest,
                "exit_without_entry",
                plan.trade_id,
                f"closing fills without an entry: {'; '.join(map(_describe, closing))}",
            )
        )
        return None, problems
    bought = sum(f.quantity for f in opening)
    sold = sum(f.quantity for f in closing)
    if bought != plan.quantity:
        problems.append(
            JournalException(
                latest,
                "quantity_mismatch",
                plan.trade_id,
                f"planned {plan.quantity} shares, the entry filled {bought}",
            )
        )
    if sold > bought:
        problems.append(
            JournalException(
                latest,
                "quantity_mismatch",
                plan.trade_id,
                f"exits of {sold} shares exceed the entry's {bought}",
            )
        )
    entry = _average(opening)
    fees = sum(f.commission for f in fills)
    if plan.book == "option_spread":
        risk: float | None = entry * bought
    elif plan.initial_stop is not None:
        risk = abs(entry - plan.initial_stop) * bought
    else:
        risk = None
    risk = risk if risk is not None and risk > 0 else None
    closed = sold >= bought
    exit_price = _average(closing) if closed else None
    gross = sum(f.cash for f in fills) if closed else None
    net = gross - fees if gross is not None else None
    reason = (
        exit_reason(plan, closing[-1], exit_price, entry, moves)
        if closed and exit_price is not None
        else None
    )
    return (
        JournalTrade(
            trade_id=plan.trade_id,
            session=latest,
            book=plan.book,
            parent_ref=plan.parent_ref,
            signal_id=plan.signal_id,
            ticker=plan.ticker,
            side=plan.side,
            quantity=bought,
            entry_session=opening[0].session,
            entry_time=opening[0].time,
            entry_price=entry,
            exit_session=closing[-1].session if closed else None,
            exit_time=closing[-1].time if closed else None,
            exit_price=exit_price,
            initial_stop=plan.initial_stop,
            initial_risk=risk,
            fees=fees,
            gross_pnl=gross,
            net_pnl=net,
            r_gross=gross / risk if gross is not None and risk else None,
            r_net=net / risk if net is not None and risk else None,
            confidence=plan.confidence,
            tier=plan.tier,
            exit_reason=reason,
            status="closed" if closed else "open",
        ),
        problems,
    )


def missing_fills(
    plans: Iterable[PlannedTrade],
    filled_refs: set[str],
    broker_states: Mapping[str, str],
) -> list[JournalException]:
    """Sent plans whose fills should exist but do not, reported on the last session their
    entry could fill: the broker says the order filled, or the broker has no such order. A fade
    leg whose sibling filled was cancelled by it, whatever the broker still lists."""
    plans = list(plans)
    spent = {p.oca_group for p in plans if p.oca_group and p.trade_id in filled_refs}
    found = []
    for plan in plans:
        if plan.trade_id in filled_refs or plan.oca_group in spent:
            continue  # filled, or a fade leg whose sibling filled (one-cancels-other)
        state = broker_states.get(plan.trade_id)
        if state in ("filled", "executed", "partially_filled", "closed"):
            detail = f"the broker reports the order {state} but gave no fill for it"
        elif state is None:
            detail = (
                f"sent, but the broker has no order {plan.trade_id} after its entry window "
                f"closed on {plan.entry_deadline}"
            )
        else:
            continue  # working, expired or cancelled unfilled: nothing should exist
        found.append(
            JournalException(plan.entry_deadline, "plan_without_fills", plan.trade_id, detail)
        )
    return found


def build_journal(
    fills: Iterable[TradeFill],
    plans: Iterable[PlannedTrade],
    moves: Iterable[StopMove] = (),
    broker_states: Mapping[str, str] | None = None,
    due_sessions: Iterable[date] = (),
) -> Journal:
    """Every trade the fills describe, and every exception. Plans whose entry deadline is one of
    `due_sessions` are checked for missing fills against `broker_states` (what the broker says
    of each ref: open, filled, executed, cancelled, expired...)."""
    by_ref: dict[str, list[TradeFill]] = defaultdict(list)
    for fill in fills:
        by_ref[fill.order_ref].append(fill)
    plan_of = {p.trade_id: p for p in plans}
    moves_of: dict[str, list[StopMove]] = defaultdict(list)
    for move in moves:
        moves_of[move.order_ref].append(move)
    trades: list[JournalTrade] = []
    exceptions: list[JournalException] = []
    for ref, ref_fills in sorted(by_ref.items()):
        plan = plan_of.get(ref)
        if plan is None:
            exceptions += [
                JournalException(
                    f.session,
                    "fill_without_plan",
                    ref or f"{f.ticker}@{f.time or f.session}",
                    f"{_describe(f)}: no sent plan has this order ref",
                )
                for f in ref_fills
            ]
            continue
        trade, problems = journal_trade(plan, ref_fills, moves_of[plan.managed_ref])
        exceptions += problems
        if trade is not None:
            trades.append(trade)
    due = set(due_sessions)
    exceptions += missing_fills(
        [p for p in plan_of.values() if p.entry_deadline in due],
        set(by_ref),
        broker_states or {},
    )
    return Journal(trades, _unique(exceptions))


def _unique(exceptions: list[JournalException]) -> list[JournalException]:
    """One per (session, kind, ref), details joined: the table's key."""
    merged: dict[tuple[date, str, str], JournalException] = {}
    for e in exceptions:
        key = (e.session, e.kind, e.ref)
        if key in merged:
            e = JournalException(e.session, e.kind, e.ref, f"{merged[key].detail}; {e.detail}")
        merged[key] = e
    return list(merged.values())


def combo_fill(
    order_ref: str,
    ticker: str,
    action: Action,
    purpose: Purpose | None,
    legs: Sequence[tuple[int, float, int, float]],
    session: date,
    time: datetime | None,
    fill_id: str | None = None,
) -> TradeFill:
    """One spread fill from its option legs' executions: (signed contracts: + bought,
    price per share, multiplier, commission) each. The combo's per-share price is what the
    legs moved per share of the spread; its quantity the spread's contracts x multiplier."""
    cash = sum(-contracts * price * multiplier for contracts, price, multiplier, _ in legs)
    shares = max(abs(contracts) * multiplier for contracts, _, multiplier, _ in legs)
    price = (-cash if action == "BUY" else cash) / shares
    return TradeFill(
        order_ref=order_ref,
        ticker=ticker,
        action=action,
        quantity=shares,
        price=round(price, 6),
        session=session,
        purpose=purpose,
        time=time,
        commission=sum(c for *_, c in legs),
        fill_id=fill_id,
    )

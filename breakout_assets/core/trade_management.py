"""Position management: one session's actions for an open position (DESIGN.md, "Position
management", "Opposing book").

Pure: a position, its plan and the daily bars since the fill in, a list of `Action`s out. The
decisions are taken at a session's close and apply from the next session, so the live pipeline,
the simulated broker and backtests (`replay_managed`) decide the same on the same bars. Inside a
session exits follow core.outcomes (`exit_on_bar`: the stop wins a bar touching both, a gap
fills at the open). Rules, in the order `manage` applies them (each sees what the previous left):

1. expire: at the holding limit the position closes at the close, and nothing else happens.
2. breakeven: once the best price since the fill reaches fill +`breakeven_at_r` R, the stop goes
   to the average fill price (= the fill price before an add-on).
3. add_on: primary, at the close of day `add_on_day` (fill session = day 0) if that close is
   beyond the fill in our favour and the stop was never hit; opposing, when price reaches the
   signal's entry E (at E, or at the open of a session gapping past it). Shares =
   floor((resize_to x original $ risk - current $ risk) / |add price - stop|).
4. trail: primary, the low (long) / high (short) of the last `trail_bars` completed bars;
   opposing, `trail_r` R behind the best price since the fill.
5. take_profit: primary, once the add-on is made, the 100% (long) / 75% (short) target;
   opposing, fill + `take_profit_r` R in our favour.

Invariants: the stop only moves in our favour (`apply` refuses anything else, and every change
goes through it); a take-profit is only placed beyond the session's close (and the stop) in our
favour, since a level price already passed would be a market exit in disguise, left to the stop;
the quantity only grows, until the exit. After an add-on `average_price` is the share-weighted
mean of the fills and the $ risk is `quantity x max(0, side x (average_price - stop))`: the loss
at the stop, with profit locked in on the first shares offsetting the new shares' risk. Every
action changes the position: a rule with nothing to change emits nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from breakout_assets.core.outcomes import OutcomeConfig, exit_on_bar
from breakout_assets.core.sizing import EPS

Book = Literal["primary", "opposing"]
Side = Literal["long", "short"]
ActionKind = Literal["breakeven", "add_on", "trail", "take_profit", "expire"]
ALL_RULES: frozenset[str] = frozenset({"breakeven", "add_on", "trail", "take_profit"})
_TARGETS = {"t50": 0, "t75": 1, "t100": 2}


class _BookRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    breakeven_at_r: float = Field(
        0.5,
        gt=0,
        description="Stop to breakeven once the best price since the fill is this "
        "many R (planned risk per share) in our favour.",
    )
    resize_to: float = Field(
        1.5,
        gt=0,
        description="The add-on sizes the position's total $ risk toward this x the "
        "original $ risk, never above it.",
    )
    trail_from_day: int = Field(
        2,
        ge=0,
        description="The trail starts at the close of this session after the fill session (day 0).",
    )
    trail_after_r: float = Field(
        0.0,
        ge=0,
        description="... and once the best price since the fill is this many R in "
        "our favour (0: no such condition).",
    )


class PrimaryRules(_BookRules):
    """The breakout trade: the wide 2-ATR stop gives the move room until the add-on session,
    then a tight 2-bar trail follows it."""

    add_on_day: int = Field(
        2,
        ge=1,
        description="The add-on is decided at this session's close (fill session = "
        "day 0; 2 = the third session).",
    )
    trail_bars: int = Field(
        2,
        ge=1,
        description="Trail to the lowest low (long) / highest high (short) of this "
        "many most recent completed bars.",
    )
    take_profit_long: Literal["t50", "t75", "t100"] = Field(
        "t100", description="A long's take-profit once the add-on is made."
    )
    take_profit_short: Literal["t50", "t75", "t100"] = Field(
        "t75", description="A short's take-profit once the add-on is made."
    )


class OpposingRules(_BookRules):
    """The fade: the trail starts at the breakeven trigger, the take-profit is a fixed R."""

    resize_to: float = Field(1.0, gt=0, description="As for the primary, toward 1.0x.")
    trail_from_day: int = Field(0, ge=0, description="As for the primary, from the fill session.")
    trail_after_r: float = Field(
        0.5,
        ge=0,
        description="The trail starts once the best price since the fill is this "
        "many R in our favour (the breakeven trigger by default).",
    )
    trail_r: float = Field(1 / 3, gt=0, description="Trail this many R behind the best price.")
    take_profit_r: float | None = Field(
        None,
        gt=0,
        description="None (default): keep the bracket's take-profit, the primary's "
        "original stop (DESIGN.md: 'take-profit at the primary's "
        "original stop'), which leaves room for the add-on at E; a "
        "number: fill + this many R in our favour instead.",
    )


class ManagementConfig(BaseModel):
    """Every management setting; the defaults are DESIGN.md's table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    primary: PrimaryRules = Field(default_factory=PrimaryRules)
    opposing: OpposingRules = Field(default_factory=OpposingRules)
    outcomes: OutcomeConfig = Field(  # max_holding_sessions: the same limit as the labels'
        default_factory=OutcomeConfig, description="Holding limit, shared with labels."
    )


@dataclass(frozen=True)
class Bar:
    session: int  # exchange-calendar ordinal: consecutive sessions differ by 1
    open: float
    high: float
    low: float
    close: float


def bars_from_arrays(session: Sequence[int], *ohlc: Sequence[float]) -> list[Bar]:
    """Bars from aligned arrays: session ordinals, then open, high, low, close."""
    return [Bar(int(s), *map(float, p)) for s, *p in zip(session, *ohlc, strict=True)]


@dataclass(frozen=True)
class ManagedPosition:
    """An open position and its plan. `fill_price` is the first fill (rules measure R from it);
    `average_price` (defaults to it) is the share-weighted mean after an add-on."""

    order_ref: str
    book: Book
    side: Side
    fill_price: float
    fill_session: date | int
    quantity: int
    original_stop: float
    stop: float
    take_profit: float
    planned_risk: float  # R: |plan entry - original stop| per share
    original_dollar_risk: float
    signal_entry: float  # the signal's entry E
    targets: tuple[float, float, float]  # t50, t75, t100
    add_on_done: bool = False
    breakeven_done: bool = False
    average_price: float = math.nan

    def __post_init__(self) -> None:
        if self.book not in ("primary", "opposing") or self.side not in ("long", "short"):
            raise ValueError(f"bad book/side {self.book!r}/{self.side!r}")
        if not (self.planned_risk > 0 and self.original_dollar_risk > 0 and self.quantity >= 0):
            raise ValueError("planned_risk and original_dollar_risk must be > 0, quantity >= 0")
        if math.isnan(self.average_price):
            object.__setattr__(self, "average_price", self.fill_price)

    @property
    def sign(self) -> int:
        return 1 if self.side == "long" else -1


@dataclass(frozen=True)
class Action:
    """One change to a position, taken at `session`'s close; a `stop_updates` row."""

    action: ActionKind
    session: int
    old_stop: float
    new_stop: float
    old_quantity: int
    new_quantity: int
    old_take_profit: float
    new_take_profit: float
    price: float  # the add-on's or the exit's price; NaN otherwise
    reason: str


class ReplayResult(NamedTuple):
    exit_session: int | None  # None: still open when the bars end
    exit_price: float
    r_multiple: float  # in units of the original $ risk
    actions: list[Action]


def dollar_risk(position: ManagedPosition) -> float:
    """The loss if the stop fills now, from the average price; 0 once the stop locks a profit."""
    return position.quantity * max(0.0, position.sign * (position.average_price - position.stop))


def apply(position: ManagedPosition, actions: Iterable[Action]) -> ManagedPosition:
    """The position after `actions`; the one place the stop-ratchet and quantity rules hold."""
    pos = position
    for a in actions:
        if (a.old_stop, a.old_quantity, a.old_take_profit) != (
            pos.stop,
            pos.quantity,
            pos.take_profit,
        ):
            raise ValueError(
                f"stale {a.action} action for {pos.order_ref}: it was computed "
                "for another state of the position"
            )
        if pos.sign * (a.new_stop - pos.stop) < 0:
            raise ValueError(
                f"{a.action} would move the stop against the position ({pos.stop} -> {a.new_stop})"
            )
        if a.new_quantity < pos.quantity and a.action != "expire":
            raise ValueError(f"{a.action} would reduce the quantity; only an exit does")
        added = a.new_quantity - pos.quantity
        avg = (
            pos.average_price
            if added <= 0
            else (pos.quantity * pos.average_price + added * a.price) / a.new_quantity
        )
        pos = replace(
            pos,
            stop=a.new_stop,
            quantity=a.new_quantity,
            take_profit=a.new_take_profit,
            average_price=avg,
            breakeven_done=pos.breakeven_done or a.action == "breakeven",
            add_on_done=pos.add_on_done or a.action == "add_on",
        )
    return pos


def _action(
    pos: ManagedPosition,
    kind: ActionKind,
    session: int,
    reason: str,
    *,
    stop: float | None = None,
    quantity: int | None = None,
    take_profit: float | None = None,
    price: float = math.nan,
) -> Action:
    return Action(
        kind,
        session,
        pos.stop,
        pos.stop if stop is None else stop,
        pos.quantity,
        pos.quantity if quantity is None else quantity,
        pos.take_profit,
        pos.take_profit if take_profit is None else take_profit,
        price,
        reason,
    )


def _stop_to(
    pos: ManagedPosition, kind: ActionKind, session: int, level: float, why: str
) -> Action | None:
    """A stop move, or None when `level` is not strictly tighter (no loosening, no no-op)."""
    if pos.sign * (level - pos.stop) <= EPS * abs(pos.stop):
        return None
    return _action(pos, kind, session, f"{why}; stop {pos.stop:.4f} -> {level:.4f}", stop=level)


def _favourable(pos: ManagedPosition, bars: Sequence[Bar], k: int) -> float:
    """Bar k's extreme in our favour; on an intraday fill bar only its close counts (its
    extreme may have come before the fill), as in core.outcomes' MFE."""
    b = bars[k]
    if k == 0 and b.open != pos.fill_price:
        return b.close
    return b.high if pos.sign > 0 else b.low


def _best(pos: ManagedPosition, bars: Sequence[Bar]) -> float:
    extremes = [pos.fill_price, *(_favourable(pos, bars, k) for k in range(len(bars)))]
    return max(extremes) if pos.sign > 0 else min(extremes)


def _reached(pos: ManagedPosition, best: float, r: float) -> bool:
    level = pos.fill_price + pos.sign * r * pos.planned_risk
    return pos.sign * (best - level) >= -EPS * abs(level)


def _touched(sign: int, stop: float, bar: Bar) -> bool:
    return bar.low <= stop if sign > 0 else bar.high >= stop


def _add_on(
    pos: ManagedPosition, session: int, price: float, resize_to: float, why: str
) -> Action | None:
    """Shares bringing the $ risk toward `resize_to` x the original, never past it."""
    per_share = pos.sign * (price - pos.stop)
    target = resize_to * pos.original_dollar_risk
    room = target - dollar_risk(pos)
    shares = math.floor(room / per_share * (1 + EPS)) if per_share > 0 and room > 0 else 0
    if shares <= 0:
        return None
    return _action(
        pos,
        "add_on",
        session,
        (
            f"{why}: +{shares} at {price:.4f} = floor((${target:,.2f} target - "
            f"${dollar_risk(pos):,.2f} at risk) / {per_share:.4f} to the stop)"
        ),
        quantity=pos.quantity + shares,
        price=price,
    )


def manage(
    position: ManagedPosition,
    bars: Sequence[Bar],
    session: int,
    config: ManagementConfig,
    rules: Iterable[str] = ALL_RULES,
) -> list[Action]:
    """The actions at `session`'s close, in order; `bars` run from the fill session, and bars
    after `session` are ignored. `rules` switches the four rules (expiry is always on)."""
    rules = frozenset(rules)
    if rules - ALL_RULES:
        raise ValueError(f"unknown rules {sorted(rules - ALL_RULES)}; known: {sorted(ALL_RULES)}")
    seen = [b for b in bars if b.session <= session]
    if position.quantity <= 0 or not seen:
        return []
    if any(a.session >= b.session for a, b in zip(seen, seen[1:], strict=False)):
        raise ValueError("bars must be in increasing session order")
    if isinstance(position.fill_session, int) and seen[0].session != position.fill_session:
        raise ValueError(
            f"the first bar ({seen[0].session}) must be the fill session ({position.fill_session})"
        )
    fill_ord, bar, s = seen[0].session, seen[-1], position.sign
    limit = fill_ord + config.outcomes.max_holding_sessions - 1
    if session >= limit:
        return [
            _action(
                position,
                "expire",
                session,
                (
                    f"expire: session {session - fill_ord + 1} of a {limit - fill_ord + 1}-session "
                    f"holding limit; close at {bar.close:.4f}"
                ),
                quantity=0,
                price=bar.close,
            )
        ]
    if bar.session != session:
        return []  # no bar for the session (halted): nothing new is known
    day, k, best = session - fill_ord, len(seen) - 1, _best(position, seen)
    R = position.planned_risk  # noqa: N806 - the strategy's name for it
    book = config.primary if position.book == "primary" else config.opposing
    pos, out = position, []

    def take(action: Action | None) -> None:
        nonlocal pos
        if action is not None:
            out.append(action)
            pos = apply(pos, [action])

    if "breakeven" in rules and not pos.breakeven_done and _reached(pos, best, book.breakeven_at_r):
        take(
            _stop_to(
                pos,
                "breakeven",
                session,
                pos.average_price,
                (
                    f"breakeven: best {best:.4f} reached +{book.breakeven_at_r}R from the fill "
                    f"{pos.fill_price:.4f} (R {R:.4f}); stop to the average fill"
                ),
            )
        )

    if "add_on" in rules and not pos.add_on_done:
        if isinstance(book, PrimaryRules):
            held = s * (bar.close - pos.fill_price) > 0
            never_hit = not any(_touched(s, pos.original_stop, b) for b in seen) and not _touched(
                s, position.stop, bar
            )
            if day == book.add_on_day and held and never_hit:
                take(
                    _add_on(
                        pos,
                        session,
                        bar.close,
                        book.resize_to,
                        (
                            f"add_on: day {day} close {bar.close:.4f} holds beyond the fill "
                            f"{pos.fill_price:.4f}, stop never hit; toward {book.resize_to}x risk"
                        ),
                    )
                )
        else:
            e = pos.signal_entry
            if s * (e - pos.fill_price) > 0 and s * (_favourable(pos, seen, k) - e) >= 0:
                price = bar.open if k > 0 and s * (bar.open - e) >= 0 else e
                take(
                    _add_on(
                        pos,
                        session,
                        price,
                        book.resize_to,
                        (
                            f"add_on: price reached the signal entry {e:.4f}; toward "
                            f"{book.resize_to}x risk"
                        ),
                    )
                )

    if "trail" in rules and day >= book.trail_from_day and _reached(pos, best, book.trail_after_r):
        if isinstance(book, PrimaryRules):
            if len(seen) >= book.trail_bars:
                window = seen[-book.trail_bars :]
                level = min(b.low for b in window) if s > 0 else max(b.high for b in window)
                take(
                    _stop_to(
                        pos,
                        "trail",
                        session,
                        level,
                        (
                            f"trail: {'low' if s > 0 else 'high'} of the last "
                            f"{book.trail_bars} bars "
                            f"(sessions {window[0].session}-{window[-1].session}) {level:.4f}"
                        ),
                    )
                )
        else:
            level = best - s * book.trail_r * R
            take(
                _stop_to(
                    pos,
                    "trail",
                    session,
                    level,
                    (
                        f"trail: {book.trail_r:.4f}R ({book.trail_r * R:.4f}) behind the best "
                        f"price {best:.4f}"
                    ),
                )
            )

    if "take_profit" in rules:
        new_tp, why = None, ""
        if isinstance(book, PrimaryRules) and pos.add_on_done:
            name = book.take_profit_long if s > 0 else book.take_profit_short
            new_tp, why = pos.targets[_TARGETS[name]], f"{name} target after the add-on"
        elif isinstance(book, OpposingRules) and book.take_profit_r is not None:
            new_tp = pos.fill_price + s * book.take_profit_r * R
            why = f"fill {pos.fill_price:.4f} + {book.take_profit_r}R in our favour"
        if (
            new_tp is not None
            and abs(new_tp - pos.take_profit) > EPS * abs(new_tp)
            and s * (new_tp - bar.close) > 0
            and s * (new_tp - pos.stop) > 0
        ):
            take(
                _action(
                    pos,
                    "take_profit",
                    session,
                    (f"take_profit: {why}; {pos.take_profit:.4f} -> {new_tp:.4f}"),
                    take_profit=new_tp,
                )
            )
    return out


def replay_managed(
    position: ManagedPosition,
    bars: Sequence[Bar],
    config: ManagementConfig,
    rules: Iterable[str] = ALL_RULES,
) -> ReplayResult:
    """Walk the bars from the fill session: exits by core.outcomes' rules with the current
    bracket, then `manage` at each close. With no rules it is the static bracket of
    core.outcomes; switching rules on one at a time measures what each adds."""
    bars = list(bars)
    if not bars:
        return ReplayResult(None, math.nan, math.nan, [])
    s, at_open = position.sign, bars[0].open == position.fill_price
    limit = bars[0].session + config.outcomes.max_holding_sessions - 1
    pos = position
    done: list[Action] = []

    def closed(session: int, price: float) -> ReplayResult:
        r = pos.quantity * s * (price - pos.average_price) / pos.original_dollar_risk
        return ReplayResult(session, float(price), r, done)

    for k, bar in enumerate(bars):
        if bar.session > limit:  # the limit session had no bar: expire at the last close
            return closed(bars[k - 1].session, bars[k - 1].close)
        price, status = exit_on_bar(
            s, pos.stop, pos.take_profit, bar.open, bar.high, bar.low, k == 0 and not at_open
        )
        if status != 0:
            return closed(bar.session, price)
        actions = manage(pos, bars[: k + 1], bar.session, config, rules)
        done.extend(actions)
        if actions and actions[0].action == "expire":
            return closed(bar.session, actions[0].price)
        pos = apply(pos, actions)
    return ReplayResult(None, math.nan, math.nan, done)

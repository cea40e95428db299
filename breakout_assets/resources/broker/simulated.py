"""SimulatedBroker: the default broker, filling brackets against the real following bars.

All state lives in Postgres (`sim_*` tables, migrations 0007 and 0010), so any asset can fail
and re-run. Fills use `core.outcomes.entry_fill` (`stop_entry_fill` for a stop-entry) /
`exit_on_bar`, the rules the labels use, so a closed limit-entry trade here equals
`core.outcomes.replay` on the same bars (fill, exit price and session), as long as its stop was
never moved.

One-cancels-other (`BracketOrder.oca_group`): orders are processed in placement order (`seq`);
when an entry fills, every other working entry of its group is cancelled at once, in the same
transaction, before the next order is looked at, so two legs of a group never both fill. When
several legs of a group reach their levels on one bar, one fills: a fill at the open first, else
the worse price for the side (a daily bar does not say which level traded first), else the first
placed: the rule of `core.opposing`'s backtest (`_first_fill`). A group reserves buying power and
counts open risk for its largest working entry only; a new entry joining a group whose entry
already filled is rejected. On an entry's fill bar exits read the bar from the fill price: a
stop-entry filled intraday may have opened beyond its stop, before the position existed.

Account model (a cash account; shorts fully collateralised):
- cash moves on fills: a long pays on entry and receives on exit, a short the reverse;
- equity = cash + market value of open positions at the last processed close (shorts negative);
- margin requirement = 100% of the open positions' gross market value: every long is fully
  paid, every short is covered by its proceeds plus the same amount of our own cash;
- excess_liquidity = equity - margin requirement (for longs only: the cash);
- buying_power = excess_liquidity - notional (quantity x entry) reserved by working entries,
  of either side; a bracket whose notional exceeds it is rejected;
- open_risk = sum over open positions of max(0, side x (fill - stop in force)) x quantity, plus
  |entry - stop| x quantity of working entries (a stop trailed past the fill risks nothing).

Orders are one bracket per `order_ref`, one position per bracket (positions are not netted per
ticker). `cancel` withdraws a working entry only: an open position keeps its take-profit and
stop (move the stop with `modify_stop`; it exits at one of them or expires at the holding limit).

Option spreads (`place_spread`, issue 11; tables `sim_spread_*`, migration 0017). There are no
historical option quotes here, so a combo is priced by the model, per share:
`black_scholes(long leg) - black_scholes(short leg)`, clipped to [0, width] and rounded to the
cent, with spot = the underlying's price named below, vol = the realised volatility of its last
`vol_window` daily log returns of closes BEFORE the session (no look-ahead; a held spread whose
ticker lacks the history keeps its entry vol) x `iv_multiplier`, the `rate` setting, and time =
calendar days from the session to the expiry / 365 (intraday decay ignored); the settings are
`OptionsConfig`'s (BREAKOUT_OPTIONS__*). A sale (the conditional close, `close_position`) gets
the model less the `slippage` setting, as the options backtest's exits. Per session, after the
brackets:
- entry (a limit at the net debit, working `entry_valid_sessions` sessions after the signal
  session like a bracket's entry): the combo at the open at or below the limit fills at that
  price; else if the combo at the day's favourable extreme (the low for calls, the high for
  puts) is at or below the limit, it fills at the limit; else it works on, then expires;
- the GTC conditional close (from the session after the fill, or the fill session itself when
  the entry filled at the open): when the bar trades through `close_trigger` (high >= trigger
  for calls, low <= trigger for puts) the combo is sold at its modelled price at the trigger,
  or at the open when the session opened through it (a daily bar shows the touch, which the
  options backtest's closes-only reading may see a session later);
- settlement: a spread still held on the first session on or after its expiry is settled at
  intrinsic value on the underlying's close of the last session on or before the expiry
  (long intrinsic - short intrinsic, between 0 and the width);
- otherwise the held spread is marked at the session's close (equity values it at the mark).
Cash moves by price x 100 x contracts: out on the entry, in on the exit; no commissions (the
slippage stands for the costs), so a spread's cash round-trips exactly. Account terms: a held
spread adds its mark to equity but not to excess liquidity (options are paid in full, no margin
credit); a working combo reserves limit x 100 x contracts of buying power; open_risk counts a
held spread's entry debit and a working combo's limit debit (each x 100 x contracts: the whole
loss the spread can take), and open_positions counts held spreads. `positions()` lists stock
positions only (`spreads()` the combos); a ref is placed once, as a bracket or a spread;
`cancel` withdraws a working combo, `close_position` sells a held spread at the model on the
last processed close.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from breakout_assets.core.config import OptionsConfig
from breakout_assets.core.journal import Purpose, TradeFill
from breakout_assets.core.option_pricing import (
    CALENDAR_DAYS_PER_YEAR,
    black_scholes,
    intrinsic,
    realised_vol,
)
from breakout_assets.core.options import CLOSE_SUFFIX, CONTRACT_MULTIPLIER, SpreadOrder
from breakout_assets.core.outcomes import OutcomeConfig, entry_fill, exit_on_bar, stop_entry_fill
from breakout_assets.partitions import is_session, nyse_sessions, session_ordinals
from breakout_assets.resources.broker.base import (
    AccountSnapshot,
    BracketOrder,
    BrokerError,
    KnownOrder,
    PlacedBracket,
    Position,
)
from breakout_assets.resources.sql import query

ConnectionFactory = Callable[[], AbstractContextManager[Connection]]
_EXIT_LEGS = {1: "take_profit", 2: "stop"}


def _q(name: str):
    return query(f"simulated_broker.{name}")


def _s(name: str):
    return query(f"simulated_spreads.{name}")


def _ordinal(day: date) -> int:
    return int(session_ordinals(np.array([day], dtype="datetime64[D]"))[0])


def _sign(side: str) -> int:
    return 1 if side == "long" else -1


def _entry_price(r: Any) -> float:
    """The entry fill of a working order on the row's bar (NaN: not reached, or no bar)."""
    if r["open"] is None:
        return np.nan
    fill = stop_entry_fill if r["entry_type"] == "stop" else entry_fill
    return float(fill(_sign(r["side"]), r["entry"], r["open"], r["high"], r["low"]))


def _oca_winners(rows: Any, prices: dict[str, float]) -> dict[str, str]:
    """Per OCA group, the one leg that fills on this bar when several reach their levels: a fill
    at the open first (it surely came first), then the worse price for the side (inside a bar
    the order is unknown: conservative, as core.opposing's backtest), then the first placed."""
    best: dict[str, tuple[tuple[bool, float], str]] = {}
    for r in rows:  # by seq, so a strict `<` keeps the earlier leg on a tie
        price = prices.get(r["order_ref"], np.nan)
        if r["oca_group"] is None or price != price:
            continue
        key = (price != r["open"], -_sign(r["side"]) * price)
        if r["oca_group"] not in best or key < best[r["oca_group"]][0]:
            best[r["oca_group"]] = (key, r["order_ref"])
    return {group: ref for group, (_, ref) in best.items()}


def _cents(price: float) -> float:
    return round(float(price), 2)


def _calls(r: Any) -> bool:
    return r["option_right"] == "C"


def _combo_value(r: Any, spot: float, day: date, vol: float, rate: float) -> float:
    """The modelled per-share price of the spread `r` (long leg - short leg) on `day` at
    `spot`, clipped to [0, width] and rounded to the cent."""
    years = max((r["expiry"] - day).days, 0) / CALENDAR_DAYS_PER_YEAR
    legs = black_scholes(
        r["option_right"], spot, [r["long_strike"], r["short_strike"]], years, vol, rate
    )
    width = abs(r["short_strike"] - r["long_strike"])
    return _cents(min(max(float(legs[0] - legs[1]), 0.0), width))


def _settlement(r: Any, spot: float) -> float:
    """Intrinsic value of the spread at expiry, between 0 and the width."""
    legs = intrinsic(r["option_right"], spot, np.array([r["long_strike"], r["short_strike"]]))
    width = abs(r["short_strike"] - r["long_strike"])
    return _cents(min(max(float(legs[0] - legs[1]), 0.0), width))


class SimulatedBroker:
    """The `Broker` protocol on Postgres. `engine` is an Engine or a factory of connections
    inside a transaction that commits on exit (e.g. `PostgresResource.transaction`)."""

    name = "simulated"

    def __init__(
        self,
        engine: Engine | ConnectionFactory,
        starting_equity: float = 100_000.0,
        config: OutcomeConfig | None = None,
        options: OptionsConfig | None = None,
    ) -> None:
        """`options` prices option combos: `iv_multiplier`, `vol_window`, `rate`, and
        `slippage` taken off a modelled exit (BREAKOUT_OPTIONS__*)."""
        if starting_equity <= 0:
            raise ValueError(f"starting_equity must be positive, got {starting_equity}")
        self._begin: ConnectionFactory = engine.begin if isinstance(engine, Engine) else engine
        self.starting_equity = float(starting_equity)
        self.config = config or OutcomeConfig()
        self.options = options or OptionsConfig()
        self.rate = self.options.rate

    def _lock(self, conn: Connection) -> None:
        """Create the account on first use, then hold its row: every change is serialised."""
        conn.execute(_q("create_account"), {"cash": self.starting_equity})
        conn.execute(_q("lock_account"))

    # -- orders -----------------------------------------------------------------------------

    def place_bracket(self, order: BracketOrder) -> PlacedBracket:
        """Idempotent by `order_ref`: a ref already placed answers as it did, never twice."""
        with self._begin() as conn:
            self._lock(conn)
            known = conn.execute(_q("get_order"), {"order_ref": order.order_ref}).mappings().first()
            spread = conn.execute(_s("get_spread"), {"order_ref": order.order_ref}).first()
            if spread is not None:
                return PlacedBracket(
                    order.order_ref,
                    "rejected",
                    [],
                    f"{order.order_ref} is already placed as an option spread",
                )
            if known is not None:
                return PlacedBracket(
                    order.order_ref,
                    "rejected" if known["status"] == "rejected" else "submitted",
                    list(known["broker_order_ids"]),
                    known["reason"],
                )
            reason = self._rejection(conn, order)
            ids = conn.execute(
                _q("insert_order"),
                {
                    "order_ref": order.order_ref,
                    "ticker": order.ticker,
                    "side": order.side,
                    "quantity": order.quantity,
                    "entry": order.entry,
                    "stop": order.stop,
                    "take_profit": order.take_profit,
                    "signal_session": order.session,
                    "valid_sessions": order.valid_sessions,
                    "reason": reason,
                    "entry_type": order.entry_type,
                    "oca_group": order.oca_group,
                    "status": "rejected" if reason else "working",
                },
            ).scalar_one()
        return PlacedBracket(
            order.order_ref, "rejected" if reason else "submitted", list(ids), reason
        )

    def _rejection(self, conn: Connection, order: BracketOrder) -> str | None:
        if not conn.execute(_q("ticker_has_traded"), {"ticker": order.ticker}).scalar():
            return f"unknown ticker {order.ticker}: it has never traded in market_bars"
        last = conn.execute(_q("last_processed")).scalar()
        if last is not None and _ordinal(last) >= _ordinal(order.session) + order.valid_sessions:
            return (
                f"entry window passed: {order.valid_sessions} session(s) after "
                f"{order.session}, and {last} is already processed"
            )
        notional, reserved = order.quantity * order.entry, 0.0
        if order.oca_group is not None:
            group = (
                conn.execute(_q("oca_group_state"), {"oca_group": order.oca_group}).mappings().one()
            )
            if group["filled_ref"] is not None:
                return f"OCA group {order.oca_group} is spent: {group['filled_ref']} filled"
            reserved = group["reserved"]  # the group reserves its largest entry only
        buying_power = self._snapshot(conn).buying_power
        if notional - reserved > buying_power:
            return (
                f"insufficient buying power: {order.quantity} x {order.entry:g} = "
                f"{notional:,.2f} > {buying_power:,.2f}"
            )
        return None

    def place_spread(self, order: SpreadOrder) -> PlacedBracket:
        """One combo: the entry limit at the net debit and its GTC conditional close.
        Idempotent by `order_ref`: a ref already placed (spread or bracket) answers as it did,
        never twice."""
        with self._begin() as conn:
            self._lock(conn)
            known = (
                conn.execute(_s("get_spread"), {"order_ref": order.order_ref}).mappings().first()
            )
            if known is not None:
                return PlacedBracket(
                    order.order_ref,
                    "rejected" if known["status"] == "rejected" else "submitted",
                    list(known["broker_order_ids"]),
                    known["reason"],
                )
            if conn.execute(_s("ref_taken"), {"order_ref": order.order_ref}).scalar():
                return PlacedBracket(
                    order.order_ref,
                    "rejected",
                    [],
                    f"{order.order_ref} is already placed as a bracket",
                )
            reason = self._spread_rejection(conn, order)
            ids = conn.execute(
                _s("insert_spread"),
                {
                    "order_ref": order.order_ref,
                    "ticker": order.ticker,
                    "option_right": order.right,
                    "expiry": order.expiry,
                    "long_strike": order.long_strike,
                    "short_strike": order.short_strike,
                    "contracts": order.contracts,
                    "limit_debit": order.limit_debit,
                    "close_trigger": order.close_trigger,
                    "signal_session": order.session,
                    "valid_sessions": self.config.entry_valid_sessions,
                    "status": "rejected" if reason else "working",
                    "reason": reason,
                },
            ).scalar_one()
        return PlacedBracket(
            order.order_ref, "rejected" if reason else "submitted", list(ids), reason
        )

    def _spread_rejection(self, conn: Connection, order: SpreadOrder) -> str | None:
        if not conn.execute(_q("ticker_has_traded"), {"ticker": order.ticker}).scalar():
            return f"unknown ticker {order.ticker}: it has never traded in market_bars"
        if order.expiry <= order.session:
            return f"expiry {order.expiry} is not after the signal session {order.session}"
        last = conn.execute(_q("last_processed")).scalar()
        valid = self.config.entry_valid_sessions
        if last is not None and _ordinal(last) >= _ordinal(order.session) + valid:
            return (
                f"entry window passed: {valid} session(s) after "
                f"{order.session}, and {last} is already processed"
            )
        cost = order.limit_debit * CONTRACT_MULTIPLIER * order.contracts
        buying_power = self._snapshot(conn).buying_power
        if cost > buying_power:
            return (
                f"insufficient buying power: {order.contracts} x {order.limit_debit:g} x "
                f"{CONTRACT_MULTIPLIER} = {cost:,.2f} > {buying_power:,.2f}"
            )
        return None

    def cancel(self, order_ref: str) -> None:
        """Withdraw a working entry; a final order is left as it is."""
        with self._begin() as conn:
            self._lock(conn)
            spread = self._spread(conn, order_ref)
            if spread is not None:
                if spread["status"] == "filled":
                    raise BrokerError(
                        f"{order_ref} is a held spread: its conditional close stays with it "
                        "(sell it with close_position)"
                    )
                if spread["status"] == "working":
                    conn.execute(
                        _s("set_status"),
                        {
                            "order_ref": order_ref,
                            "status": "cancelled",
                            "reason": "cancelled by request",
                        },
                    )
                return
            row = self._order(conn, order_ref)
            if row["status"] == "filled":
                raise BrokerError(
                    f"{order_ref} is an open position: its exits stay with it "
                    "(move the stop with modify_stop)"
                )
            if row["status"] == "working":
                conn.execute(
                    _q("set_status"),
                    {
                        "order_ref": order_ref,
                        "status": "cancelled",
                        "reason": "cancelled by request",
                    },
                )

    def modify_stop(self, order_ref: str, new_stop: float) -> None:
        """Move the stop of a working or open bracket; it applies from the next processed bar
        (a stop already through the market exits at that bar's open)."""
        with self._begin() as conn:
            self._lock(conn)
            row = self._order(conn, order_ref)
            if row["status"] not in ("working", "filled"):
                raise BrokerError(f"{order_ref} is {row['status']}: it has no stop to move")
            d = _sign(row["side"])
            if not (new_stop > 0 and d * (row["take_profit"] - new_stop) > 0):
                raise BrokerError(
                    f"{order_ref}: stop {new_stop} is not on the loss side of "
                    f"the take-profit {row['take_profit']}"
                )
            if row["status"] == "working" and not d * (row["entry"] - new_stop) > 0:
                raise BrokerError(
                    f"{order_ref}: stop {new_stop} of a working entry must stay "
                    f"on the loss side of the entry {row['entry']}"
                )
            conn.execute(
                _q("record_stop_change"),
                {
                    "order_ref": order_ref,
                    "old_stop": row["stop"],
                    "new_stop": new_stop,
                    "after_session": conn.execute(_q("last_processed")).scalar(),
                },
            )
            conn.execute(_q("set_stop"), {"order_ref": order_ref, "new_stop": new_stop})

    def modify_take_profit(self, order_ref: str, new_take_profit: float) -> None:
        """Move the take-profit of a working or open bracket (from the next processed bar)."""
        with self._begin() as conn:
            self._lock(conn)
            row = self._order(conn, order_ref)
            if row["status"] not in ("working", "filled"):
                raise BrokerError(f"{order_ref} is {row['status']}: no take-profit to move")
            if not _sign(row["side"]) * (new_take_profit - row["stop"]) > 0:
                raise BrokerError(
                    f"{order_ref}: take-profit {new_take_profit} is not on the "
                    f"profit side of the stop {row['stop']}"
                )
            conn.execute(
                _q("set_take_profit"), {"order_ref": order_ref, "take_profit": new_take_profit}
            )

    def close_position(self, order_ref: str) -> None:
        """Exit an open position at the last processed close (the pipeline's expiry); a held
        spread is sold at its modelled price there."""
        with self._begin() as conn:
            self._lock(conn)
            spread = self._spread(conn, order_ref)
            if spread is not None:
                if spread["status"] == "filled":
                    self._close_spread(conn, spread)
                return
            row = self._order(conn, order_ref)
            if row["status"] != "filled":
                return  # already closed (or never filled): nothing to do
            last = conn.execute(_q("last_processed")).scalar()
            price = conn.execute(
                _q("last_close"),
                {"ticker": row["ticker"], "session": last, "since": row["signal_session"]},
            ).one()
            self._fill(conn, row, "close", price[0], float(price[1]), _sign(row["side"]))

    @staticmethod
    def _order(conn: Connection, order_ref: str) -> Any:
        row = conn.execute(_q("lock_order"), {"order_ref": order_ref}).mappings().first()
        if row is None:
            if conn.execute(_s("get_spread"), {"order_ref": order_ref}).first() is not None:
                raise BrokerError(
                    f"{order_ref} is an option spread: it has no stop or take-profit "
                    "(its exit is the conditional close)"
                )
            raise BrokerError(f"unknown order_ref {order_ref}")
        return row

    @staticmethod
    def _spread(conn: Connection, order_ref: str) -> Any:
        return conn.execute(_s("lock_spread"), {"order_ref": order_ref}).mappings().first()

    def _close_spread(self, conn: Connection, r: Any) -> None:
        last = conn.execute(_q("last_processed")).scalar()
        if last is None:
            raise BrokerError(f"{r['order_ref']}: no session processed yet to close it at")
        day, spot = conn.execute(
            _q("last_close"),
            {"ticker": r["ticker"], "session": last, "since": r["signal_session"]},
        ).one()
        vol = self._vol(conn, r, last)
        self._spread_fill(conn, r, "close", day, self._exit_value(r, spot, day, vol), spot, vol)

    # -- the market -------------------------------------------------------------------------

    def process_session(self, session: date) -> dict[str, Any]:
        """Apply `session`'s bars to working entries and open positions, in one transaction.

        Every session after the last processed one up to `session` is applied in order (on first
        use, from the session after the oldest working order's signal), so no bar is skipped. A
        session already processed changes nothing; an earlier unprocessed one is an error.
        """
        if not is_session(session):
            raise ValueError(f"{session} is not an NYSE session")
        summary: dict[str, Any] = {
            "sessions": [],
            "entries": 0,
            "exits": 0,
            "expired": 0,
            "cancelled": 0,
        }
        with self._begin() as conn:
            self._lock(conn)
            summary["already_processed"] = bool(
                conn.execute(_q("is_processed"), {"session": session}).scalar()
            )
            last = conn.execute(_q("last_processed")).scalar()
            if last is not None and session < last and not summary["already_processed"]:
                raise BrokerError(
                    f"sessions must be processed in order: {session} is earlier "
                    f"than the last processed session {last}"
                )
            working = [
                conn.execute(_q("earliest_working")).scalar(),
                conn.execute(_s("earliest_working")).scalar(),
            ]
            after = last or min(
                min((d for d in working if d is not None), default=session),
                session - timedelta(days=1),
            )
            for day in nyse_sessions(after + timedelta(days=1), session):
                counts = self._apply(conn, day)
                for key, n in self._apply_spreads(conn, day).items():
                    counts[key] += n
                conn.execute(
                    _q("record_session"),
                    {
                        "session": day,
                        "entries": counts["entries"],
                        "exits": counts["exits"],
                        "expired": counts["expired"],
                    },
                )
                summary["sessions"].append(day)
                for key, n in counts.items():
                    summary[key] += n
            summary["cash"] = conn.execute(_q("cash")).scalar_one()
        return summary

    def _apply(self, conn: Connection, day: date) -> dict[str, int]:
        """One session's bar for every live order, by seq: entry fill (cancelling the OCA
        siblings at once), then exit, then expiry."""
        counts = {"entries": 0, "exits": 0, "expired": 0, "cancelled": 0}
        rows = conn.execute(_q("live_orders_on_session"), {"session": day}).mappings().all()
        if rows and not conn.execute(_q("bars_exist"), {"session": day}).scalar():
            raise BrokerError(f"no market_bars stored for {day}: load them before processing")
        today = _ordinal(day)
        prices = {r["order_ref"]: _entry_price(r) for r in rows if r["status"] == "working"}
        winners = _oca_winners(rows, prices)
        cancelled: set[str] = set()  # OCA siblings cancelled on this bar: rows are a snapshot
        for r in rows:
            if r["order_ref"] in cancelled:
                continue
            d, has_bar = _sign(r["side"]), r["open"] is not None
            bar = (r["open"], r["high"], r["low"]) if has_bar else None
            if r["status"] == "working":
                price = prices[r["order_ref"]]
                winner = winners.get(r["oca_group"]) if price == price else None
                if winner not in (None, r["order_ref"]):
                    continue  # another leg of its group takes this bar and will cancel it
                if price != price:
                    if today >= _ordinal(r["signal_session"]) + r["valid_sessions"]:
                        conn.execute(
                            _q("set_status"),
                            {
                                "order_ref": r["order_ref"],
                                "status": "expired",
                                "reason": f"unfilled after {r['valid_sessions']} session(s)",
                            },
                        )
                        counts["expired"] += 1
                    continue
                self._fill(conn, r, "entry", day, float(price), -d)
                counts["entries"] += 1
                if r["oca_group"] is not None:
                    gone = (
                        conn.execute(
                            _q("cancel_oca_siblings"),
                            {"order_ref": r["order_ref"], "oca_group": r["oca_group"]},
                        )
                        .scalars()
                        .all()
                    )
                    cancelled.update(gone)
                    counts["cancelled"] += len(gone)
                fill_ord, stop_only = today, price != r["open"]
                # the position starts at the fill: a stop-entry's open through the stop came
                # before it (for a limit entry or a fill at the open this changes nothing)
                bar = (float(price), bar[1], bar[2])
            else:
                fill_ord, stop_only = _ordinal(r["fill_session"]), False
            if bar:
                exit_price, status = exit_on_bar(d, r["stop"], r["take_profit"], *bar, stop_only)
                if status:
                    self._fill(conn, r, _EXIT_LEGS[int(status)], day, float(exit_price), d)
                    counts["exits"] += 1
                    continue
            if today >= fill_ord + self.config.max_holding_sessions - 1:
                at, close = (
                    (day, r["close"])
                    if bar
                    else conn.execute(
                        _q("last_close"),
                        {"ticker": r["ticker"], "session": day, "since": r["fill_session"] or day},
                    ).one()
                )
                self._fill(conn, r, "expiry", at, float(close), d)
                counts["exits"] += 1
        return counts

    def _apply_spreads(self, conn: Connection, day: date) -> dict[str, int]:
        """One session's bar for every working combo and held spread, by seq: entry fill, then
        the conditional close, then settlement at expiry, else the close's mark (module doc)."""
        counts = {"entries": 0, "exits": 0, "expired": 0}
        rows = conn.execute(_s("live_on_session"), {"session": day}).mappings().all()
        if rows and not conn.execute(_q("bars_exist"), {"session": day}).scalar():
            raise BrokerError(f"no market_bars stored for {day}: load them before processing")
        for r in rows:
            vol = self._vol(conn, r, day)
            has_bar = r["open"] is not None
            held_all_day = r["status"] == "filled"
            if r["status"] == "working":
                if r["expiry"] <= day:
                    self._expire_spread(conn, r, f"unfilled by its expiry {r['expiry']}")
                    counts["expired"] += 1
                    continue
                price, at_open = (
                    self._spread_entry(r, day, vol) if has_bar and vol == vol else (np.nan, False)
                )
                if price != price:
                    if _ordinal(day) >= _ordinal(r["signal_session"]) + r["valid_sessions"]:
                        self._expire_spread(
                            conn, r, f"unfilled after {r['valid_sessions']} session(s)"
                        )
                        counts["expired"] += 1
                    continue
                spot = r["open"] if at_open else (r["low"] if _calls(r) else r["high"])
                self._spread_fill(conn, r, "entry", day, price, spot, vol)
                counts["entries"] += 1
                held_all_day = at_open  # an intraday limit fill: the condition from tomorrow
            if has_bar and held_all_day:
                trigger, opened = r["close_trigger"], r["open"]
                crossed = r["high"] >= trigger if _calls(r) else r["low"] <= trigger
                if crossed:
                    through = opened >= trigger if _calls(r) else opened <= trigger
                    spot = opened if through else trigger
                    value = self._exit_value(r, spot, day, vol)
                    self._spread_fill(conn, r, "condition", day, value, spot, vol)
                    counts["exits"] += 1
                    continue
            if day >= r["expiry"]:
                _, spot = conn.execute(
                    _q("last_close"),
                    {
                        "ticker": r["ticker"],
                        "session": min(day, r["expiry"]),
                        "since": r["signal_session"],
                    },
                ).one()
                self._spread_fill(conn, r, "expiry", day, _settlement(r, spot), spot, None)
                counts["exits"] += 1
                continue
            if has_bar:
                mark = _combo_value(r, r["close"], day, vol, self.rate)
                conn.execute(
                    _s("set_mark"), {"order_ref": r["order_ref"], "mark": mark, "session": day}
                )
        return counts

    def _exit_value(self, r: Any, spot: float, day: date, vol: float) -> float:
        """What selling the combo gets: the model less the slippage setting (never below 0)."""
        value = _combo_value(r, spot, day, vol, self.rate)
        return _cents(max(value - self.options.slippage, 0.0))

    def _spread_entry(self, r: Any, day: date, vol: float) -> tuple[float, bool]:
        """The entry fill of a working combo on the row's bar, and whether it was at the open
        (NaN: the limit was not reached)."""
        # a combo trades at a penny at least: a worthless-looking one still costs one
        at_open = max(_combo_value(r, r["open"], day, vol, self.rate), 0.01)
        if at_open <= r["limit_debit"]:
            return at_open, True
        best = _combo_value(r, r["low"] if _calls(r) else r["high"], day, vol, self.rate)
        return (float(r["limit_debit"]), False) if best <= r["limit_debit"] else (np.nan, False)

    def _vol(self, conn: Connection, r: Any, day: date) -> float:
        """Implied vol for `r`'s underlying on `day`: realised vol of the closes before `day`
        x iv_multiplier; a held spread whose ticker lacks the history keeps its entry vol."""
        closes = (
            conn.execute(
                _s("closes_before"),
                {"ticker": r["ticker"], "session": day, "n": self.options.vol_window + 1},
            )
            .scalars()
            .all()
        )
        vol = realised_vol(closes[::-1], self.options.vol_window) * self.options.iv_multiplier
        return self._held_vol(r, vol)

    @staticmethod
    def _held_vol(r: Any, vol: float) -> float:
        return vol if vol == vol or r["entry_vol"] is None else float(r["entry_vol"])

    @staticmethod
    def _expire_spread(conn: Connection, r: Any, reason: str) -> None:
        conn.execute(
            _s("set_status"), {"order_ref": r["order_ref"], "status": "expired", "reason": reason}
        )

    @staticmethod
    def _spread_fill(
        conn: Connection,
        r: Any,
        leg: str,
        day: date,
        price: float,
        spot: float,
        vol: float | None,
    ) -> None:
        """Record one combo fill and move the cash: the entry pays price x 100 x contracts,
        an exit receives it."""
        cash = (-1 if leg == "entry" else 1) * price * CONTRACT_MULTIPLIER * r["contracts"]
        conn.execute(
            _s("insert_fill"),
            {
                "order_ref": r["order_ref"],
                "leg": leg,
                "session": day,
                "price": price,
                "contracts": r["contracts"],
                "spot": float(spot),
                "vol": None if vol is None or vol != vol else float(vol),
                "cash_change": cash,
            },
        )
        conn.execute(_q("add_cash"), {"amount": cash})
        conn.execute(
            _s("set_status"),
            {
                "order_ref": r["order_ref"],
                "reason": None,
                "status": "filled" if leg == "entry" else "closed",
            },
        )
        conn.execute(
            _s("set_mark"),
            {"order_ref": r["order_ref"], "mark": price if leg == "entry" else 0.0, "session": day},
        )

    @staticmethod
    def _fill(conn: Connection, r: Any, leg: str, day: date, price: float, cash_sign: int) -> None:
        """Record one leg and move the cash: `cash_sign` -1 pays, +1 receives."""
        cash = cash_sign * r["quantity"] * price
        conn.execute(
            _q("insert_fill"),
            {
                "order_ref": r["order_ref"],
                "leg": leg,
                "session": day,
                "price": price,
                "quantity": r["quantity"],
                "cash_change": cash,
            },
        )
        conn.execute(_q("add_cash"), {"amount": cash})
        conn.execute(
            _q("set_status"),
            {
                "order_ref": r["order_ref"],
                "reason": None,
                "status": "filled" if leg == "entry" else "closed",
            },
        )

    # -- reading ----------------------------------------------------------------------------

    def account(self) -> AccountSnapshot:
        with self._begin() as conn:
            self._lock(conn)
            return self._snapshot(conn)

    def _snapshot(self, conn: Connection) -> AccountSnapshot:
        cash = conn.execute(_q("cash")).scalar_one()
        last = conn.execute(_q("last_processed")).scalar()
        held = conn.execute(_q("open_positions"), {"as_of": last}).mappings().all()
        value = sum(_sign(p["side"]) * p["quantity"] * p["last_close"] for p in held)
        gross = sum(p["quantity"] * p["last_close"] for p in held)
        at_risk = sum(
            max(0.0, _sign(p["side"]) * (p["fill_price"] - p["stop"])) * p["quantity"] for p in held
        )
        working = conn.execute(_q("working_entries")).mappings().one()
        book = conn.execute(_s("book")).mappings().one()
        equity = cash + value + book["held_value"]
        excess = equity - gross - book["held_value"]  # a held spread is no liquidity
        return AccountSnapshot(
            equity=equity,
            buying_power=excess - working["reserved"] - book["reserved"],
            excess_liquidity=excess,
            open_risk=at_risk + working["risk"] + book["held_risk"] + book["reserved"],
            open_positions=len(held) + book["held"],
        )

    def positions(self) -> list[Position]:
        with self._begin() as conn:
            last = conn.execute(_q("last_processed")).scalar()
            held = conn.execute(_q("open_positions"), {"as_of": last}).mappings().all()
        return [
            Position(
                p["ticker"],
                _sign(p["side"]) * p["quantity"],
                p["fill_price"],
                p["order_ref"],
                p["fill_session"],
            )
            for p in held
        ]

    def find_refs(self, order_refs: list[str]) -> dict[str, KnownOrder]:
        """Every ref placed, bracket or spread, whatever became of it; a working entry's state
        is 'open'. A spread's conditional close is part of its combo here, so its ref
        (`close_ref`) is known exactly when the spread's is."""
        refs = list(order_refs)
        closes = {r.removesuffix(CLOSE_SUFFIX): r for r in refs if r.endswith(CLOSE_SUFFIX)}
        with self._begin() as conn:
            brackets = conn.execute(_q("find_refs"), {"refs": refs}).mappings().all()
            spreads = conn.execute(_s("find_refs"), {"refs": refs + list(closes)}).mappings().all()
        known = {}
        for r in [*brackets, *spreads]:
            found = KnownOrder(
                r["order_ref"],
                list(r["broker_order_ids"]),
                "open" if r["status"] == "working" else r["status"],
            )
            if r["order_ref"] in refs:
                known[r["order_ref"]] = found
            if r["order_ref"] in closes:
                ref = closes[r["order_ref"]]
                known[ref] = KnownOrder(ref, found.broker_order_ids, found.state)
        return known

    def sync(self, through: date) -> None:
        self.process_session(through)

    def current_session(self, through: date) -> date:
        """The account's last processed close, or `through` when that is later (a sync to
        `through` would bring it there): orders of sessions it already passed are stale."""
        with self._begin() as conn:
            last = conn.execute(_q("last_processed")).scalar()
        return through if last is None or last < through else last

    def fills(self, order_ref: str) -> list[dict[str, Any]]:
        """The fills of one bracket, entry first (for the journal and tests)."""
        with self._begin() as conn:
            return [
                dict(r)
                for r in conn.execute(_q("fills_of"), {"order_ref": order_ref}).mappings().all()
            ]

    def spreads(self) -> list[dict[str, Any]]:
        """Every combo placed, with its entry and exit fills (journal, promotion, tests)."""
        with self._begin() as conn:
            return [dict(r) for r in conn.execute(_s("spreads")).mappings().all()]

    def spread_fills(self, order_ref: str) -> list[dict[str, Any]]:
        """The fills of one combo, entry first."""
        with self._begin() as conn:
            return [
                dict(r)
                for r in conn.execute(_s("fills_of"), {"order_ref": order_ref}).mappings().all()
            ]

    def close(self) -> None:
        """Nothing to release: connections belong to the engine."""

    def executions(self) -> list[TradeFill]:
        """Every fill, brackets and combos, in the journal's terms: no commission (the
        simulated broker charges none), no time of day (a daily bar does not say)."""
        with self._begin() as conn:
            rows = (
                conn.execute(query("journal.sim_executions"), {"multiplier": CONTRACT_MULTIPLIER})
                .mappings()
                .all()
            )
        return [_trade_fill(r) for r in rows]


_BRACKET_PURPOSE: dict[str, Purpose] = {
    "entry": "entry",
    "take_profit": "take_profit",
    "stop": "stop",
    "expiry": "expiry",  # the holding limit, reached at the broker
    "close": "close",
}
_COMBO_PURPOSE: dict[str, Purpose] = {
    "entry": "entry",
    "condition": "condition",
    "expiry": "settlement",  # a spread held to its expiry settles at intrinsic value
    "close": "close",
}


def _trade_fill(r: Any) -> TradeFill:
    """One sim_fills / sim_spread_fills row as the journal reads it: a combo is bought on its
    entry and sold on its exit; a bracket's entry buys a long and sells a short."""
    opening = r["leg"] == "entry"
    if r["combo"]:
        action, purpose = ("BUY" if opening else "SELL"), _COMBO_PURPOSE[r["leg"]]
    else:
        action = "BUY" if opening == (r["side"] == "long") else "SELL"
        purpose = _BRACKET_PURPOSE[r["leg"]]
    return TradeFill(
        order_ref=r["order_ref"],
        ticker=r["ticker"],
        action=action,
        quantity=int(r["quantity"]),
        price=float(r["price"]),
        session=r["session"],
        purpose=purpose,
        fill_id=f"{r['order_ref']}:{r['leg']}",  # one fill per leg and ref
    )

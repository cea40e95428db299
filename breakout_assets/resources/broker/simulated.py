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
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

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


class SimulatedBroker:
    """The `Broker` protocol on Postgres. `engine` is an Engine or a factory of connections
    inside a transaction that commits on exit (e.g. `PostgresResource.transaction`)."""

    name = "simulated"

    def __init__(
        self,
        engine: Engine | ConnectionFactory,
        starting_equity: float = 100_000.0,
        config: OutcomeConfig | None = None,
    ) -> None:
        if starting_equity <= 0:
            raise ValueError(f"starting_equity must be positive, got {starting_equity}")
        self._begin: ConnectionFactory = engine.begin if isinstance(engine, Engine) else engine
        self.starting_equity = float(starting_equity)
        self.config = config or OutcomeConfig()

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

    def cancel(self, order_ref: str) -> None:
        """Withdraw a working entry; a final order is left as it is."""
        with self._begin() as conn:
            self._lock(conn)
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
        """Exit an open position at the last processed close (the pipeline's expiry)."""
        with self._begin() as conn:
            self._lock(conn)
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
            raise BrokerError(f"unknown order_ref {order_ref}")
        return row

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
            after = last or min(
                conn.execute(_q("earliest_working")).scalar() or session,
                session - timedelta(days=1),
            )
            for day in nyse_sessions(after + timedelta(days=1), session):
                counts = self._apply(conn, day)
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
        equity = cash + value
        excess = equity - gross
        return AccountSnapshot(
            equity=equity,
            buying_power=excess - working["reserved"],
            excess_liquidity=excess,
            open_risk=at_risk + working["risk"],
            open_positions=len(held),
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
        """Every ref placed, whatever became of it; a working entry's state is 'open'."""
        with self._begin() as conn:
            rows = conn.execute(_q("find_refs"), {"refs": list(order_refs)}).mappings().all()
        return {
            r["order_ref"]: KnownOrder(
                r["order_ref"],
                list(r["broker_order_ids"]),
                "open" if r["status"] == "working" else r["status"],
            )
            for r in rows
        }

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

    def close(self) -> None:
        """Nothing to release: connections belong to the engine."""

"""The broker's account as it stood after the close of past sessions: what a backfill of
`trade_plan` sizes an old session against, instead of today's equity.

The simulated broker keeps everything needed in Postgres (its starting cash, every fill with its
session and cash, every stop change with the session after which it was made, each bracket's
signal session and entry window), so its account after any processed session is rebuilt here
by the same rules its live snapshot uses (`SimulatedBroker._snapshot`): equity is cash plus open
positions at that session's close; open risk counts positions to their stop in force and working
entries to theirs; working entries reserve buying power, an OCA group its largest entry only.
What cannot be known afterwards is counted against us: an entry cancelled by request still
works until its window ends (more risk, smaller sizes, never a breached cap).

IBKR reports only the account as it is now, so it has no history here. Which sessions are past
is the broker's to say (`Broker.current_session`), the same clock that expires stale plans.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import numpy as np
from sqlalchemy import Connection

from breakout_assets.partitions import session_ordinals
from breakout_assets.resources.broker.base import AccountSnapshot
from breakout_assets.resources.sql import query


def _q(name: str):
    return query(f"account_history.{name}")


BROKERS_WITH_HISTORY = ("simulated",)


def _ordinal(days: list[date]) -> dict[date, int]:
    ordinals = session_ordinals(np.array(days, dtype="datetime64[D]"))
    return dict(zip(days, (int(o) for o in ordinals), strict=True))


def simulated_accounts_as_of(conn: Connection, sessions: list[date]) -> dict[date, AccountSnapshot]:
    """The simulated account after the close of each of `sessions` (none if it was never used).

    Brackets of a session's own signals are not in it: they were placed after that close.
    """
    if not sessions:
        return {}
    cash = dict(conn.execute(_q("simulated_cash_as_of"), {"sessions": sessions}).all())
    rows = conn.execute(_q("simulated_orders_as_of"), {"sessions": sessions}).mappings().all()
    spreads = dict(conn.execute(_q("simulated_spreads_as_of"), {"sessions": sessions}).all())
    ordinal = _ordinal(sorted({*sessions, *(r["signal_session"] for r in rows)}))
    by_session: dict[date, list] = defaultdict(list)
    for r in rows:
        by_session[r["session"]].append(r)
    return {
        d: _snapshot(d, cash[d], by_session[d], ordinal, float(spreads.get(d) or 0.0))
        for d in sessions
        if d in cash
    }


def _snapshot(
    session: date, cash: float, rows: list, ordinal: dict[date, int], spread_debit: float = 0.0
) -> AccountSnapshot:
    """`spread_debit`: the option combos held, at cost (their value and their risk)."""
    held = [r for r in rows if r["entry_session"] is not None and r["entry_session"] <= session]
    working = [r for r in rows if r["entry_session"] is None or r["entry_session"] > session]
    working = [
        r
        for r in working
        if ordinal[session] < ordinal[r["signal_session"]] + r["valid_sessions"]
        and (r["group_filled"] is None or r["group_filled"] > session)
    ]
    sign = {"long": 1, "short": -1}
    value = sum(sign[p["side"]] * p["quantity"] * p["last_close"] for p in held)
    gross = sum(p["quantity"] * p["last_close"] for p in held)
    at_risk = sum(
        max(0.0, sign[p["side"]] * (p["fill_price"] - p["stop"])) * p["quantity"] for p in held
    )
    reserved: dict[str, float] = defaultdict(float)
    risk: dict[str, float] = defaultdict(float)
    for w in working:  # an OCA group can fill one entry: it counts its largest
        group = w["oca_group"] or w["order_ref"]
        reserved[group] = max(reserved[group], w["quantity"] * w["entry"])
        risk[group] = max(risk[group], w["quantity"] * abs(w["entry"] - w["stop"]))
    equity = cash + value + spread_debit
    excess = equity - gross - spread_debit
    return AccountSnapshot(
        equity=equity,
        buying_power=excess - sum(reserved.values()),
        excess_liquidity=excess,
        open_risk=at_risk + sum(risk.values()) + spread_debit,
        open_positions=len(held),
    )

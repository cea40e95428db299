"""`stop_updates`: open positions managed by rule after each close (core.trade_management).

For each session: the broker is brought up to the close, its positions are reconciled with our
sent plans (a position we have no plan for, or a plan the broker says is filled but holds no
position for, is reported, never adopted or dropped), each position is rebuilt from its plan
and the actions already recorded, and the session's actions are applied to the live bracket
(stop and take-profit of the bracket and of its add-on, the add-on as its own order, expiry as
a close). Primary brackets follow the primary book's rules, filled fade legs the opposing
book's. Dry-run and the run guard (kill switch, dead parent, stopped run) as for orders; an
add-on is a new entry, so like a plan it is sent only inside its entry window as the broker
sees it, and expired (recorded, never sent) once that has passed. A position already handled
for a session is rebuilt with them, so a re-run finds nothing left to do and changes nothing.
"""

import math
from datetime import date

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
)
from sqlalchemy import Connection

from breakout_assets.assets.common import session_asset
from breakout_assets.assets.orders import BROKER_ASSET_TAGS, BROKER_POOL, entry_window
from breakout_assets.core.trade_management import (
    Action,
    ManagedPosition,
    ManagementConfig,
    apply,
    bars_from_arrays,
    manage,
)
from breakout_assets.partitions import keys_to_sessions, session_ordinals
from breakout_assets.resources.broker.base import BracketOrder, Broker, BrokerError
from breakout_assets.resources.broker.resource import BrokerResource
from breakout_assets.resources.kill_switch import KillSwitch
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.run_guard import RunGuard
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

GROUP = "trading"


def _ordinal(day: date) -> int:
    return int(session_ordinals([day])[0])


def _finite(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def rebuild(
    conn: Connection, plan, book: str, fill_price: float, fill_session: date, session: date
) -> ManagedPosition:
    """The position as our records say it is: the plan, then every action recorded for it up to
    `session` (those of `session` included, so a re-run finds nothing left to do)."""
    position = ManagedPosition(
        order_ref=plan.order_ref,
        book=book,
        side=plan.side,
        fill_price=fill_price,
        fill_session=_ordinal(fill_session),
        quantity=int(plan.quantity),
        original_stop=float(plan.stop),
        stop=float(plan.stop),
        take_profit=float(plan.take_profit),
        planned_risk=abs(plan.entry - plan.stop),
        original_dollar_risk=int(plan.quantity) * abs(plan.entry - plan.stop),
        signal_entry=float(plan.signal_entry),
        targets=(float(plan.target_50), float(plan.target_75), float(plan.target_100)),
    )
    prior = pd.read_sql(
        query("management.prior_updates"),
        conn,
        params={"order_ref": plan.order_ref, "session": session},
    )
    return apply(
        position,
        [
            Action(
                r.action,
                _ordinal(r.session),
                r.old_stop,
                r.new_stop,
                r.old_quantity,
                r.new_quantity,
                r.old_take_profit,
                r.new_take_profit,
                r.price if r.price is not None else math.nan,
                r.reason,
            )
            for r in prior.itertuples()
        ],
    )


def send(
    broker: Broker,
    position: ManagedPosition,
    ticker: str,
    action: Action,
    session: date,
    valid_sessions: int,
) -> None:
    """One action to the live bracket (and to its add-on bracket when there is one)."""
    refs = [position.order_ref, f"{position.order_ref}-ADD"]
    if action.action == "expire":
        for ref in refs:
            broker.close_position(ref)
    elif action.action == "add_on":
        broker.place_bracket(
            BracketOrder(
                order_ref=refs[1],
                ticker=ticker,
                side=position.side,
                quantity=action.new_quantity - action.old_quantity,
                entry=action.price,
                stop=action.new_stop,
                take_profit=action.new_take_profit,
                session=session,
                valid_sessions=valid_sessions,
            )
        )
    else:
        for i, ref in enumerate(refs):
            try:
                if action.new_stop != action.old_stop:
                    broker.modify_stop(ref, action.new_stop)
                if action.new_take_profit != action.old_take_profit:
                    broker.modify_take_profit(ref, action.new_take_profit)
            except BrokerError:
                if i == 0:
                    raise  # the add-on bracket may not exist (no add-on, or not filled)


def build_management_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    kill_switch = KillSwitch(settings.kill_switch_path)
    config = ManagementConfig(outcomes=settings.outcomes)

    @session_asset(
        partitions_def,
        GROUP,
        kinds={"postgres"},
        deps=["broker_orders", "opposing_orders", "trade_plan", "breakout_signals", "market_bars"],
        **versioned(settings, ("dry_run", "outcomes"), ("management",)),
        pool=BROKER_POOL,
        tags=BROKER_ASSET_TAGS,
    )
    def stop_updates(
        context: AssetExecutionContext, postgres: PostgresResource, broker: BrokerResource
    ) -> MaterializeResult:
        """Breakeven, day-2 add-on, trail, take-profit and expiry actions on open positions,
        applied to the live brackets (recorded only, in dry-run)."""
        guard = RunGuard.start(context, kill_switch)
        valid_sessions = settings.outcomes.entry_valid_sessions
        counts: dict[str, int] = {}
        unknown_positions, missing_positions = set(), set()
        with broker.session() as connected:
            for session in keys_to_sessions(context.partition_keys):
                connected.sync(session)
                held = {p.order_ref: p for p in connected.positions()}
                with postgres.transaction() as conn:
                    sent = list(
                        conn.execute(query("management.sent_refs"), {"session": session}).scalars()
                    )
                    plans = pd.concat(
                        [
                            pd.read_sql(
                                query(f"management.{statement}"), conn, params={"refs": list(held)}
                            ).assign(book=book)
                            for statement, book in (
                                ("managed_plans", "primary"),
                                ("managed_fades", "opposing"),
                            )
                        ],
                        ignore_index=True,
                    )
                known = connected.find_refs(sent) if sent else {}
                unknown_positions |= {
                    str(r)
                    for r in held
                    if r not in set(plans["order_ref"]) and not str(r).endswith("-ADD")
                }
                missing_positions |= {
                    r
                    for r, k in known.items()
                    if k.state in ("filled", "executed") and r not in held
                }
                for plan in plans.itertuples():
                    p = held[plan.order_ref]
                    with postgres.transaction() as conn:
                        position = rebuild(
                            conn,
                            plan,
                            plan.book,
                            p.average_price,
                            p.opened or plan.session,
                            session,
                        )
                        bars = pd.read_sql(
                            query("management.ticker_bars"),
                            conn,
                            params={
                                "ticker": plan.ticker,
                                "first": p.opened or plan.session,
                                "last": session,
                            },
                        )
                    path = bars_from_arrays(
                        session_ordinals(bars["session"]),
                        bars["open"],
                        bars["high"],
                        bars["low"],
                        bars["close"],
                    )
                    for action in manage(position, path, _ordinal(session), config):
                        status, error = ("dry_run" if settings.dry_run else "applied"), None
                        stop = guard.stop()
                        window = (
                            entry_window(connected, session, valid_sessions)
                            if action.action == "add_on"
                            else None
                        )
                        if stop is not None:
                            status, error = "halted", stop.reason
                        elif window is not None and window.state != "open":
                            # a stale add-on is expired; one before its session's close waits
                            status = "expired" if window.state == "passed" else "halted"
                            error = window.reason
                        elif not settings.dry_run:
                            try:
                                send(
                                    connected,
                                    position,
                                    plan.ticker,
                                    action,
                                    session,
                                    valid_sessions,
                                )
                            except BrokerError as exc:
                                status, error = "error", str(exc)
                        with postgres.transaction() as conn:
                            conn.execute(
                                query("management.insert_update"),
                                {
                                    "order_ref": plan.order_ref,
                                    "session": session,
                                    "action": action.action,
                                    "old_stop": action.old_stop,
                                    "new_stop": action.new_stop,
                                    "old_quantity": action.old_quantity,
                                    "new_quantity": action.new_quantity,
                                    "old_take_profit": _finite(action.old_take_profit),
                                    "new_take_profit": _finite(action.new_take_profit),
                                    "price": _finite(action.price),
                                    "reason": action.reason,
                                    "dry_run": settings.dry_run,
                                    "status": status,
                                    "error": error,
                                },
                            )
                        counts[f"{action.action}:{status}"] = (
                            counts.get(f"{action.action}:{status}", 0) + 1
                        )
                        if stop is not None:
                            stop.raise_if_orphaned()
                        if status in ("halted", "error", "expired"):
                            break  # the rest of this position's actions wait for a re-run
                        position = apply(position, [action])
        for what, refs in (
            ("positions the broker holds that we have no plan for", unknown_positions),
            ("plans the broker says are filled but holds no position for", missing_positions),
        ):
            if refs:
                context.log.warning(f"RECONCILE: {what}: {sorted(refs)} (not adopted, not dropped)")
        return MaterializeResult(
            metadata={
                "dry_run": settings.dry_run,
                "actions": MetadataValue.json(counts),
                "unknown_positions": MetadataValue.json(sorted(unknown_positions)),
                "missing_positions": MetadataValue.json(sorted(missing_positions)),
            }
        )

    return [stop_updates]

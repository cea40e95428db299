"""`fade_plan` and `opposing_orders`: the fade of primaries the model expects to fail.

`fade_plan` (after the close, with the trade plan): on each session, every opposing candidate
whose legs window is open is replayed on the daily bars up to that close; when its 2-bar reversal
alert armed on that session, the fade is planned (no alert, no trade): the alert stop-entry and
the 75% limit as one-cancels-other legs, stop at the 50% target line, take-profit at the
primary's stop, each leg 1R from its own entry (core.opposing). Plans wait for approval like
primary plans (`breakout approve`).

`opposing_orders` (a broker asset, in broker-tagged jobs only): approved fades are sent with
the same dry-run, run-guard, entry-window and find-refs-first rules as `broker_orders`; a fade
whose window has passed by the broker's current session is expired, never sent.
"""

import json

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
)

from breakout_assets.assets.common import session_asset
from breakout_assets.assets.orders import (
    BROKER_ASSET_TAGS,
    BROKER_POOL,
    entry_window,
    record_halt,
)
from breakout_assets.assets.trading import UNATTENDED
from breakout_assets.core.opposing import FadeBars, plan_fade
from breakout_assets.partitions import keys_to_sessions, lookback_start, session_ordinals
from breakout_assets.resources.broker.base import BracketOrder
from breakout_assets.resources.broker.resource import BrokerResource
from breakout_assets.resources.kill_switch import KillSwitch
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.run_guard import RunGuard
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

GROUP = "trading"


def fade_ref(ticker: str, signal_session, fade_side: int) -> str:
    return f"OPP-{ticker}-{signal_session:%Y%m%d}-{'L' if fade_side > 0 else 'S'}"


def legs(plan) -> list[BracketOrder]:
    """The fade's entry legs, one OCA group: the alert stop-entry, and the 75% limit if any."""
    side = plan.side
    common = dict(
        ticker=plan.ticker,
        side=side,
        stop=float(plan.stop),
        take_profit=float(plan.take_profit),
        session=plan.session,
        valid_sessions=int(plan.valid_sessions),
        oca_group=plan.order_ref,
    )
    orders = []
    if plan.alert_quantity > 0:
        orders.append(
            BracketOrder(
                order_ref=f"{plan.order_ref}-ALT",
                entry_type="stop",
                quantity=int(plan.alert_quantity),
                entry=float(plan.alert_level),
                **common,
            )
        )
    if plan.limit_level is not None and not pd.isna(plan.limit_level) and plan.limit_quantity:
        orders.append(
            BracketOrder(
                order_ref=f"{plan.order_ref}-LIM",
                entry_type="limit",
                quantity=int(plan.limit_quantity),
                entry=float(plan.limit_level),
                **common,
            )
        )
    return orders


def build_opposing_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    config = settings.opposing
    kill_switch = KillSwitch(settings.kill_switch_path)

    @session_asset(
        partitions_def,
        GROUP,
        kinds={"postgres"},
        deps=["signal_scores", "breakout_signals", "market_bars"],
        **versioned(settings, ("opposing", "auto_approve"), ("opposing", "trading")),
    )
    def fade_plan(
        context: AssetExecutionContext, postgres: PostgresResource, broker: BrokerResource
    ) -> MaterializeResult:
        """Fades planned on the session their reversal alert armed, sized against the broker's
        equity, awaiting approval (approved at once only in unattended mode)."""
        sessions = keys_to_sessions(context.partition_keys)
        with broker.session() as connected:
            equity = connected.account().equity
        planned = 0
        for session in sessions:
            earliest = lookback_start(session, config.window_sessions)
            today = int(session_ordinals([session])[0])
            with postgres.transaction() as conn:
                candidates = pd.read_sql(
                    query("opposing.candidates"),
                    conn,
                    params={"session": session, "earliest": earliest},
                )
                for c in candidates.itertuples():
                    bars = pd.read_sql(
                        query("opposing.bars_after"),
                        conn,
                        params={"ticker": c.ticker, "after": c.session, "through": session},
                    )
                    if bars.empty:
                        continue
                    plan = plan_fade(
                        1 if c.side == "long" else -1,
                        c.entry,
                        c.stop,
                        c.booked_target,
                        c.target_50,
                        FadeBars(
                            session_ordinals(bars["session"]),
                            bars["open"],
                            bars["high"],
                            bars["low"],
                            bars["close"],
                        ),
                        int(session_ordinals([c.session])[0]),
                        today,
                        equity,
                        config,
                    )
                    if plan is None:
                        continue
                    sized = plan.alert_quantity > 0
                    status = (
                        ("approved" if settings.auto_approve else "pending_approval")
                        if sized
                        else "skipped"
                    )
                    conn.execute(
                        query("opposing.insert_plan"),
                        {
                            "order_ref": fade_ref(c.ticker, c.session, plan.side),
                            "signal_id": c.signal_id,
                            "session": session,
                            "signal_session": c.session,
                            "ticker": c.ticker,
                            "side": "long" if plan.side > 0 else "short",
                            "confidence": c.confidence,
                            "alert_level": plan.alert_level,
                            "alert_quantity": plan.alert_quantity,
                            "limit_level": plan.limit_level
                            if plan.limit_quantity is not None
                            else None,
                            "limit_quantity": plan.limit_quantity,
                            "stop": plan.stop,
                            "take_profit": plan.take_profit,
                            "risk_dollars": plan.risk_dollars,
                            "valid_sessions": plan.valid_sessions,
                            "status": status,
                            "reason": (
                                f"2-bar reversal alert armed at {plan.alert_level:.4f}; "
                                f"primary confidence {c.confidence:.3f}"
                            )
                            if sized
                            else "a leg of 1R cannot buy one share",
                            "decided_by": UNATTENDED if status == "approved" else None,
                            "decided_at": pd.Timestamp.now(tz="UTC")
                            if status == "approved"
                            else None,
                        },
                    )
                    planned += 1
        with postgres.transaction() as conn:
            counts = pd.read_sql(query("opposing.counts"), conn, params={"sessions": sessions})
        return MaterializeResult(
            metadata={
                "planned": planned,
                "equity": round(equity, 2),
                "by_status": MetadataValue.md(counts.to_markdown(index=False)),
            }
        )

    @session_asset(
        partitions_def,
        GROUP,
        kinds={"postgres"},
        deps=["fade_plan"],
        **versioned(settings, ("dry_run", "opposing"), ("opposing", "trading")),
        pool=BROKER_POOL,
        tags=BROKER_ASSET_TAGS,
    )
    def opposing_orders(
        context: AssetExecutionContext, postgres: PostgresResource, broker: BrokerResource
    ) -> MaterializeResult:
        """Approved fades sent as two one-cancels-other legs (recorded only, in dry-run);
        fades whose entry window has passed expired, never sent."""
        guard = RunGuard.start(context, kill_switch)
        sessions = keys_to_sessions(context.partition_keys)
        outcome = send_approved(context, postgres, broker, sessions, guard, settings.dry_run)
        with postgres.transaction() as conn:
            counts = pd.read_sql(query("opposing.counts"), conn, params={"sessions": sessions})
        return MaterializeResult(
            metadata={
                "legs_sent": outcome.pop("legs_sent", 0),
                "dry_run": settings.dry_run,
                "outcome": MetadataValue.json(outcome),
                "by_status": MetadataValue.md(counts.to_markdown(index=False)),
            }
        )

    return [fade_plan, opposing_orders]


def send_approved(
    context,
    postgres: PostgresResource,
    broker: BrokerResource,
    sessions,
    guard: RunGuard,
    dry_run: bool,
) -> dict[str, int]:
    """Approved fades of `sessions` to the broker; stale ones (and stale approved fades of
    earlier sessions) expired. Counts by outcome, and the legs placed."""
    with postgres.transaction() as conn:
        approved = pd.read_sql(query("opposing.approved"), conn, params={"sessions": sessions})
        earlier = pd.read_sql(
            query("opposing.approved_before"), conn, params={"session": sessions[0]}
        )
    counts: dict[str, int] = {"legs_sent": 0}
    if approved.empty and earlier.empty:
        return counts

    def expire(plan, reason: str) -> None:
        counts["expired"] = counts.get("expired", 0) + 1
        context.log.warning(f"{plan.order_ref}: {reason}")
        with postgres.transaction() as conn:
            conn.execute(
                query("opposing.expire"),
                {
                    "order_ref": plan.order_ref,
                    "dry_run": dry_run,
                    "broker": broker.kind,
                    "reason": reason,
                },
            )

    with broker.session() as connected:
        for plan in earlier.itertuples():  # left approved by earlier runs (or dry-run)
            window = entry_window(connected, plan.session, int(plan.valid_sessions), sessions[0])
            if window.state == "passed":
                expire(plan, window.reason)
        known = (
            {}
            if dry_run or approved.empty
            else connected.find_refs([o.order_ref for p in approved.itertuples() for o in legs(p)])
        )
        for plan in approved.itertuples():
            orders, ids, errors = legs(plan), [], []
            window = entry_window(connected, plan.session, int(plan.valid_sessions))
            if not dry_run and window.state == "open":
                connected.sync(window.current_session)  # the account as of that close
            at_broker = any(o.order_ref in known for o in orders)
            if window.state != "open" and not at_broker:
                if window.state == "passed":
                    expire(plan, window.reason)
                else:
                    counts["not_yet"] = counts.get("not_yet", 0) + 1
                    context.log.warning(f"{plan.order_ref}: {window.reason}")
                continue
            for order in orders:
                stop = guard.stop()
                if stop is not None:
                    with postgres.transaction() as conn:
                        record_halt(
                            conn,
                            "opposing_orders",
                            context,
                            stop,
                            guard.kill_switch,
                            [order.order_ref],
                        )
                    context.log.error(f"HALTED: {stop.reason}: {order.order_ref} not sent")
                    stop.raise_if_orphaned()
                    counts["halted"] = counts.get("halted", 0) + 1
                    return counts
                if order.order_ref in known:
                    ids += known[order.order_ref].broker_order_ids
                    continue
                if dry_run or window.state != "open":
                    continue  # a stale fade's missing leg is never placed
                answer = connected.place_bracket(order)
                ids += answer.broker_order_ids
                if answer.status != "submitted":
                    errors.append(f"{order.order_ref}: {answer.status}: {answer.error}")
                counts["legs_sent"] += 1
            outcome = "dry_run" if dry_run else "sent"
            counts[outcome] = counts.get(outcome, 0) + 1
            with postgres.transaction() as conn:
                conn.execute(
                    query("opposing.record_sent"),
                    {
                        "order_ref": plan.order_ref,
                        "dry_run": dry_run,
                        "broker": broker.kind,
                        "ids": json.dumps(ids),
                        "error": "; ".join(errors) or None,
                    },
                )
    return counts

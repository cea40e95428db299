"""`opposing_orders`: the fade of primaries the model expects to fail (core.opposing).

On each session, every opposing candidate whose legs window is open is replayed on the daily
bars up to that close; when its 2-bar reversal alert armed on that session, the fade is planned
(no alert, no trade): the alert stop-entry and the 75% limit as one-cancels-other legs, stop at
the 50% target line, take-profit at the primary's stop, each leg 1R from its own entry. Plans
wait for approval like primary plans (`breakout approve`); approved fades are sent with the same
dry-run, kill-switch and find-refs-first rules as `broker_orders`.
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

from breakout_assets.assets.orders import BROKER_POOL
from breakout_assets.assets.trading import UNATTENDED
from breakout_assets.core.opposing import FadeBars, plan_fade
from breakout_assets.assets.common import session_asset
from breakout_assets.partitions import keys_to_sessions, lookback_start, session_ordinals
from breakout_assets.resources.broker.base import BracketOrder
from breakout_assets.resources.broker.resource import BrokerResource
from breakout_assets.resources.kill_switch import KillSwitch
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings

GROUP = "opposing"


def fade_ref(ticker: str, signal_session, fade_side: int) -> str:
    return f"OPP-{ticker}-{signal_session:%Y%m%d}-{'L' if fade_side > 0 else 'S'}"


def legs(plan) -> list[BracketOrder]:
    """The fade's entry legs, one OCA group: the alert stop-entry, and the 75% limit if any."""
    side = plan.side
    common = dict(ticker=plan.ticker, side=side, stop=float(plan.stop),
                  take_profit=float(plan.take_profit), session=plan.session,
                  valid_sessions=int(plan.valid_sessions), oca_group=plan.order_ref)
    orders = []
    if plan.alert_quantity > 0:
        orders.append(BracketOrder(order_ref=f"{plan.order_ref}-ALT", entry_type="stop",
                                   quantity=int(plan.alert_quantity),
                                   entry=float(plan.alert_level), **common))
    if plan.limit_level is not None and not pd.isna(plan.limit_level) and plan.limit_quantity:
        orders.append(BracketOrder(order_ref=f"{plan.order_ref}-LIM", entry_type="limit",
                                   quantity=int(plan.limit_quantity),
                                   entry=float(plan.limit_level), **common))
    return orders


def build_opposing_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    config = settings.opposing
    kill_switch = KillSwitch(settings.kill_switch_path)

    @session_asset(
        partitions_def, GROUP,
        kinds={"postgres"},
        deps=["signal_scores", "market_bars"],
        pool=BROKER_POOL,
    )
    def opposing_orders(context: AssetExecutionContext, postgres: PostgresResource,
                        broker: BrokerResource) -> MaterializeResult:
        """Fades planned on the session their reversal alert armed, and approved fades sent
        as two one-cancels-other legs (recorded only, in dry-run)."""
        sessions = keys_to_sessions(context.partition_keys)
        with broker.session() as connected:
            equity = connected.account().equity
        planned = 0
        for session in sessions:
            earliest = lookback_start(session, config.window_sessions)
            today = int(session_ordinals([session])[0])
            with postgres.transaction() as conn:
                candidates = pd.read_sql(query("opposing.candidates"), conn,
                                         params={"session": session, "earliest": earliest})
                for c in candidates.itertuples():
                    bars = pd.read_sql(query("opposing.bars_after"), conn, params={
                        "ticker": c.ticker, "after": c.session, "through": session})
                    if bars.empty:
                        continue
                    plan = plan_fade(
                        1 if c.side == "long" else -1, c.entry, c.stop, c.booked_target,
                        c.target_50, FadeBars(session_ordinals(bars["session"]), bars["open"],
                                              bars["high"], bars["low"], bars["close"]),
                        int(session_ordinals([c.session])[0]), today, equity, config)
                    if plan is None:
                        continue
                    sized = plan.alert_quantity > 0
                    status = ("approved" if settings.auto_approve else "pending_approval") \
                        if sized else "skipped"
                    conn.execute(query("opposing.insert_plan"), {
                        "order_ref": fade_ref(c.ticker, c.session, plan.side),
                        "signal_id": c.signal_id, "session": session,
                        "signal_session": c.session, "ticker": c.ticker,
                        "side": "long" if plan.side > 0 else "short",
                        "confidence": c.confidence, "alert_level": plan.alert_level,
                        "alert_quantity": plan.alert_quantity,
                        "limit_level": plan.limit_level if plan.limit_quantity is not None
                        else None,
                        "limit_quantity": plan.limit_quantity, "stop": plan.stop,
                        "take_profit": plan.take_profit, "risk_dollars": plan.risk_dollars,
                        "valid_sessions": plan.valid_sessions,
                        "status": status,
                        "reason": (f"2-bar reversal alert armed at {plan.alert_level:.4f}; "
                                   f"primary confidence {c.confidence:.3f}") if sized
                        else "a leg of 1R cannot buy one share",
                        "decided_by": UNATTENDED if status == "approved" else None,
                        "decided_at": pd.Timestamp.now(tz="UTC") if status == "approved" else None,
                    })
                    planned += 1
        sent = send_approved(context, postgres, broker, sessions, kill_switch, settings.dry_run)
        with postgres.transaction() as conn:
            counts = pd.read_sql(query("opposing.counts"), conn, params={"sessions": sessions})
        return MaterializeResult(metadata={
            "planned": planned, "legs_sent": sent, "dry_run": settings.dry_run,
            "by_status": MetadataValue.md(counts.to_markdown(index=False)),
        })

    return [opposing_orders]


def send_approved(context, postgres: PostgresResource, broker: BrokerResource, sessions,
                  kill_switch: KillSwitch, dry_run: bool) -> int:
    with postgres.transaction() as conn:
        approved = pd.read_sql(query("opposing.approved"), conn, params={"sessions": sessions})
    if approved.empty:
        return 0
    sent = 0
    with broker.session() as connected:
        known = {} if dry_run else connected.find_refs(
            [o.order_ref for p in approved.itertuples() for o in legs(p)])
        for plan in approved.itertuples():
            orders, ids, errors = legs(plan), [], []
            if not dry_run:
                connected.sync(plan.session)  # the broker's account as of that close
            for order in orders:
                if kill_switch.engaged():
                    context.log.error(f"KILL SWITCH engaged: {order.order_ref} not sent")
                    return sent
                if dry_run:
                    continue
                if order.order_ref in known:
                    ids += known[order.order_ref].broker_order_ids
                    continue
                answer = connected.place_bracket(order)
                ids += answer.broker_order_ids
                if answer.status != "submitted":
                    errors.append(f"{order.order_ref}: {answer.status}: {answer.error}")
                sent += 1
            with postgres.transaction() as conn:
                conn.execute(query("opposing.record_sent"), {
                    "order_ref": plan.order_ref, "dry_run": dry_run, "broker": broker.kind,
                    "ids": json.dumps(ids), "error": "; ".join(errors) or None})
    return sent


"""`broker_orders`: approved plans sent as one bracket each, never twice, never in dry-run.

Before anything is sent the broker is asked which of our refs it already has (open, completed
or executed): those are recorded, not re-sent. Each answer is committed as soon as it arrives,
so a crash halfway through a session leaves an exact record of what reached the broker. The
kill switch is checked before every order; one order's rejection never stops the others.
"""

import json
from dataclasses import asdict

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
)

from breakout_assets.assets.common import session_asset
from breakout_assets.partitions import keys_to_sessions
from breakout_assets.resources.broker.base import BracketOrder
from breakout_assets.resources.broker.resource import BrokerResource
from breakout_assets.resources.kill_switch import KillSwitch
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings

GROUP = "execution"
BROKER_POOL = "broker"


def bracket_of(plan, valid_sessions: int) -> BracketOrder:
    return BracketOrder(order_ref=plan.order_ref, ticker=plan.ticker, side=plan.side,
                        quantity=int(plan.quantity), entry=float(plan.entry),
                        stop=float(plan.stop), take_profit=float(plan.take_profit),
                        session=plan.session, valid_sessions=valid_sessions)


def build_order_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    kill_switch = KillSwitch(settings.kill_switch_path)
    valid_sessions = settings.outcomes.entry_valid_sessions

    @session_asset(
        partitions_def, GROUP,
        kinds={"postgres"},
        deps=["trade_plan"],
        pool=BROKER_POOL,
    )
    def broker_orders(context: AssetExecutionContext, postgres: PostgresResource,
                      broker: BrokerResource) -> MaterializeResult:
        """What was sent to the broker for the approved plans (or, in dry-run, what would have
        been) and the broker's answer, one bracket per plan."""
        sessions = keys_to_sessions(context.partition_keys)
        with postgres.transaction() as conn:
            plans = pd.read_sql(query("trading.approved_plans"), conn,
                                params={"sessions": sessions})
        mode = "DRY-RUN: nothing is sent" if settings.dry_run else f"LIVE to {broker.kind}"
        context.log.info(f"broker_orders: {len(plans)} approved plans; {mode}")
        counts: dict[str, int] = {}

        def record(plan, status, ids=(), error=None, dry_run=settings.dry_run):
            counts[status] = counts.get(status, 0) + 1
            bracket = asdict(bracket_of(plan, valid_sessions))
            bracket["session"] = str(bracket["session"])
            with postgres.transaction() as conn:
                conn.execute(query("trading.record_order"), {
                    "order_ref": plan.order_ref, "session": plan.session,
                    "broker": broker.kind, "dry_run": dry_run,
                    "broker_order_ids": json.dumps(list(ids)), "status": status, "error": error,
                    "bracket": json.dumps(bracket)})
                if status in ("submitted", "already_at_broker") and not dry_run:
                    conn.execute(query("trading.mark_sent"), {"order_ref": plan.order_ref})

        def halted(remaining) -> None:
            details = kill_switch.details()
            with postgres.transaction() as conn:
                conn.execute(query("trading.record_halt"), {
                    "source": "broker_orders",
                    "detail": json.dumps({"run_id": context.run.run_id, "kill_switch": details,
                                          "orders_not_sent": [p.order_ref for p in remaining]})})
            for plan in remaining:
                record(plan, "halted", error="kill switch engaged")
            context.log.error(f"KILL SWITCH engaged ({kill_switch.path}): "
                              f"{len(remaining)} orders not sent")

        pending = list(plans.itertuples())
        if settings.dry_run:
            for i, plan in enumerate(pending):
                if kill_switch.engaged():
                    halted(pending[i:])
                    break
                record(plan, "dry_run")
        else:
            with broker.session() as connected:
                known = connected.find_refs([p.order_ref for p in pending]) if pending else {}
                for i, plan in enumerate(pending):
                    if kill_switch.engaged():
                        halted(pending[i:])
                        break
                    if plan.order_ref in known:
                        record(plan, "already_at_broker", known[plan.order_ref].broker_order_ids)
                        continue
                    connected.sync(plan.session)  # the broker's account as of that close
                    answer = connected.place_bracket(bracket_of(plan, valid_sessions))
                    record(plan, answer.status, answer.broker_order_ids, answer.error)
                    if answer.status != "submitted":
                        context.log.error(f"{plan.order_ref}: {answer.status}: {answer.error}")
                if not kill_switch.engaged():
                    connected.sync(sessions[-1])
        return MaterializeResult(metadata={
            "dry_run": settings.dry_run,
            "broker": broker.kind,
            "approved_plans": len(pending),
            "by_status": MetadataValue.json(counts),
            "kill_switch_engaged": kill_switch.engaged(),
        })

    return [broker_orders]

"""`broker_orders`: approved plans sent as one bracket each, never twice, never stale.

Before anything is sent the broker is asked which of our refs it already has (open, completed
or executed): those are recorded, not re-sent. A plan is sent only inside its entry window as
the broker sees it (core.entry_window): a plan whose window has passed by the broker's current
session is expired with the reason, never sent and never retried; in dry-run too, and approved
plans of earlier sessions are expired the same way, so stale plans never accumulate. Each
answer is committed as soon as it arrives, so a crash halfway through a session leaves an exact
record of what reached the broker. Before every order the run guard is asked: the kill switch
halts the rest (recorded), and a dead parent process or a stopped run halts it and fails the
step. One order's rejection never stops the others.
"""

import json
from dataclasses import asdict
from datetime import date

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
)

from breakout_assets.assets.common import session_asset
from breakout_assets.core.entry_window import EntryWindow
from breakout_assets.partitions import keys_to_sessions, session_ordinals
from breakout_assets.resources.broker.base import BracketOrder, Broker
from breakout_assets.resources.broker.resource import BrokerResource
from breakout_assets.resources.kill_switch import KillSwitch
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.run_guard import RunGuard, Stop
from breakout_assets.sensors import BROKER_TAG
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

GROUP = "trading"
BROKER_POOL = "broker"
# Every asset that can send, change or cancel an order carries this tag: it runs only in jobs
# with the same run tag (one broker run at a time, cancelled by the kill-switch sensor).
BROKER_ASSET_TAGS = {BROKER_TAG: "true"}


def bracket_of(plan, valid_sessions: int) -> BracketOrder:
    return BracketOrder(
        order_ref=plan.order_ref,
        ticker=plan.ticker,
        side=plan.side,
        quantity=int(plan.quantity),
        entry=float(plan.entry),
        stop=float(plan.stop),
        take_profit=float(plan.take_profit),
        session=plan.session,
        valid_sessions=valid_sessions,
    )


def entry_window(
    connected: Broker, signal_session: date, valid_sessions: int, through: date | None = None
) -> EntryWindow:
    """The plan's entry window against the broker's current session (brought up to `through`,
    by default the plan's own session)."""
    current = connected.current_session(through or signal_session)
    ordinals = session_ordinals([current, signal_session])
    return EntryWindow(signal_session, current, int(ordinals[0] - ordinals[1]), valid_sessions)


def record_halt(
    conn,
    source: str,
    context: AssetExecutionContext,
    stop: Stop,
    kill_switch: KillSwitch,
    refs: list[str],
) -> None:
    """The halt and the orders it kept from the broker, in halt_events."""
    detail = {
        "run_id": context.run.run_id,
        "reason": stop.reason,
        "kill_switch": kill_switch.details(),
        "orders_not_sent": refs,
    }
    conn.execute(query("trading.record_halt"), {"source": source, "detail": json.dumps(detail)})


def build_order_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    kill_switch = KillSwitch(settings.kill_switch_path)
    valid_sessions = settings.outcomes.entry_valid_sessions
    dry_run = settings.dry_run

    @session_asset(
        partitions_def,
        GROUP,
        kinds={"postgres"},
        deps=["trade_plan"],
        **versioned(settings, ("dry_run", "outcomes.entry_valid_sessions"), ("trading",)),
        pool=BROKER_POOL,
        tags=BROKER_ASSET_TAGS,
    )
    def broker_orders(
        context: AssetExecutionContext, postgres: PostgresResource, broker: BrokerResource
    ) -> MaterializeResult:
        """What was sent to the broker for the approved plans (or, in dry-run, what would have
        been) and the broker's answer, one bracket per plan; stale plans expired."""
        guard = RunGuard.start(context, kill_switch)
        sessions = keys_to_sessions(context.partition_keys)
        with postgres.transaction() as conn:
            plans = pd.read_sql(
                query("trading.approved_plans"), conn, params={"sessions": sessions}
            )
            earlier = pd.read_sql(
                query("trading.approved_before"), conn, params={"session": sessions[0]}
            )
        mode = "DRY-RUN: nothing is sent" if dry_run else f"LIVE to {broker.kind}"
        context.log.info(f"broker_orders: {len(plans)} approved plans; {mode}")
        counts: dict[str, int] = {}

        def write(conn, plan, status, ids=(), error=None):
            counts[status] = counts.get(status, 0) + 1
            bracket = asdict(bracket_of(plan, valid_sessions))
            bracket["session"] = str(bracket["session"])
            conn.execute(
                query("trading.record_order"),
                {
                    "order_ref": plan.order_ref,
                    "session": plan.session,
                    "broker": broker.kind,
                    "dry_run": dry_run,
                    "broker_order_ids": json.dumps(list(ids)),
                    "status": status,
                    "error": error,
                    "bracket": json.dumps(bracket),
                },
            )
            if status in ("submitted", "already_at_broker") and not dry_run:
                conn.execute(query("trading.mark_sent"), {"order_ref": plan.order_ref})
            if status == "expired":
                conn.execute(query("trading.mark_expired"), {"order_ref": plan.order_ref})

        def record(plan, status, ids=(), error=None):
            with postgres.transaction() as conn:  # each answer committed as it arrives
                write(conn, plan, status, ids, error)

        def halted(remaining, stop: Stop) -> None:
            with postgres.transaction() as conn:
                refs = [p.order_ref for p in remaining]
                record_halt(conn, "broker_orders", context, stop, kill_switch, refs)
                for plan in remaining:
                    write(conn, plan, "halted", error=stop.reason)
            context.log.error(f"HALTED: {stop.reason}: {len(remaining)} orders not sent")

        pending = list(plans.itertuples())
        with broker.session() as connected:
            for plan in earlier.itertuples():  # left approved by earlier runs (or dry-run)
                window = entry_window(connected, plan.session, valid_sessions, sessions[0])
                if window.state == "passed":
                    record(plan, "expired", error=window.reason)
            known = (
                connected.find_refs([p.order_ref for p in pending])
                if pending and not dry_run
                else {}
            )
            for i, plan in enumerate(pending):
                stop = guard.stop()
                if stop is not None:
                    halted(pending[i:], stop)
                    stop.raise_if_orphaned()
                    break
                if plan.order_ref in known:
                    record(plan, "already_at_broker", known[plan.order_ref].broker_order_ids)
                    continue
                window = entry_window(connected, plan.session, valid_sessions)
                if window.state != "open":
                    if window.state == "passed":
                        record(plan, "expired", error=window.reason)
                    else:
                        counts["not_yet"] = counts.get("not_yet", 0) + 1
                    context.log.warning(f"{plan.order_ref}: {window.reason}")
                    continue
                if dry_run:
                    record(plan, "dry_run")
                    continue
                connected.sync(window.current_session)  # the account as of that close
                answer = connected.place_bracket(bracket_of(plan, valid_sessions))
                record(plan, answer.status, answer.broker_order_ids, answer.error)
                if answer.status != "submitted":
                    context.log.error(f"{plan.order_ref}: {answer.status}: {answer.error}")
            if not dry_run and guard.stop() is None:  # the account up to the range's last close
                connected.sync(connected.current_session(sessions[-1]))
        return MaterializeResult(
            metadata={
                "dry_run": dry_run,
                "broker": broker.kind,
                "approved_plans": len(pending),
                "by_status": MetadataValue.json(counts),
                "kill_switch_engaged": kill_switch.engaged(),
            }
        )

    return [broker_orders]

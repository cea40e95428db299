"""`journal`: one row per trade, built from the broker's fills and our sent plans (core.journal).

Per session S the broker is brought up to S's close (the simulated broker fills its orders on the
bars to date; IBKR needs nothing), then what it reports (or an IBKR Flex statement, with
BREAKOUT_JOURNAL_SOURCE=ibkr_flex) is added to the fill record `journal_fills` by execution id:
IBKR's API serves the day's executions only, so a trade's older entry comes from the record. The
recorded fills are matched to the plans: primary brackets, their add-ons, fade legs and option
spreads. The partition of S (re)writes exactly the trades whose latest fill is on S and deletes
the rows of S it no longer owns, so any re-run gives identical rows (an unchanged row keeps even
its recorded_at). What does not match, a fill with no plan, a plan the broker says filled
without fills or does not know once its entry window closed, a quantity that disagrees, goes to
`journal_exceptions`, the run log and the metadata: reported, never dropped, never failing the
run.
"""

from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, timedelta

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
)
from sqlalchemy import Connection

from breakout_assets.assets.common import (
    OBSERVE_GROUP,
    range_result,
    session_asset,
    table_metadata,
)
from breakout_assets.core.journal import (
    Journal,
    JournalTrade,
    PlannedTrade,
    StopMove,
    TradeFill,
    build_journal,
)
from breakout_assets.core.options import CONTRACT_MULTIPLIER
from breakout_assets.partitions import keys_to_sessions, nyse_sessions
from breakout_assets.resources.broker.base import Broker
from breakout_assets.resources.broker.resource import BrokerResource
from breakout_assets.resources.flex import FlexStatement
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

MAX_LISTED = 100  # closed trades listed in a run's metadata
LISTED = [
    "trade_id",
    "book",
    "side",
    "quantity",
    "entry_price",
    "exit_price",
    "net_pnl",
    "r_net",
    "exit_reason",
]


def entry_deadline(session: date, valid_sessions: int) -> date:
    """The last session an entry placed after `session`'s close can fill."""
    after = nyse_sessions(
        session + timedelta(days=1), session + timedelta(days=2 * valid_sessions + 10)
    )
    return after[valid_sessions - 1]


def _value(v):
    return None if v is None or (isinstance(v, float) and v != v) else v


def planned_trades(frame: pd.DataFrame, valid_sessions: int) -> list[PlannedTrade]:
    return [
        PlannedTrade(
            trade_id=r.trade_id,
            book=r.book,
            ticker=r.ticker,
            side=r.side,
            quantity=int(r.quantity),
            initial_stop=_value(r.initial_stop),
            take_profit=_value(r.take_profit),
            entry_deadline=entry_deadline(
                r.session, int(_value(r.valid_sessions) or valid_sessions)
            ),
            signal_id=_value(r.signal_id),
            parent_ref=_value(r.parent_ref),
            confidence=_value(r.confidence),
            tier=_value(r.tier),
            oca_group=_value(r.oca_group),
        )
        for r in frame.itertuples()
    ]


def stop_moves(frame: pd.DataFrame) -> list[StopMove]:
    return [
        StopMove(r.order_ref, r.session, r.action, float(r.old_stop), float(r.new_stop))
        for r in frame.itertuples()
    ]


def record_fills(
    conn: Connection, reported: Sequence[TradeFill], broker: str, source: str
) -> list[TradeFill]:
    """Add what the source reports to the broker's fill record and return all of it: IBKR's
    executions are the day's only, a trade's entry may be days older than its exit."""
    for fill in reported:
        conn.execute(
            query("journal.record_fill"),
            {**asdict(fill), "fill_id": fill_key(fill), "broker": broker, "source": source},
        )
    rows = conn.execute(query("journal.recorded_fills"), {"broker": broker}).mappings().all()
    return [TradeFill(**row) for row in rows]


def fill_key(fill: TradeFill) -> str:
    """The broker's execution id; a fill without one is known by what it is."""
    return fill.fill_id or (
        f"{fill.order_ref}:{fill.session}:{fill.action}:{fill.quantity}@{fill.price}:{fill.time}"
    )


def trade_row(trade: JournalTrade, broker: str, source: str) -> dict:
    return {**asdict(trade), "broker": broker, "source": source}


def journal_summary(journal: Journal, sessions: Sequence[date]) -> dict:
    """What a run's metadata shows: trades opened and closed on its sessions, their P&L and R,
    the exceptions."""
    days = set(sessions)
    closed = [t for t in journal.trades if t.status == "closed" and t.exit_session in days]
    return {
        "trades": len(journal.trades),
        "opened": sum(t.entry_session in days for t in journal.trades),
        "closed": len(closed),
        "gross_pnl": round(sum(t.gross_pnl or 0.0 for t in closed), 2),
        "net_pnl": round(sum(t.net_pnl or 0.0 for t in closed), 2),
        "fees": round(sum(t.fees for t in closed), 2),
        "r_net": round(sum(t.r_net or 0.0 for t in closed), 4),
        "exits": MetadataValue.json(
            {
                r: sum(t.exit_reason == r for t in closed)
                for r in sorted({t.exit_reason or "" for t in closed})
            }
        ),
        "exceptions": len(journal.exceptions),
    }


def build_journal_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    valid_sessions = settings.outcomes.entry_valid_sessions
    flex = (
        FlexStatement(
            path=settings.ibkr_flex_file,
            query_id=settings.ibkr_flex_query_id,
            token_variable=settings.env_name("ibkr_flex_token"),
            url=settings.ibkr_flex_url,
        )
        if settings.journal_source == "ibkr_flex"
        else None
    )

    @session_asset(
        partitions_def,
        OBSERVE_GROUP,
        kinds={"postgres"},
        deps=["trade_plan", "broker_orders", "stop_updates", "opposing_orders", "option_orders"],
        **versioned(settings, ("journal_source", "outcomes"), ("journal",)),
    )
    def journal(
        context: AssetExecutionContext, postgres: PostgresResource, broker: BrokerResource
    ) -> MaterializeResult:
        """One row per trade (primary, add-on, fade leg, option spread) with its entry, exit,
        fees, P&L in dollars and R and how it ended; unmatched fills and plans reported."""
        sessions = keys_to_sessions(context.partition_keys)
        last = sessions[-1]
        with postgres.transaction() as conn:
            plans = planned_trades(
                pd.read_sql(
                    query("journal.plans"), conn, params={"multiplier": CONTRACT_MULTIPLIER}
                ),
                valid_sessions,
            )
            moves = stop_moves(pd.read_sql(query("journal.stop_moves"), conn))
        with broker.session() as connected:
            reported, source = _fills(connected, broker.kind, last, flex)
            due = [p.trade_id for p in plans if p.entry_deadline in set(sessions)]
            states = {r: k.state for r, k in connected.find_refs(due).items()} if due else {}
        with postgres.transaction() as conn:
            fills = record_fills(conn, reported, broker.kind, source)
        built = build_journal(fills, plans, moves, states, sessions)
        per_session = {}
        with postgres.transaction() as conn:
            for session, key in zip(sessions, context.partition_keys, strict=True):
                day = built.of_session(session)
                for trade in day.trades:
                    conn.execute(
                        query("journal.upsert_trade"), trade_row(trade, broker.kind, source)
                    )
                conn.execute(
                    query("journal.delete_unowned"),
                    {"session": session, "owned": [t.trade_id for t in day.trades]},
                )
                conn.execute(
                    query("journal.delete_stale_exceptions"),
                    {"session": session, "keys": [f"{e.kind} {e.ref}" for e in day.exceptions]},
                )
                for e in day.exceptions:
                    conn.execute(query("journal.upsert_exception"), asdict(e))
                    context.log.warning(f"journal {session}: {e.kind}: {e.ref}: {e.detail}")
                per_session[key] = journal_summary(day, [session])
        ours = Journal(
            [t for t in built.trades if t.session in set(sessions)],
            [e for e in built.exceptions if e.session in set(sessions)],
        )
        totals = {
            **journal_summary(ours, sessions),
            "source": source,
            "broker": broker.kind,
        }
        closed = [t for t in ours.trades if t.status == "closed"]
        if closed:
            totals["closed_trades"] = table_metadata(
                pd.DataFrame([asdict(t) for t in closed[:MAX_LISTED]])[LISTED]
            )
        if ours.exceptions:
            totals["exception_list"] = MetadataValue.md(
                pd.DataFrame([asdict(e) for e in ours.exceptions]).to_markdown(index=False)
            )
        return range_result(context, totals, per_session)

    return [journal]


def _fills(
    connected: Broker, kind: str, through: date, flex: FlexStatement | None
) -> tuple[list[TradeFill], str]:
    """The fills and the source the rows name: the broker's own, brought up to `through`'s
    close first (only when it stands before it: a broker already past it has those fills), or a
    Flex statement's."""
    if connected.current_session(through) <= through:
        connected.sync(through)
    if flex is not None:
        return flex.fills(), "ibkr_flex"
    return connected.executions(), "simulated" if kind == "simulated" else "ibkr_executions"

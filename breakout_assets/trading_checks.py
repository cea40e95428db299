"""Asset checks on the trading tables: what must hold of every row, whoever wrote it.

Standalone checks, evaluated on the whole table after the asset runs (or from the UI's Checks
tab): a failure names the offending rows in its metadata. They guard what no single write can:
an order sent twice, a dry run recorded as sent, a plan beyond a sizing cap, a final outcome
rewritten, a stop loosened. The SQL is in sql/queries/checks.sql; the cap arithmetic in
core.plan_caps.
"""

from collections.abc import Iterator, Sequence

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    MetadataValue,
    asset_check,
    multi_asset_check,
)

from breakout_assets.core.plan_caps import StoredPlan, cap_breaches
from breakout_assets.resources.account_history import (
    BROKERS_WITH_HISTORY,
    simulated_accounts_as_of,
)
from breakout_assets.resources.broker.resource import BrokerResource
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings

_EXAMPLES = 20
_STOP_TOLERANCE = 1e-9  # relative: float noise, not a loosening

# asset keys; option_orders records its answers on the option_spreads table
ORDER_TABLES = ("broker_orders", "opposing_orders", "stop_updates", "option_orders")
SENT_TABLES = ("broker_orders", "trade_plan", "opposing_orders", "stop_updates", "option_orders")


def _rows(frame: pd.DataFrame) -> MetadataValue:
    shown = frame.head(_EXAMPLES).astype(object).where(frame.head(_EXAMPLES).notna(), None)
    return MetadataValue.json(
        [
            {
                k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
                for k, v in row.items()
            }
            for row in shown.to_dict("records")
        ]
    )


def _selected(context: AssetCheckExecutionContext, tables: Sequence[str]) -> list[str]:
    """The tables whose check this run selected (a job may hold some of them only)."""
    chosen = {key.asset_key.to_user_string() for key in context.selected_asset_check_keys}
    return [t for t in tables if t in chosen]


def _read(postgres: PostgresResource, name: str, params: dict | None = None) -> pd.DataFrame:
    with postgres.transaction() as conn:
        return pd.read_sql(query(f"checks.{name}"), conn, params=params or {})


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            "no_order_ref_twice",
            asset=table,
            description="No order ref reaches the broker twice (primary brackets, "
            "fade legs, add-ons), no broker order id under two refs.",
        )
        for table in ORDER_TABLES
    ],
    can_subset=True,
)
def no_order_ref_twice(
    context: AssetCheckExecutionContext, postgres: PostgresResource
) -> Iterator[AssetCheckResult]:
    duplicates = _read(postgres, "duplicate_order_refs")
    for table in _selected(context, ORDER_TABLES):
        mine = (
            duplicates[duplicates["sources"].map(lambda s, t=table: t in s)]
            if len(duplicates)
            else duplicates
        )
        yield AssetCheckResult(
            asset_key=table,
            check_name="no_order_ref_twice",
            passed=mine.empty,
            metadata={"duplicates": len(mine), "examples": _rows(mine)},
        )


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            "no_dry_run_marked_sent",
            asset=table,
            description="A dry run never appears as sent, submitted or applied, "
            "nor carries broker order ids.",
        )
        for table in SENT_TABLES
    ],
    can_subset=True,
)
def no_dry_run_marked_sent(
    context: AssetCheckExecutionContext, postgres: PostgresResource
) -> Iterator[AssetCheckResult]:
    bad = _read(postgres, "dry_run_marked_sent")
    for table in _selected(context, SENT_TABLES):
        mine = bad[bad["source"] == table]
        yield AssetCheckResult(
            asset_key=table,
            check_name="no_dry_run_marked_sent",
            passed=mine.empty,
            metadata={"violations": len(mine), "examples": _rows(mine)},
        )


@asset_check(
    asset="signal_outcomes",
    name="finals_never_rewritten",
    description="Each final outcome is still the result first recorded for its signal "
    "(final_outcomes_record, kept by a trigger on every write).",
)
def finals_never_rewritten(postgres: PostgresResource) -> AssetCheckResult:
    rewritten = _read(postgres, "rewritten_finals")
    counts = _read(postgres, "final_counts").iloc[0]
    return AssetCheckResult(
        passed=rewritten.empty,
        metadata={
            "rewritten": len(rewritten),
            "finals": int(counts["finals"]),
            "recorded": int(counts["recorded"]),
            "examples": _rows(rewritten),
        },
    )


@asset_check(
    asset="stop_updates",
    name="stops_never_loosened",
    description="A long's stop only rises, a short's only falls: each change against "
    "its own old stop and the stop in force before it.",
)
def stops_never_loosened(postgres: PostgresResource) -> AssetCheckResult:
    loosened = _read(postgres, "loosened_stops", {"tolerance": _STOP_TOLERANCE})
    return AssetCheckResult(
        passed=loosened.empty, metadata={"loosened": len(loosened), "examples": _rows(loosened)}
    )


def build_plan_caps_check(settings: BreakoutSettings) -> AssetChecksDefinition:
    sizing = settings.sizing

    @asset_check(
        asset="trade_plan",
        name="plans_within_caps",
        description="Every plan within every sizing cap (risk per position for its "
        "tier, notional, a session's open risk and positions) of the "
        "equity its session was sized against.",
    )
    def plans_within_caps(
        context: AssetCheckExecutionContext, postgres: PostgresResource, broker: BrokerResource
    ) -> AssetCheckResult:
        frame = _read(postgres, "sized_plans")
        plans = [
            StoredPlan(
                r.order_ref,
                r.session,
                int(r.quantity),
                float(r.entry),
                float(r.stop),
                float(r.risk_dollars),
                r.tier,
                bool(r.trades),
            )
            for r in frame.itertuples()
        ]
        sessions = sorted({p.session for p in plans})
        equity = _equity_by_session(postgres, broker, sessions) if sessions else {}
        breaches = cap_breaches(plans, equity, sizing)
        unchecked = [str(d) for d in sessions if d not in equity]
        if unchecked:
            context.log.warning(
                f"plans_within_caps: {len(unchecked)} session(s) before the "
                f"broker's current one and {broker.kind} keeps no account "
                "history: their equity is unknown, their plans not checked"
            )
        return AssetCheckResult(
            passed=not breaches,
            metadata={
                "plans": len(plans),
                "breaches": len(breaches),
                "sessions_unchecked": MetadataValue.json(unchecked[:_EXAMPLES]),
                "examples": MetadataValue.json([b.__dict__ for b in breaches[:_EXAMPLES]]),
            },
        )

    return plans_within_caps


def _equity_by_session(
    postgres: PostgresResource, broker: BrokerResource, sessions: Sequence
) -> dict:
    """The equity each session was sized against, as trade_plan reads it: the account's history
    for a past session, the live account for the broker's current one (and later)."""
    with broker.session() as connected:
        current = connected.current_session(sessions[-1])
        past = [d for d in sessions if d < current]
        with postgres.transaction() as conn:
            history = (
                simulated_accounts_as_of(conn, past) if broker.kind in BROKERS_WITH_HISTORY else {}
            )
        equity = {d: snapshot.equity for d, snapshot in history.items()}
        if any(d >= current for d in sessions):
            live = connected.account().equity
            equity.update({d: live for d in sessions if d >= current})
    return equity


def build_trading_checks(settings: BreakoutSettings) -> list[AssetChecksDefinition]:
    return [
        no_order_ref_twice,
        no_dry_run_marked_sent,
        finals_never_rewritten,
        stops_never_loosened,
        build_plan_caps_check(settings),
    ]

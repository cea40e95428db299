"""`signal_scores` and `trade_plan`: confidence -> EV -> tier -> size, awaiting approval.

Scores use the active model of each side (ACTIVE_MODELS.json) on the `model_inputs` view, the
same features training read. Plans are sized against the broker's account as it stood after the
session's close: the live account for the current session, the account's history for a session
it has moved past (a backfill), so an old session is never sized off today's equity; a broker
without history refuses such a backfill. A re-run rewrites only undecided plans, so an approval,
a rejection or a sent order is never undone by a re-run, and the plans already decided to trade
count against their session's caps.
"""

import json
from datetime import UTC, date, datetime

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
)
from sqlalchemy import Connection

from breakout_assets.assets.common import range_result, rows_by_session, session_asset
from breakout_assets.core.costs import expected_costs_r
from breakout_assets.core.planning import (
    Exposure,
    KeptPlan,
    ScoredSignal,
    order_ref,
    plan_sessions,
)
from breakout_assets.core.scoring import Regime, score_signal
from breakout_assets.core.sizing import Account
from breakout_assets.ml.dataset import model_confidence
from breakout_assets.partitions import keys_to_sessions
from breakout_assets.resources.account_history import (
    BROKERS_WITH_HISTORY,
    simulated_accounts_as_of,
)
from breakout_assets.resources.broker.base import AccountSnapshot
from breakout_assets.resources.broker.resource import BrokerResource
from breakout_assets.resources.model_store import ModelStore
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

GROUP = "trading"
UNATTENDED = "auto (UNATTENDED MODE: BREAKOUT_AUTO_APPROVE=true)"


def _none_if_nan(value):
    return None if value is None or pd.isna(value) else float(value)


def read_regimes(conn: Connection, sessions: list, sma_n: int) -> dict:
    frame = pd.read_sql(
        query("trading.regime"), conn, params={"sessions": sessions, "sma_n": sma_n}
    )
    return {
        row.session: Regime(
            _none_if_nan(row.spy_close), _none_if_nan(row.spy_sma), _none_if_nan(row.vix_change_5d)
        )
        for row in frame.itertuples()
    }


def score_rows(
    inputs: pd.DataFrame, model_store: ModelStore, regimes: dict, settings: BreakoutSettings
) -> tuple[list[dict], dict[str, int]]:
    """Score rows, and the signals of each side that has no serving model (not scored: a
    side whose model never passed the promotion rules does not trade)."""
    rows, unscored = [], {}
    serving = model_store.active()
    for side, group in inputs.groupby("side", sort=True):
        if not serving.get(side):
            unscored[str(side)] = len(group)
            continue
        booster, card = model_store.load_active(side)
        confidence = model_confidence(booster, card, group)
        costs = expected_costs_r(group["entry"], group["risk"], group["signal_atr"], settings.costs)
        for signal, conf, cost in zip(group.itertuples(), confidence, costs, strict=True):
            regime = regimes[signal.session]
            score = score_signal(
                side,
                float(conf),
                float(signal.reward_risk),
                regime,
                settings.sizing,
                settings.regime,
                cost_r=float(cost),
            )
            rows.append(
                {
                    "signal_id": signal.signal_id,
                    "session": signal.session,
                    "side": side,
                    "experiment_id": card.experiment_id,
                    "confidence": score.confidence,
                    "expected_value": score.expected_value,
                    "tier": score.tier,
                    "decision": score.decision,
                    "reason": score.reason,
                    "regime": json.dumps(regime.to_json()),
                    "gross_expected_value": score.gross_expected_value,
                    "cost_r": score.cost_r,
                }
            )
    return rows, unscored


def scored_signals(conn: Connection, sessions: list) -> list[ScoredSignal]:
    frame = pd.read_sql(query("trading.plan_inputs"), conn, params={"sessions": sessions})
    return [
        ScoredSignal(
            signal_id=r.signal_id,
            ticker=r.ticker,
            session=r.session,
            side=r.side,
            entry=float(r.entry),
            stop=float(r.stop),
            take_profit=float(r.booked_target),
            reward_risk=float(r.reward_risk),
            confidence=float(r.confidence),
            expected_value=float(r.expected_value),
            tier=r.tier,
            decision=r.decision,
            reason=r.reason,
            cost_r=float(r.cost_r),
        )
        for r in frame.itertuples()
    ]


def as_account(snapshot: AccountSnapshot) -> Account:
    """What sizing reads of a broker snapshot (no buying power left is zero, not negative)."""
    return Account(
        equity=snapshot.equity,
        buying_power=max(snapshot.buying_power, 0.0),
        open_risk=snapshot.open_risk,
        open_positions=snapshot.open_positions,
        excess_liquidity=snapshot.excess_liquidity,
    )


def no_history_message(broker_kind: str, sessions: list, current, asset: str = "trade_plan") -> str:
    span = f"{sessions[0]}" if len(sessions) == 1 else f"{sessions[0]} to {sessions[-1]}"
    return (
        f"{asset}: {len(sessions)} session(s) with trades to size ({span}) are before the "
        f"broker's current session {current}, and BREAKOUT_BROKER={broker_kind} keeps no "
        "account history: sizing them against today's account would misstate every "
        f"quantity, so nothing was changed. Materialise {asset} for the current session "
        "only, or backfill past sessions with BREAKOUT_BROKER=simulated (its account "
        "history covers them)."
    )


def session_accounts(
    postgres: PostgresResource, broker: BrokerResource, sessions: list[date], asset: str
) -> dict[date, Account]:
    """The account each of `sessions` is sized against: as it stood after that session's
    close, from the broker's history for a session it has moved past, live for the current
    one. A broker without history refuses past sessions (no_history_message)."""
    if not sessions:
        return {}
    with broker.session() as connected:
        current = connected.current_session(sessions[0])
        past = [d for d in sessions if d < current]
        history = {}
        if past and broker.kind in BROKERS_WITH_HISTORY:
            with postgres.transaction() as conn:
                history = simulated_accounts_as_of(conn, past)
        then = {d: as_account(snapshot) for d, snapshot in history.items()}
        unsized = [d for d in past if d not in then]
        if unsized:
            raise ValueError(no_history_message(broker.kind, unsized, current, asset))
        live = as_account(connected.account()) if len(then) < len(sessions) else None
    return {d: then[d] if d in then else live for d in sessions}  # type: ignore[misc]


def build_trading_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    @session_asset(
        partitions_def,
        GROUP,
        kinds={"postgres", "xgboost"},
        deps=[
            AssetKey("breakout_signals"),
            AssetKey("daily_features"),
            AssetKey("long_model"),
            AssetKey("short_model"),
            AssetKey("index_bars"),
        ],
        **versioned(settings, ("costs", "sizing", "regime"), ("trading",)),
    )
    def signal_scores(
        context: AssetExecutionContext, postgres: PostgresResource, model_store: ModelStore
    ) -> MaterializeResult:
        """Each signal scored by its side's active model: confidence, EV, tier and the
        decision (trade / skip / opposing-book candidate), with the regime it was read in."""
        sessions = keys_to_sessions(context.partition_keys)
        with postgres.transaction() as conn:
            inputs = pd.read_sql(
                query("trading.scoring_inputs"), conn, params={"sessions": sessions}
            )
            regimes = read_regimes(conn, sessions, settings.regime.spy_sma_sessions)
            rows, unscored = (
                score_rows(inputs, model_store, regimes, settings) if len(inputs) else ([], {})
            )
            conn.execute(query("trading.delete_scores"), {"sessions": sessions})
            if rows:
                conn.execute(query("trading.insert_score"), rows)
        for side, count in unscored.items():
            context.log.warning(
                f"signal_scores: no active {side} model, {count} {side} signals not scored "
                f"(none will trade): materialise {side}_model or `breakout models promote`"
            )
        decisions = pd.Series([r["decision"] for r in rows], dtype=object).value_counts()
        means = (
            pd.DataFrame(rows, columns=["expected_value", "gross_expected_value", "cost_r"])
            .mean()
            .round(4)
        )
        return range_result(
            context,
            per_session=rows_by_session(postgres, "signal_scores", context),
            totals={
                "scored": len(rows),
                **(
                    {
                        "mean_ev_net_r": float(means["expected_value"]),
                        "mean_ev_gross_r": float(means["gross_expected_value"]),
                        "mean_cost_r": float(means["cost_r"]),
                    }
                    if rows
                    else {}
                ),
                **{
                    f"decision_{k}": int(decisions.get(k, 0)) for k in ("trade", "skip", "opposing")
                },
                "models": MetadataValue.json(sorted({r["experiment_id"] for r in rows})),
                "unscored_no_active_model": MetadataValue.json(unscored),
            },
        )

    @session_asset(
        partitions_def,
        GROUP,
        kinds={"postgres"},
        deps=[signal_scores, AssetKey("breakout_signals")],
        **versioned(settings, ("sizing", "auto_approve"), ("trading",)),
    )
    def trade_plan(
        context: AssetExecutionContext, postgres: PostgresResource, broker: BrokerResource
    ) -> MaterializeResult:
        """Sized bracket plans awaiting approval (every cap that bites is the row's reason);
        decided plans are kept as they are. Each session is sized against the account as it
        stood after its close: live for the current session, from history for a past one."""
        sessions = keys_to_sessions(context.partition_keys)
        if settings.auto_approve:
            context.log.warning(
                "UNATTENDED MODE: BREAKOUT_AUTO_APPROVE=true, plans are approved without a human"
            )
        with broker.session() as connected:
            # sessions before the broker's current one are past: sized from the account's
            # history (the live account has moved on since)
            current = connected.current_session(sessions[0])
            past = [d for d in sessions if d < current]
            with postgres.transaction() as conn:
                signals = scored_signals(conn, sessions)
                kept = conn.execute(query("trading.kept_plans"), {"sessions": sessions}).all()
                history = (
                    simulated_accounts_as_of(conn, past)
                    if broker.kind in BROKERS_WITH_HISTORY
                    else {}
                )
            then = {d: as_account(snapshot) for d, snapshot in history.items()}
            keep = {k.order_ref for k in kept}
            signals = [s for s in signals if order_ref(s.ticker, s.session, s.side) not in keep]
            unsized = sorted(
                {
                    s.session
                    for s in signals
                    if s.decision == "trade" and s.session in past and s.session not in then
                }
            )
            if unsized:
                raise ValueError(no_history_message(broker.kind, unsized, current))
            live = as_account(connected.account()) if any(d not in then for d in sessions) else None
        plans = plan_sessions(
            sessions,
            signals,
            [KeptPlan(k.session, k.status, Exposure(k.risk_dollars, k.notional)) for k in kept],
            then,
            live,
            settings.sizing,
            settings.auto_approve,
        )
        decided_at = datetime.now(UTC)
        with postgres.transaction() as conn:
            keep |= set(conn.execute(query("trading.kept_plans"), {"sessions": sessions}).scalars())
            conn.execute(query("trading.delete_undecided_plans"), {"sessions": sessions})
            rows = [
                {
                    "order_ref": p.order_ref,
                    "signal_id": p.signal.signal_id,
                    "session": p.signal.session,
                    "ticker": p.signal.ticker,
                    "side": p.signal.side,
                    "quantity": p.quantity,
                    "entry": p.signal.entry,
                    "stop": p.signal.stop,
                    "take_profit": p.signal.take_profit,
                    "risk_dollars": p.risk_dollars,
                    "tier": p.signal.tier,
                    "confidence": p.signal.confidence,
                    "expected_value": p.signal.expected_value,
                    "status": p.status,
                    "reason": p.reason,
                    "decided_by": UNATTENDED if p.status == "approved" else None,
                    "decided_at": decided_at if p.status == "approved" else None,
                }
                for p in plans
                if p.order_ref not in keep
            ]
            if rows:
                conn.execute(query("trading.insert_plan"), rows)
            counts = pd.read_sql(query("trading.plan_counts"), conn, params={"sessions": sessions})
        equity_then = [a.equity for a in then.values()]
        return range_result(
            context,
            per_session=rows_by_session(postgres, "trade_plan", context),
            totals={
                "unattended_mode": settings.auto_approve,
                **(
                    {"equity": round(live.equity, 2), "open_risk_before": round(live.open_risk, 2)}
                    if live is not None
                    else {}
                ),
                "sessions_sized_live": len(sessions) - len(then),
                "sessions_sized_as_of_then": len(then),
                **(
                    {
                        "equity_then_min": round(min(equity_then), 2),
                        "equity_then_max": round(max(equity_then), 2),
                    }
                    if equity_then
                    else {}
                ),
                "plans_written": len(rows),
                "plans_kept_as_decided": len(keep),
                "by_status": MetadataValue.md(counts.round(2).to_markdown(index=False)),
            },
        )

    return [signal_scores, trade_plan]

"""The options overlay's trading assets: `option_spreads` (planned, awaiting approval) and
`option_orders` (the approved ones sent as one combo each, with the conditional close).

The traded signals of `signal_scores` are expressed as vertical debit spreads (core.spreads) on
the option chain of BREAKOUT_OPTIONS__CHAIN_SOURCE (the Black-Scholes model chain by default,
priced at the signal session's close with the ticker's realised volatility). Each session is
sized against the account as it stood after its close (as trade_plan) and shares the book's
open-risk cap with the stock plans. A re-run rewrites only undecided spreads.

Sending follows broker_orders exactly: dry-run and approval by default, stale spreads expired,
refs the broker already has never re-sent, the run guard (kill switch, dead parent, stopped
run) asked before every order. `paper` sends only to a paper account (the simulated broker, or
an IBKR paper account: ids starting DU); `live` only with the options book's promotion record.
"""

import json
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
)
from sqlalchemy import Connection

from breakout_assets.assets.common import range_result, rows_by_session, session_asset
from breakout_assets.assets.orders import (
    BROKER_ASSET_TAGS,
    BROKER_POOL,
    entry_window,
    record_halt,
)
from breakout_assets.assets.trading import UNATTENDED, session_accounts
from breakout_assets.core.option_pricing import realised_vol
from breakout_assets.core.options import SpreadOrder, SpreadPlan, SpreadSkip, close_ref
from breakout_assets.core.planning import order_ref
from breakout_assets.core.spreads import expiry_window, plan_spread
from breakout_assets.options_admin import require_live_promotion
from breakout_assets.partitions import keys_to_sessions, nyse_sessions
from breakout_assets.resources.broker.resource import BrokerResource
from breakout_assets.resources.kill_switch import KillSwitch
from breakout_assets.resources.option_chain.base import OptionChainError, OptionChainSource
from breakout_assets.resources.option_chain.resource import OptionChainResource
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.run_guard import RunGuard, Stop
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

GROUP = "trading"
SPREAD_SUFFIX = "-SPRD"
PAPER_ACCOUNT_PREFIX = "DU"  # IBKR's paper accounts


def spread_ref(ticker: str, session: date, side: str) -> str:
    """The spread of a signal has its own ref, beside the bracket's."""
    return order_ref(ticker, session, side) + SPREAD_SUFFIX


def volatility_lookup(conn: Connection, inputs: pd.DataFrame, window: int) -> Callable:
    """realised_vol(ticker, session) over the `window` closes up to the session, from one read
    of the signals' tickers."""
    if inputs.empty:
        return lambda ticker, session: math.nan
    first = min(inputs["session"]) - timedelta(days=2 * window + 15)
    closes = pd.read_sql(
        query("spreads.closes"),
        conn,
        params={
            "tickers": sorted(set(inputs["ticker"])),
            "first": first,
            "last": max(inputs["session"]),
        },
    )
    by_ticker = {t: g for t, g in closes.groupby("ticker")}

    def lookup(ticker: str, session: date) -> float:
        rows = by_ticker.get(ticker)
        if rows is None:
            return math.nan
        return realised_vol(rows.loc[rows["session"] <= session, "close"].to_numpy(), window)

    return lookup


def spread_row(signal, plan: SpreadPlan | SpreadSkip, mode: str, auto: bool, at: datetime) -> dict:
    base = {
        "order_ref": spread_ref(signal.ticker, signal.session, signal.side),
        "signal_id": signal.signal_id,
        "session": signal.session,
        "ticker": signal.ticker,
        "side": signal.side,
        "confidence": float(signal.confidence),
        "mode": mode,
        "decided_by": None,
        "decided_at": None,
    }
    if isinstance(plan, SpreadSkip):
        return {
            **base,
            **dict.fromkeys(
                ("option_right", "expiry", "long_strike", "short_strike", "net_debit", "width"),
            ),
            **dict.fromkeys(("max_loss", "max_gain", "ev", "close_trigger")),
            "contracts": 0,
            "status": "skipped",
            "reason": plan.reason,
        }
    return {
        **base,
        "option_right": plan.right,
        "expiry": plan.expiry,
        "long_strike": plan.long_strike,
        "short_strike": plan.short_strike,
        "net_debit": plan.net_debit,
        "width": plan.width,
        "contracts": plan.contracts,
        "max_loss": plan.max_loss,
        "max_gain": plan.max_gain,
        "ev": plan.ev,
        "close_trigger": plan.close_trigger,
        "status": "approved" if auto else "pending_approval",
        "reason": f"{plan.contracts} x {plan.right} {plan.long_strike:g}/{plan.short_strike:g} "
        f"{plan.expiry} at {plan.net_debit:.2f}",
        **({"decided_by": UNATTENDED, "decided_at": at} if auto else {}),
    }


def plan_rows(
    inputs: pd.DataFrame,
    source: OptionChainSource,
    equity: dict[date, float],
    headroom: dict[date, float],
    positions: dict[date, int],
    settings: BreakoutSettings,
) -> list[dict]:
    """One row per traded signal: its spread, or the reason there is none. `headroom` is what
    the book's open-risk cap leaves per session, `positions` what its open-positions cap
    leaves; each spread planned uses some of both."""
    config = settings.options
    at = datetime.now(UTC)
    rows = []
    for signal in inputs.itertuples():
        if positions[signal.session] <= 0:
            cap = settings.sizing.max_open_positions
            skip = SpreadSkip(
                signal.ticker, signal.side, f"max_open_positions: {cap} open or planned"
            )
            rows.append(spread_row(signal, skip, config.mode, settings.auto_approve, at))
            continue
        calendar = nyse_sessions(
            signal.session, signal.session + timedelta(days=2 * config.max_dte + 30)
        )
        min_expiry, max_expiry = expiry_window(signal.session, calendar, config)
        try:
            chain = source.chain(
                signal.ticker,
                signal.session,
                float(signal.underlying_price),
                min_expiry=min_expiry,
                max_expiry=max_expiry,
            )
        except OptionChainError as exc:
            plan: SpreadPlan | SpreadSkip = SpreadSkip(signal.ticker, signal.side, str(exc))
        else:
            plan = plan_spread(
                ticker=signal.ticker,
                side=signal.side,
                target_50=float(signal.target_50),
                target_75=float(signal.target_75),
                target_100=float(signal.target_100),
                confidence=float(signal.confidence),
                chain=chain,
                min_expiry=min_expiry,
                equity=equity[signal.session],
                config=config,
                risk_budget_dollars=max(headroom[signal.session], 0.0),
            )
        if isinstance(plan, SpreadPlan):
            headroom[signal.session] -= plan.max_loss
            positions[signal.session] -= 1
        rows.append(spread_row(signal, plan, config.mode, settings.auto_approve, at))
    return rows


def spread_order(spread) -> SpreadOrder:
    return SpreadOrder(
        order_ref=spread.order_ref,
        ticker=spread.ticker,
        right=spread.option_right,
        expiry=spread.expiry,
        long_strike=float(spread.long_strike),
        short_strike=float(spread.short_strike),
        contracts=int(spread.contracts),
        limit_debit=float(spread.net_debit),
        close_trigger=float(spread.close_trigger),
        session=spread.session,
    )


def paper_refusal(settings: BreakoutSettings, broker_kind: str) -> str | None:
    """Why `paper` mode cannot send to this broker (None: it can)."""
    if broker_kind == "simulated":
        return None
    account = settings.ibkr_account or ""
    if account.startswith(PAPER_ACCOUNT_PREFIX):
        return None
    return (
        f"BREAKOUT_OPTIONS__MODE=paper sends spreads only to a paper account: the simulated "
        f"broker or an IBKR paper account (ids start {PAPER_ACCOUNT_PREFIX}); "
        f"BREAKOUT_BROKER={broker_kind} with this account is not one"
    )


def build_option_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    kill_switch = KillSwitch(settings.kill_switch_path)
    valid_sessions = settings.outcomes.entry_valid_sessions
    dry_run = settings.dry_run
    options = settings.options

    @session_asset(
        partitions_def,
        GROUP,
        kinds={"postgres"},
        deps=["signal_scores", "breakout_signals", "market_bars", "trade_plan"],
        **versioned(
            settings, ("options", "sizing.max_open_risk_pct", "auto_approve"), ("spreads",)
        ),
    )
    def option_spreads(
        context: AssetExecutionContext,
        postgres: PostgresResource,
        broker: BrokerResource,
        option_chain: OptionChainResource,
    ) -> MaterializeResult:
        """Vertical debit spreads for the traded signals (calls for longs, puts for shorts),
        sized at BREAKOUT_OPTIONS__RISK_PCT of equity within the book's open-risk cap, awaiting
        approval; every signal without a spread has its reason. Decided spreads are kept."""
        sessions = keys_to_sessions(context.partition_keys)
        if options.mode == "off":
            context.log.info("option_spreads: BREAKOUT_OPTIONS__MODE=off, nothing planned")
            return MaterializeResult(metadata={"mode": "off"})
        with postgres.transaction() as conn:
            inputs = pd.read_sql(query("spreads.inputs"), conn, params={"sessions": sessions})
            kept = pd.read_sql(query("spreads.kept"), conn, params={"sessions": sessions})
            stock = pd.read_sql(query("spreads.stock_risk"), conn, params={"sessions": sessions})
            volatility = volatility_lookup(conn, inputs, options.vol_window)
        inputs = inputs[~inputs["signal_id"].isin(set(kept["signal_id"]))]
        needed = sorted(set(inputs["session"]))
        if needed and option_chain.kind != "model":
            with broker.session() as connected:
                current = connected.current_session(needed[0])
            if needed[0] < current:
                raise ValueError(
                    f"option_spreads: BREAKOUT_OPTIONS__CHAIN_SOURCE={option_chain.kind} quotes "
                    f"today's chain, which cannot price past sessions ({needed[0]} is before "
                    f"the broker's current session {current}); nothing was changed. Plan the "
                    "current session only, or backfill with CHAIN_SOURCE=model."
                )
        accounts = session_accounts(postgres, broker, needed, "option_spreads")
        headroom = {
            d: settings.sizing.max_open_risk_pct * a.equity
            - a.open_risk
            - float(stock.loc[stock["session"] == d, "risk_dollars"].sum())
            - float(kept.loc[kept["session"] == d, "risk_dollars"].sum())
            for d, a in accounts.items()
        }
        positions = {
            d: settings.sizing.max_open_positions
            - a.open_positions
            - int(stock.loc[stock["session"] == d, "positions"].sum())
            - int((kept.loc[kept["session"] == d, "risk_dollars"] > 0).sum())
            for d, a in accounts.items()
        }
        equity = {d: a.equity for d, a in accounts.items()}
        with option_chain.session(volatility) as source:
            rows = plan_rows(inputs, source, equity, headroom, positions, settings)
        with postgres.transaction() as conn:
            conn.execute(query("spreads.delete_undecided"), {"sessions": sessions})
            if rows:
                conn.execute(query("spreads.insert"), rows)
            counts = pd.read_sql(query("options.counts"), conn, params={"sessions": sessions})
        return range_result(
            context,
            per_session=rows_by_session(postgres, "option_spreads", context),
            totals={
                "mode": options.mode,
                "chain_source": option_chain.kind,
                "spreads_written": len(rows),
                "planned": sum(r["status"] != "skipped" for r in rows),
                "skipped": sum(r["status"] == "skipped" for r in rows),
                "kept_as_decided": len(kept),
                "by_status": MetadataValue.md(counts.round(2).to_markdown(index=False)),
            },
        )

    @session_asset(
        partitions_def,
        GROUP,
        kinds={"postgres"},
        deps=[option_spreads],
        **versioned(settings, ("dry_run", "options.mode"), ("spreads",)),
        pool=BROKER_POOL,
        tags=BROKER_ASSET_TAGS,
    )
    def option_orders(
        context: AssetExecutionContext, postgres: PostgresResource, broker: BrokerResource
    ) -> MaterializeResult:
        """The approved spreads sent as one combo order each with its GTC conditional close
        (or, in dry-run, recorded as what would have been sent); stale spreads expired."""
        sessions = keys_to_sessions(context.partition_keys)
        if options.mode == "off":
            return MaterializeResult(metadata={"mode": "off"})
        guard = RunGuard.start(context, kill_switch)
        with postgres.transaction() as conn:
            if not dry_run:
                if options.mode == "live":
                    require_live_promotion(conn, options.mode)
                elif refusal := paper_refusal(settings, broker.kind):
                    raise ValueError(f"option_orders: {refusal}")
            spreads = pd.read_sql(query("spreads.approved"), conn, params={"sessions": sessions})
            earlier = pd.read_sql(
                query("spreads.approved_before"), conn, params={"session": sessions[0]}
            )
        counts: dict[str, int] = {}

        def record(spread, outcome: str, ids=(), error=None, conn=None) -> None:
            counts[outcome] = counts.get(outcome, 0) + 1
            params = {
                "order_ref": spread.order_ref,
                "broker": broker.kind,
                "dry_run": dry_run,
                "broker_order_ids": json.dumps(list(ids)),
                "error": error,
                "outcome": outcome,
            }
            if conn is not None:
                conn.execute(query("spreads.record_answer"), params)
                return
            with postgres.transaction() as own:  # each answer committed as it arrives
                own.execute(query("spreads.record_answer"), params)

        def halted(remaining, stop: Stop) -> None:
            with postgres.transaction() as conn:
                refs = [s.order_ref for s in remaining]
                record_halt(conn, "option_orders", context, stop, kill_switch, refs)
                for spread in remaining:
                    record(spread, "halted", error=stop.reason, conn=conn)
            context.log.error(f"HALTED: {stop.reason}: {len(remaining)} spreads not sent")

        pending = list(spreads.itertuples())
        context.log.info(
            f"option_orders: {len(pending)} approved spreads; "
            + ("DRY-RUN: nothing is sent" if dry_run else f"{options.mode} to {broker.kind}")
        )
        with broker.session() as connected:
            for spread in earlier.itertuples():
                window = entry_window(connected, spread.session, valid_sessions, sessions[0])
                if window.state == "passed":
                    record(spread, "expired", error=window.reason)
            refs = [s.order_ref for s in pending]
            known = (
                connected.find_refs(refs + [close_ref(r) for r in refs])
                if pending and not dry_run
                else {}
            )
            for i, spread in enumerate(pending):
                stop = guard.stop()
                if stop is not None:
                    halted(pending[i:], stop)
                    stop.raise_if_orphaned()
                    break
                ref = spread.order_ref
                if ref in known and close_ref(ref) in known:
                    record(spread, "already_at_broker", known[ref].broker_order_ids)
                    continue
                window = entry_window(connected, spread.session, valid_sessions)
                if ref not in known and window.state != "open":
                    if window.state == "passed":
                        record(spread, "expired", error=window.reason)
                    else:
                        counts["not_yet"] = counts.get("not_yet", 0) + 1
                    context.log.warning(f"{ref}: {window.reason}")
                    continue
                if dry_run:
                    record(spread, "dry_run")
                    continue
                # an entry without its close (a crash between the two): the broker sends only
                # the close; otherwise the combo and its close go together
                connected.sync(window.current_session)
                answer = connected.place_spread(spread_order(spread))
                outcome = "already_at_broker" if ref in known else answer.status
                if answer.status != "submitted":
                    outcome = answer.status
                    context.log.error(f"{ref}: {answer.status}: {answer.error}")
                record(spread, outcome, answer.broker_order_ids, answer.error)
        return MaterializeResult(
            metadata={
                "dry_run": dry_run,
                "mode": options.mode,
                "broker": broker.kind,
                "approved_spreads": len(pending),
                "by_outcome": MetadataValue.json(counts),
                "kill_switch_engaged": kill_switch.engaged(),
            }
        )

    return [option_spreads, option_orders]

"""From scored signals to a session's trade plan: deterministic refs, sizes and caps.

Trades of a session are sized best-EV first against one running account: each sized trade adds
its risk, notional and a position before the next is sized, so the caps hold for the session as
a whole, not just for each trade alone. Plans of the session already decided to trade (approved
or sent) enter that account first (`with_exposure`), so a re-run sizing the rest cannot push the
session past a cap either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date

from breakout_assets.core.sizing import Account, SizingConfig, size_position


def order_ref(ticker: str, session: date, side: str) -> str:
    """The same signal always gets the same ref: how a re-run recognises its own orders."""
    return f"BRK-{ticker}-{session:%Y%m%d}-{'L' if side == 'long' else 'S'}"


@dataclass(frozen=True)
class ScoredSignal:
    signal_id: str
    ticker: str
    session: date
    side: str
    entry: float
    stop: float
    take_profit: float
    reward_risk: float
    confidence: float
    expected_value: float
    tier: str | None
    decision: str  # 'trade' | 'skip'
    reason: str
    cost_r: float = 0.0  # expected round-trip cost in R: sizing's tier is net of it


@dataclass(frozen=True)
class Exposure:
    """What one position adds to the account: its dollars at risk and its notional."""

    risk_dollars: float
    notional: float


def with_exposure(account: Account, exposure: Exposure, sizing: SizingConfig) -> Account:
    """The account once the position is on: more open risk, one more position, less buying
    power and margin cushion."""
    return replace(
        account,
        open_risk=account.open_risk + exposure.risk_dollars,
        open_positions=account.open_positions + 1,
        buying_power=max(account.buying_power - exposure.notional, 0.0),
        excess_liquidity=account.excess_liquidity - exposure.notional * sizing.margin_requirement,
    )


@dataclass(frozen=True)
class PlannedTrade:
    order_ref: str
    signal: ScoredSignal
    quantity: int
    risk_dollars: float
    status: str  # 'pending_approval' | 'approved' | 'skipped'
    reason: str


def plan_session(
    signals: list[ScoredSignal], account: Account, sizing: SizingConfig, auto_approve: bool = False
) -> list[PlannedTrade]:
    """Sized plans in the order given (best EV first); skips and zero sizes are 'skipped'."""
    plans = []
    for signal in signals:
        ref = order_ref(signal.ticker, signal.session, signal.side)
        if signal.decision != "trade":
            plans.append(PlannedTrade(ref, signal, 0, 0.0, "skipped", signal.reason))
            continue
        size = size_position(
            signal.confidence,
            signal.reward_risk,
            signal.entry,
            signal.stop,
            account,
            sizing,
            cost_r=signal.cost_r,
        )
        if size.shares <= 0:
            plans.append(PlannedTrade(ref, signal, 0, 0.0, "skipped", size.reason))
            continue
        plans.append(
            PlannedTrade(
                ref,
                signal,
                size.shares,
                size.risk_dollars,
                "approved" if auto_approve else "pending_approval",
                size.reason,
            )
        )
        account = with_exposure(account, Exposure(size.risk_dollars, size.notional), sizing)
    return plans


@dataclass(frozen=True)
class KeptPlan:
    """A plan a re-run keeps as it was decided (approved, rejected, sent...)."""

    session: date
    status: str
    exposure: Exposure


def plan_sessions(
    sessions: list[date],
    signals: list[ScoredSignal],
    kept: list[KeptPlan],
    then: Mapping[date, Account],
    live: Account | None,
    sizing: SizingConfig,
    auto_approve: bool = False,
) -> list[PlannedTrade]:
    """Plan each session against its own account: `then[session]`, the account as it stood
    after that session's close, or else the `live` one. Kept plans that trade enter it first: an
    approved one always, a sent one only in an account from before it was placed (the live
    account holds it already). `signals` are the undecided ones, best EV first per session."""
    plans: list[PlannedTrade] = []
    for session in sessions:
        account = then.get(session, live)
        if account is None:
            raise ValueError(f"no account to size {session} against")
        for plan in kept:
            if plan.session == session and (
                plan.status == "approved" or (plan.status == "sent" and session in then)
            ):
                account = with_exposure(account, plan.exposure, sizing)
        todays = [s for s in signals if s.session == session]
        plans += plan_session(todays, account, sizing, auto_approve)
    return plans

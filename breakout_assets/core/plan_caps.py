"""Whether stored plans respect the sizing caps they were sized under (core.sizing).

Pure: plans and the equity each session was sized against in, the breaches out. What a plan
alone must satisfy: its $ risk is its shares x R and at most its tier's fraction of equity, its
notional at most `max_position_notional_pct` of equity. What a session's trading plans must
satisfy together: their $ risk at most `max_open_risk_pct` of equity and their count at most
`max_open_positions` (the account's other positions only make those sums tighter, so a breach
here is a breach of the cap). Tolerance: core.sizing's EPS, relative.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from breakout_assets.core.sizing import EPS, RiskTier, SizingConfig

_TOLERANCE = 10 * EPS
_TIERS = {t.value: t for t in RiskTier}


@dataclass(frozen=True)
class StoredPlan:
    order_ref: str
    session: date
    quantity: int
    entry: float
    stop: float
    risk_dollars: float
    tier: str | None
    trades: bool  # counts against the session's open risk and positions


@dataclass(frozen=True)
class Breach:
    cap: str
    where: str  # an order ref, or a session for the session-wide caps
    value: float
    limit: float


def _over(value: float, limit: float) -> bool:
    return value > limit * (1 + _TOLERANCE) + _TOLERANCE


def cap_breaches(
    plans: Iterable[StoredPlan], equity: Mapping[date, float], sizing: SizingConfig
) -> list[Breach]:
    """Every cap a plan (or a session's plans) exceeds; plans of sessions without an equity
    are left out (the caller says how many)."""
    breaches: list[Breach] = []
    session_risk: dict[date, float] = defaultdict(float)
    session_count: dict[date, int] = defaultdict(int)
    for p in plans:
        if p.session not in equity:
            continue
        eq = equity[p.session]
        shares_risk = p.quantity * abs(p.entry - p.stop)
        if abs(p.risk_dollars - shares_risk) > _TOLERANCE * max(shares_risk, 1.0):
            breaches.append(Breach("risk_is_shares_x_r", p.order_ref, p.risk_dollars, shares_risk))
        tier = _TIERS.get(p.tier or "")
        if tier is None:
            breaches.append(Breach("tier", p.order_ref, p.quantity, 0))
        elif _over(shares_risk, sizing.risk_fraction(tier) * eq):
            breaches.append(
                Breach(
                    "risk_per_position", p.order_ref, shares_risk, sizing.risk_fraction(tier) * eq
                )
            )
        if _over(p.quantity * p.entry, sizing.max_position_notional_pct * eq):
            breaches.append(
                Breach(
                    "max_position_notional",
                    p.order_ref,
                    p.quantity * p.entry,
                    sizing.max_position_notional_pct * eq,
                )
            )
        if p.trades:
            session_risk[p.session] += shares_risk
            session_count[p.session] += 1
    for session, risk in sorted(session_risk.items()):
        if _over(risk, sizing.max_open_risk_pct * equity[session]):
            breaches.append(
                Breach(
                    "max_open_risk", str(session), risk, sizing.max_open_risk_pct * equity[session]
                )
            )
        if session_count[session] > sizing.max_open_positions:
            breaches.append(
                Breach(
                    "max_open_positions",
                    str(session),
                    session_count[session],
                    sizing.max_open_positions,
                )
            )
    return breaches

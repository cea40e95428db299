"""Expected value, risk tiers and position size (DESIGN.md, "Expected value and size").

Pure and deterministic: no Dagster, no SQL, no I/O. A signal's model confidence and reward:risk
give its expected value in R, net of the trade's expected costs (core.costs: commissions and
slippage in R); the net EV picks a risk tier (a fraction of equity put at risk); the
size is `floor(equity x tier% / R)` shares, then cut by every cap in a fixed order. A size is
never guessed: invalid inputs raise `ValueError` instead of producing a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Float noise tolerance. EV cut-offs compare with an absolute EPS (an EV computed as 0.6 - 0.4
# lands on 0.19999999999999996, and must still reach a 0.2 cut-off); share counts floor
# `x x (1 + EPS)` so that 9.999999999998 (exactly 10 in decimal) is 10, not 9. Consequently a
# cap holds to within a relative EPS (a billionth: $0.001 on a $1M account), never more.
EPS = 1e-9


class RiskTier(Enum):
    """Risk tiers, best first; the value is the display name."""

    ULTRA_PREMIUM = "ULTRA PREMIUM"
    EXCELLENT = "EXCELLENT"
    VERY_GOOD = "VERY GOOD"
    GOOD = "GOOD"
    DECENT = "DECENT"

    @property
    def display_name(self) -> str:
        return self.value


TIERS: tuple[RiskTier, ...] = tuple(RiskTier)


class SizingConfig(BaseModel):
    """Every sizing setting; the defaults are the production strategy.

    EV cut-offs (in R): a 0.50-confidence signal needs R:R 4 for ULTRA PREMIUM (EV 1.5), 3 for
    EXCELLENT (1.0), 2.2 for VERY GOOD (0.6), 1.6 for GOOD (0.3); anything with a positive EV is
    DECENT. Risk fractions are DESIGN.md's 2.5 / 2.0 / 1.5 / 1.0 / 0.5% of equity.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    confidence_gate: float = Field(
        0.50,
        ge=0,
        le=1,
        description="Below this model confidence there is no trade (the "
        "signal is an opposing-book candidate instead).",
    )
    # --- EV cut-offs (R); a tier needs EV >= its cut-off, and every tier needs EV > 0 --------
    ev_ultra_premium: float = Field(1.5, description="Lowest EV (R) of ULTRA PREMIUM.")
    ev_excellent: float = Field(1.0, description="Lowest EV (R) of EXCELLENT.")
    ev_very_good: float = Field(0.6, description="Lowest EV (R) of VERY GOOD.")
    ev_good: float = Field(0.3, description="Lowest EV (R) of GOOD.")
    ev_decent: float = Field(
        0.0,
        ge=0,
        description="Lowest EV (R) of DECENT; at 0 any positive EV qualifies "
        "(EV <= 0 never trades).",
    )
    # --- fraction of equity put at risk per tier ---------------------------------------------
    risk_ultra_premium: float = Field(
        0.025, gt=0, le=1, description="Equity at risk, ULTRA PREMIUM."
    )
    risk_excellent: float = Field(0.020, gt=0, le=1, description="Equity at risk, EXCELLENT.")
    risk_very_good: float = Field(0.015, gt=0, le=1, description="Equity at risk, VERY GOOD.")
    risk_good: float = Field(0.010, gt=0, le=1, description="Equity at risk, GOOD.")
    risk_decent: float = Field(0.005, gt=0, le=1, description="Equity at risk, DECENT.")
    # --- caps ----------------------------------------------------------------------------------
    max_position_notional_pct: float = Field(
        0.20,
        gt=0,
        le=1,
        description="One position's notional (shares x entry) <= this x "
        "equity, so a tight stop cannot concentrate the account "
        "in one name (at most all of it: 1.0).",
    )
    max_open_risk_pct: float = Field(
        0.06,
        gt=0,
        le=1,
        description="Open risk of all positions (this one included) <= this x "
        "equity: the loss if every stop is hit at once.",
    )
    max_open_positions: int = Field(
        10, ge=1, description="At this many open positions no new one is opened."
    )
    margin_requirement: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Fraction of a new position's notional that comes off excess "
        "liquidity. 1.0 (cash-like) is the conservative default; "
        "0.25 would model Reg T maintenance margin on stocks.",
    )
    margin_cushion_min: float = Field(
        0.10,
        ge=0,
        lt=1,
        description="Excess liquidity left after the trade must stay >= this x "
        "equity; the size is cut to keep it, or is zero.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SizingConfig:
        cuts = [self.cutoff(t) for t in TIERS]
        if any(a <= b for a, b in zip(cuts, cuts[1:], strict=False)):
            raise ValueError("EV cut-offs must strictly decrease from ULTRA PREMIUM to DECENT")
        risks = [self.risk_fraction(t) for t in TIERS]
        if any(a < b for a, b in zip(risks, risks[1:], strict=False)):
            raise ValueError("risk fractions must not increase from ULTRA PREMIUM to DECENT")
        return self

    def cutoff(self, tier: RiskTier) -> float:
        """Lowest EV (R) of `tier`."""
        return float(getattr(self, "ev_" + tier.name.lower()))

    def risk_fraction(self, tier: RiskTier) -> float:
        """Fraction of equity `tier` puts at risk."""
        return float(getattr(self, "risk_" + tier.name.lower()))


def expected_value(confidence: float, reward_risk: float, cost_r: float = 0.0) -> float:
    """EV in R, net of the round trip's cost: win `reward_risk - cost_r` R with probability
    `confidence`, else lose `1 + cost_r` R; `cost_r` (core.costs.expected_cost_r) is paid
    either way, so EV = conf x R:R - (1 - conf) - cost_r. At cost 0 it is the gross EV."""
    if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
        raise ValueError(f"confidence must be a probability in [0, 1], got {confidence!r}")
    if not (math.isfinite(reward_risk) and reward_risk >= 0.0):
        raise ValueError(f"reward_risk must be finite and >= 0, got {reward_risk!r}")
    if not (math.isfinite(cost_r) and cost_r >= 0.0):
        raise ValueError(f"cost_r must be finite and >= 0, got {cost_r!r}")
    return confidence * (reward_risk - cost_r) - (1.0 - confidence) * (1.0 + cost_r)


def tier_for(confidence: float, ev: float, config: SizingConfig) -> RiskTier | None:
    """The best tier whose EV cut-off is met; None below the gate or at EV <= 0. Pass the net
    EV (`expected_value` with the expected cost): tiers are earned after costs."""
    if not (confidence >= config.confidence_gate and ev > EPS):  # NaN fails too
        return None
    return next((t for t in TIERS if ev >= config.cutoff(t) - EPS), None)


@dataclass(frozen=True)
class Account:
    """What the broker says now: dollars, except `open_positions` (a count)."""

    equity: float
    buying_power: float
    open_risk: float  # sum over open positions of shares x |entry - stop|
    open_positions: int
    excess_liquidity: float  # the margin cushion; may be negative on a stressed account

    def __post_init__(self) -> None:
        if not (math.isfinite(self.equity) and self.equity > 0):
            raise ValueError(f"equity must be finite and > 0, got {self.equity!r}")
        for name in ("buying_power", "open_risk"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        if self.open_positions < 0:
            raise ValueError(f"open_positions must be >= 0, got {self.open_positions!r}")
        if not math.isfinite(self.excess_liquidity):
            raise ValueError(f"excess_liquidity must be finite, got {self.excess_liquidity!r}")


@dataclass(frozen=True)
class SizeDecision:
    """A size and why: `capped_by` names each cap that cut the size, in the order applied."""

    shares: int
    tier: RiskTier | None
    risk_dollars: float
    notional: float
    capped_by: tuple[str, ...]
    reason: str


def _floor(x: float) -> int:
    """floor, forgiving float noise just below an integer (see EPS); negatives give 0."""
    return math.floor(x * (1.0 + EPS)) if x > 0 else 0


def size_position(
    confidence: float,
    reward_risk: float,
    entry: float,
    stop: float,
    account: Account,
    config: SizingConfig,
    cost_r: float = 0.0,
) -> SizeDecision:
    """Shares for one trade: the tier's risk budget over R, then every cap (DESIGN.md). The
    tier comes from the EV net of `cost_r`, the round trip's expected cost in R."""
    if not (math.isfinite(entry) and math.isfinite(stop)):
        raise ValueError(f"entry and stop must be finite, got entry={entry!r} stop={stop!r}")
    if entry <= 0 or stop <= 0:
        raise ValueError(f"entry and stop must be > 0, got entry={entry!r} stop={stop!r}")
    risk = abs(entry - stop)
    if risk <= 0:
        raise ValueError(f"risk per share R = |entry - stop| must be > 0 (entry = stop = {entry})")
    ev = expected_value(confidence, reward_risk, cost_r)
    tier = tier_for(confidence, ev, config)
    if tier is None:
        why = (
            f"confidence {confidence:.4f} below the gate {config.confidence_gate:.2f}"
            if confidence < config.confidence_gate
            else f"EV {ev:+.4f} R is not above 0 and the lowest cut-off {config.ev_decent}"
        )
        return SizeDecision(0, None, 0.0, 0.0, (), f"no trade: {why}")

    equity = account.equity
    budget = equity * config.risk_fraction(tier)
    shares = _floor(budget / risk)
    cushion_room = account.excess_liquidity - config.margin_cushion_min * equity
    caps = (
        ("max_position_notional", _floor(config.max_position_notional_pct * equity / entry)),
        ("max_open_risk", _floor((config.max_open_risk_pct * equity - account.open_risk) / risk)),
        (
            "max_open_positions",
            0 if account.open_positions >= config.max_open_positions else shares,
        ),
        ("buying_power", _floor(account.buying_power / entry)),
        ("margin_cushion", _floor(cushion_room / (entry * config.margin_requirement))),
    )
    capped_by: list[str] = []
    for name, limit in caps:
        if limit < shares:
            shares, capped_by = limit, [*capped_by, name]

    head = f"{tier.value}: EV {ev:+.4f} R, {config.risk_fraction(tier):.2%} of equity at risk"
    if capped_by:
        reason = f"{head}; capped by {', '.join(capped_by)}"
    elif shares == 0:
        reason = f"{head}; risk budget ${budget:,.2f} is under one share's R ${risk:,.4f}"
    else:
        reason = head
    if shares == 0:
        reason = f"no trade: {reason}"
    return SizeDecision(shares, tier, shares * risk, shares * entry, tuple(capped_by), reason)

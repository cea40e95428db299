"""From a model's confidence to a decision: expected value, risk tier, regime, opposing book.

`EV = conf x (R:R - cost) - (1 - conf) x (1 + cost)` in R (core.sizing), `cost` the round
trip's expected commissions and slippage in R (core.costs); the gross EV (cost 0) is kept next
to it. A signal trades when its confidence clears
the gate and its EV earns a tier. A signal below the 0.50 gate is an opposing-book candidate:
the model expects the breakout to fail, which is what the fade trades.

Regime filter (documented rule): longs need `regime_long_gate_step` more confidence when the
market is risk-off on the signal session, meaning SPY closed under its `spy_sma_sessions`-day
average or VIX rose more than `vix_spike_pct` over the last 5 sessions. Shorts are unaffected.
The regime is read from index bars up to the signal session only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeGuard

from pydantic import BaseModel, ConfigDict, Field

from breakout_assets.core.sizing import SizingConfig, expected_value, tier_for


class RegimeConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    spy_sma_sessions: int = Field(50, ge=2, description="SPY average the market must hold.")
    vix_spike_pct: float = Field(
        0.20, gt=0, le=10, description="A VIX rise over 5 sessions above this is a spike."
    )
    long_gate_step: float = Field(
        0.05, ge=0, lt=0.5, description="Extra confidence longs need in a risk-off regime."
    )


@dataclass(frozen=True)
class Regime:
    spy_close: float | None
    spy_sma: float | None
    vix_change_5d: float | None

    def risk_off_reasons(self, config: RegimeConfig) -> list[str]:
        reasons = []
        if _known(self.spy_close) and _known(self.spy_sma) and self.spy_close < self.spy_sma:
            reasons.append(
                f"SPY {self.spy_close:.2f} under its {config.spy_sma_sessions}-day "
                f"average {self.spy_sma:.2f}"
            )
        if _known(self.vix_change_5d) and self.vix_change_5d > config.vix_spike_pct:
            reasons.append(f"VIX +{self.vix_change_5d:.0%} in 5 sessions")
        return reasons

    def to_json(self) -> dict:
        return {
            "spy_close": self.spy_close,
            "spy_sma": self.spy_sma,
            "vix_change_5d": self.vix_change_5d,
        }


def _known(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class Score:
    confidence: float
    expected_value: float  # net of the expected cost
    tier: str | None
    decision: str  # 'trade' | 'skip' | 'opposing'
    reason: str
    gross_expected_value: float = math.nan  # the same EV before costs
    cost_r: float = 0.0  # the expected round-trip cost in R


def score_signal(
    side: str,
    confidence: float,
    reward_risk: float,
    regime: Regime,
    sizing: SizingConfig,
    regime_config: RegimeConfig,
    cost_r: float = 0.0,
) -> Score:
    """Decision for one signal; `cost_r` is its expected round-trip cost in R
    (core.costs.expected_cost_r): the EV, the tier and the decision are net of it."""
    ev = expected_value(confidence, reward_risk, cost_r)
    gross = expected_value(confidence, reward_risk)

    def score(tier: str | None, decision: str, reason: str) -> Score:
        return Score(confidence, ev, tier, decision, reason, gross, cost_r)

    net = f"EV {ev:+.3f} R (gross {gross:+.3f}, costs {cost_r:.3f} R)"
    gate = sizing.confidence_gate
    if confidence < gate:
        return score(
            None,
            "opposing",
            f"confidence {confidence:.3f} < gate {gate:.2f}: opposing-book candidate",
        )
    risk_off = regime.risk_off_reasons(regime_config) if side == "long" else []
    needed = gate + (regime_config.long_gate_step if risk_off else 0.0)
    if confidence < needed:
        return score(
            None,
            "skip",
            f"risk-off regime ({'; '.join(risk_off)}): longs need confidence "
            f">= {needed:.2f}, got {confidence:.3f}",
        )
    tier = tier_for(confidence, ev, sizing)
    if tier is None:
        return score(None, "skip", f"{net} earns no tier")
    regime_note = f"; risk-off regime, gate raised to {needed:.2f}" if risk_off else ""
    return score(
        tier.value,
        "trade",
        f"{net} -> {tier.value} ({sizing.risk_fraction(tier):.1%} risk){regime_note}",
    )

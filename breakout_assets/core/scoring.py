"""From a model's confidence to a decision: expected value, risk tier, regime, opposing book.

`EV = conf x R:R - (1 - conf)` in R (core.sizing). A signal trades when its confidence clears
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

from pydantic import BaseModel, ConfigDict, Field

from breakout_assets.core.sizing import SizingConfig, expected_value, tier_for


class RegimeConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    spy_sma_sessions: int = Field(50, ge=2, description="SPY average the market must hold.")
    vix_spike_pct: float = Field(
        0.20, gt=0, description="A VIX rise over 5 sessions above this is a spike.")
    long_gate_step: float = Field(
        0.05, ge=0, lt=0.5, description="Extra confidence longs need in a risk-off regime.")


@dataclass(frozen=True)
class Regime:
    spy_close: float | None
    spy_sma: float | None
    vix_change_5d: float | None

    def risk_off_reasons(self, config: RegimeConfig) -> list[str]:
        reasons = []
        if _known(self.spy_close) and _known(self.spy_sma) and self.spy_close < self.spy_sma:
            reasons.append(f"SPY {self.spy_close:.2f} under its {config.spy_sma_sessions}-day "
                           f"average {self.spy_sma:.2f}")
        if _known(self.vix_change_5d) and self.vix_change_5d > config.vix_spike_pct:
            reasons.append(f"VIX +{self.vix_change_5d:.0%} in 5 sessions")
        return reasons

    def to_json(self) -> dict:
        return {"spy_close": self.spy_close, "spy_sma": self.spy_sma,
                "vix_change_5d": self.vix_change_5d}


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class Score:
    confidence: float
    expected_value: float
    tier: str | None
    decision: str  # 'trade' | 'skip' | 'opposing'
    reason: str


def score_signal(side: str, confidence: float, reward_risk: float, regime: Regime,
                 sizing: SizingConfig, regime_config: RegimeConfig) -> Score:
    ev = expected_value(confidence, reward_risk)
    gate = sizing.confidence_gate
    if confidence < gate:
        return Score(confidence, ev, None, "opposing",
                     f"confidence {confidence:.3f} < gate {gate:.2f}: opposing-book candidate")
    risk_off = regime.risk_off_reasons(regime_config) if side == "long" else []
    needed = gate + (regime_config.long_gate_step if risk_off else 0.0)
    if confidence < needed:
        return Score(confidence, ev, None, "skip",
                     f"risk-off regime ({'; '.join(risk_off)}): longs need confidence "
                     f">= {needed:.2f}, got {confidence:.3f}")
    tier = tier_for(confidence, ev, sizing)
    if tier is None:
        return Score(confidence, ev, None, "skip", f"EV {ev:+.3f} R earns no tier")
    regime_note = f"; risk-off regime, gate raised to {needed:.2f}" if risk_off else ""
    return Score(confidence, ev, tier.value, "trade",
                 f"EV {ev:+.3f} R -> {tier.value} ({sizing.risk_fraction(tier):.1%} risk)"
                 f"{regime_note}")

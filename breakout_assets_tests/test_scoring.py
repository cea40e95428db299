"""Scoring decisions by hand: EV, tier, the 0.50 gate, the opposing book and the regime filter."""

from __future__ import annotations

import math

import pytest

from breakout_assets.core.scoring import Regime, RegimeConfig, score_signal
from breakout_assets.core.sizing import SizingConfig

CALM = Regime(spy_close=450.0, spy_sma=440.0, vix_change_5d=0.05)
SIZING, REGIME = SizingConfig(), RegimeConfig()


def test_trade_with_hand_computed_ev_and_tier():
    score = score_signal("long", 0.60, 2.5, CALM, SIZING, REGIME)
    assert score.expected_value == pytest.approx(0.6 * 2.5 - 0.4)  # 1.1 R
    assert (score.decision, score.tier) == ("trade", "EXCELLENT")


def test_below_the_gate_is_an_opposing_candidate():
    score = score_signal("short", 0.49, 5.0, CALM, SIZING, REGIME)
    assert score.decision == "opposing" and score.tier is None
    assert score.expected_value == pytest.approx(0.49 * 5 - 0.51)


def test_negative_ev_is_skipped():
    score = score_signal("long", 0.55, 0.5, CALM, SIZING, REGIME)
    assert score.expected_value == pytest.approx(0.55 * 0.5 - 0.45) and score.decision == "skip"


@pytest.mark.parametrize(
    "regime, why",
    [
        (Regime(430.0, 440.0, 0.0), "under its 50-day average"),
        (Regime(450.0, 440.0, 0.35), "VIX +35%"),
    ],
)
def test_risk_off_regime_makes_longs_stricter_not_shorts(regime, why):
    long = score_signal("long", 0.53, 3.0, regime, SIZING, REGIME)
    assert long.decision == "skip" and why in long.reason
    assert score_signal("long", 0.56, 3.0, regime, SIZING, REGIME).decision == "trade"
    assert score_signal("short", 0.53, 3.0, regime, SIZING, REGIME).decision == "trade"


def test_unknown_regime_inputs_do_not_block():
    regime = Regime(None, math.nan, None)
    assert regime.risk_off_reasons(REGIME) == []
    assert score_signal("long", 0.52, 3.0, regime, SIZING, REGIME).decision == "trade"


def test_ev_tier_and_decision_are_net_of_the_expected_cost():
    gross = score_signal("long", 0.60, 2.5, CALM, SIZING, REGIME)
    net = score_signal("long", 0.60, 2.5, CALM, SIZING, REGIME, cost_r=0.15)
    assert net.expected_value == pytest.approx(0.6 * (2.5 - 0.15) - 0.4 * 1.15)  # 0.95 R
    assert net.expected_value < gross.expected_value == net.gross_expected_value
    assert net.cost_r == 0.15 and "costs 0.150 R" in net.reason
    assert (gross.tier, net.tier) == ("EXCELLENT", "VERY GOOD")
    # a thin edge that costs eat is skipped
    thin = score_signal("short", 0.52, 1.0, CALM, SIZING, REGIME, cost_r=0.05)
    assert thin.gross_expected_value > 0 >= thin.expected_value and thin.decision == "skip"

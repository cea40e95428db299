"""Trading costs in R (core.costs): hand-computed commission regimes (minimum, value cap, per
share), slippage by ATR and by bps, a short mirroring a long, fills of a managed trade, and
properties (costs are never negative so net <= gross, commission in dollars grows with shares
while the cost in R never does, more slippage never costs less)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from breakout_assets.core.costs import (
    CostConfig,
    commission,
    expected_cost_r,
    expected_costs_r,
    fills_cost_r,
    net_r,
    reference_shares,
    round_trip_cost_r,
    round_trip_costs_r,
    slippage_per_share,
)
from breakout_assets.settings import load_settings

IBKR = CostConfig()
NO_SLIPPAGE = CostConfig(slippage_atr_fraction=0.0)
NO_COMMISSION = CostConfig(commission_per_share=0.0, commission_min_per_order=0.0)
PROPS = settings(max_examples=300, deadline=None)


# --- defaults and settings ----------------------------------------------------------------------


def test_defaults_are_ibkr_fixed_and_a_twentieth_of_an_atr_per_fill() -> None:
    assert (
        IBKR.commission_per_share,
        IBKR.commission_min_per_order,
        IBKR.commission_max_pct_of_value,
    ) == (0.005, 1.00, 0.01)
    assert (IBKR.slippage_atr_fraction, IBKR.slippage_bps) == (0.05, 0.0)
    assert IBKR.reference_risk_dollars == 1_000.0
    assert all(f.description for f in CostConfig.model_fields.values())  # every field documented
    with pytest.raises(ValidationError):
        CostConfig(slippage_bps=-1)
    with pytest.raises(ValidationError):
        CostConfig(commision_per_share=0.01)  # a typo is an error, not a silent default


def test_settings_read_breakout_costs_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREAKOUT_COSTS__SLIPPAGE_BPS", "5")
    monkeypatch.setenv("BREAKOUT_COSTS__COMMISSION_MIN_PER_ORDER", "0.35")
    costs = load_settings().costs
    assert (costs.slippage_bps, costs.commission_min_per_order) == (5.0, 0.35)
    assert costs.commission_per_share == 0.005  # the rest keep the defaults


# --- commission: one order ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shares", "price", "fee"),
    [
        (100, 50.0, 1.00),  # 100 x 0.005 = $0.50: the $1.00 minimum binds
        (1000, 20.0, 5.00),  # per-share regime: 1000 x 0.005
        (100, 0.50, 0.50),  # value $50: the 1% cap ($0.50) binds, even below the minimum
        (10_000, 0.30, 30.0),  # per share $50 > 1% of $3,000: the cap binds
        (200, 10.0, 1.00),  # exactly the minimum
        (0, 50.0, 0.0),  # no order, no commission
    ],
)
def test_commission_regimes(shares: int, price: float, fee: float) -> None:
    assert float(commission(shares, price, IBKR)) == pytest.approx(fee, abs=1e-12)


# --- round trip in R ----------------------------------------------------------------------------


def test_round_trip_commission_in_r_by_hand() -> None:
    # per-share regime, 1000 shares risking $1 each: $5 in + $5 out = $10 over $1,000
    assert round_trip_cost_r(20.0, 22.0, 1.0, 0.5, 1000, config=NO_SLIPPAGE) == pytest.approx(0.01)
    # the minimum binds on both orders: $2 over 100 shares x $2 risk
    assert round_trip_cost_r(50.0, 46.0, 2.0, 1.0, 100, config=NO_SLIPPAGE) == pytest.approx(0.01)
    # the cap binds on both: 1% of $50 in + 1% of $60 out = $1.10 over 100 shares x $0.10
    assert round_trip_cost_r(0.5, 0.6, 0.1, 0.05, 100, config=NO_SLIPPAGE) == pytest.approx(0.11)


def test_slippage_by_atr_and_by_bps_by_hand() -> None:
    # 0.05 x ATR 2 = $0.10 per fill, two fills over R $4: 0.05 R, whatever the shares
    for shares in (1, 100, None):
        assert round_trip_cost_r(
            100.0, 108.0, 4.0, 2.0, shares, config=NO_COMMISSION
        ) == pytest.approx(0.05)
    # 5 bps of $100 in and of $110 out = $0.105 over R $2
    bps = NO_COMMISSION.model_copy(update={"slippage_atr_fraction": 0.0, "slippage_bps": 5.0})
    assert round_trip_cost_r(100.0, 110.0, 2.0, 1.0, config=bps) == pytest.approx(0.0525)
    # both set: they add up
    both = NO_COMMISSION.model_copy(update={"slippage_bps": 5.0})
    assert round_trip_cost_r(100.0, 110.0, 2.0, 1.0, config=both) == pytest.approx(
        0.0525 + 2 * 0.05 * 1.0 / 2.0
    )


def test_missing_atr_falls_back_to_half_the_risk() -> None:
    with_atr = round_trip_cost_r(100.0, 108.0, 4.0, 2.0, config=NO_COMMISSION)
    for missing in (None, math.nan, 0.0):
        assert round_trip_cost_r(100.0, 108.0, 4.0, missing, config=NO_COMMISSION) == pytest.approx(
            with_atr
        )
    assert slippage_per_share(10.0, None, 1.0, IBKR) == pytest.approx(0.05 * 0.5)


def test_default_costs_of_a_typical_reference_trade() -> None:
    # $50 stock, ATR $1.50, R $3 (the 2-ATR stop): 333 shares, $1.665 a side, 0.05 R slippage
    assert reference_shares(3.0, IBKR) == 333
    expected = (2 * 333 * 0.005) / (333 * 3.0) + 2 * 0.05 * 1.5 / 3.0
    assert expected_cost_r(50.0, 3.0, 1.5, IBKR) == pytest.approx(expected)
    assert round_trip_cost_r(50.0, 56.0, 3.0, 1.5, config=IBKR) == pytest.approx(expected)


def test_reference_shares() -> None:
    assert reference_shares(0.1, IBKR) == 10_000  # 1000 / 0.1 is 9999.999... in floats
    assert reference_shares(0.3, IBKR) == 3333
    assert reference_shares(5_000.0, IBKR) == 1  # never less than one share
    assert reference_shares([2.0, 4.0], IBKR).tolist() == [500, 250]


def test_a_short_mirrors_a_long() -> None:
    """Long E 50, stop 47, exit 56 and short E 50, stop 53, exit 44: +2 R each, same cost (the
    per-share commission and ATR slippage do not depend on the direction or price level)."""
    long = round_trip_cost_r(50.0, 56.0, 3.0, 1.5, config=IBKR)
    short = round_trip_cost_r(50.0, 44.0, 3.0, 1.5, config=IBKR)
    assert long == pytest.approx(short)
    assert net_r(2.0, long) == pytest.approx(net_r(2.0, short)) == pytest.approx(2.0 - long)
    # the same fills cost the same on either side, in any regime
    for config in (IBKR, CostConfig(slippage_bps=7), CostConfig(commission_min_per_order=50)):
        assert (
            round_trip_costs_r([50.0, 50.0], [44.0, 44.0], 3.0, 1.5, config=config).tolist()
            == [round_trip_cost_r(50.0, 44.0, 3.0, 1.5, config=config)] * 2
        )


def test_vectorised_matches_scalar_and_rejects_bad_inputs() -> None:
    entry = np.array([50.0, 10.0, 2.0, 400.0])
    exit_ = np.array([56.0, 9.4, 2.3, 380.0])
    risk = np.array([3.0, 0.6, 0.12, 20.0])
    atr = np.array([1.5, np.nan, 0.06, 10.0])
    many = round_trip_costs_r(entry, exit_, risk, atr, config=IBKR)
    one = [
        round_trip_cost_r(*args, config=IBKR) for args in zip(entry, exit_, risk, atr, strict=True)
    ]
    assert many.tolist() == pytest.approx(one)
    assert expected_costs_r(entry, risk, atr, IBKR).tolist() == pytest.approx(
        [expected_cost_r(e, r, a, IBKR) for e, r, a in zip(entry, risk, atr, strict=True)]
    )
    for bad in ({"entry": 0.0}, {"exit": math.nan}, {"risk_per_share": 0.0}, {"shares": 0}):
        args = {"entry": 50.0, "exit": 55.0, "risk_per_share": 3.0, "atr": 1.5, **bad}
        with pytest.raises(ValueError):
            round_trip_cost_r(**args, config=IBKR)


def test_fills_of_a_managed_trade_by_hand() -> None:
    # 100 @ 50, add 50 @ 52, exit 150 @ 55; R $2, ATR $1: three $1.00 minimums and
    # 0.05 x $1 on 300 shares filled = $18 over the original $200 risk
    cost = fills_cost_r([100, 50, 150], [50.0, 52.0, 55.0], 2.0, 1.0, 100, config=IBKR)
    assert cost == pytest.approx(18.0 / 200.0)
    # entry and exit alone: the round trip
    assert fills_cost_r([333, 333], [50.0, 56.0], 3.0, 1.5, 333, config=IBKR) == pytest.approx(
        round_trip_cost_r(50.0, 56.0, 3.0, 1.5, config=IBKR)
    )


# --- properties ---------------------------------------------------------------------------------

prices = st.floats(0.05, 2_000.0)
risks = st.floats(0.001, 0.5)  # R as a fraction of the entry
configs = st.builds(
    CostConfig,
    commission_per_share=st.floats(0.0, 0.05),
    commission_min_per_order=st.floats(0.0, 10.0),
    commission_max_pct_of_value=st.floats(1e-4, 0.05),
    slippage_atr_fraction=st.floats(0.0, 0.5),
    slippage_bps=st.floats(0.0, 50.0),
    reference_risk_dollars=st.floats(10.0, 1e6),
)


@PROPS
@given(
    entry=prices,
    move=st.floats(-0.5, 2.0),
    risk_fraction=risks,
    atr=st.one_of(st.none(), st.floats(0.0, 100.0)),
    gross=st.floats(-3.0, 10.0),
    shares=st.one_of(st.none(), st.integers(1, 10**6)),
    config=configs,
)
def test_net_never_exceeds_gross(
    entry: float,
    move: float,
    risk_fraction: float,
    atr: float | None,
    gross: float,
    shares: int | None,
    config: CostConfig,
) -> None:
    exit_ = max(entry * (1 + move), 0.01)
    cost = round_trip_cost_r(entry, exit_, entry * risk_fraction, atr, shares, config=config)
    assert math.isfinite(cost) and cost >= 0.0
    assert net_r(gross, cost) <= gross
    assert expected_cost_r(entry, entry * risk_fraction, atr, config, shares) >= 0.0


@PROPS
@given(
    entry=prices,
    exit_=prices,
    risk_fraction=risks,
    atr=st.floats(0.0, 100.0),
    n=st.integers(1, 10**6),
    more=st.integers(1, 10**6),
    config=configs,
)
def test_more_shares_cost_more_dollars_and_no_more_r(
    entry: float,
    exit_: float,
    risk_fraction: float,
    atr: float,
    n: int,
    more: int,
    config: CostConfig,
) -> None:
    risk = entry * risk_fraction
    small, large = (
        round_trip_cost_r(entry, exit_, risk, atr, k, config=config) for k in (n, n + more)
    )
    assert large <= small * (1 + 1e-9) + 1e-12  # the minimum spreads over more shares
    dollars_small, dollars_large = small * n * risk, large * (n + more) * risk
    assert dollars_large >= dollars_small * (1 - 1e-9) - 1e-9
    assert float(commission(n + more, entry, config)) >= float(commission(n, entry, config))


@PROPS
@given(
    entry=prices,
    exit_=prices,
    risk_fraction=risks,
    atr=st.floats(0.0, 100.0),
    shares=st.one_of(st.none(), st.integers(1, 10**6)),
    config=configs,
    extra=st.floats(0.0, 1.0),
    field=st.sampled_from(
        [
            "slippage_atr_fraction",
            "slippage_bps",
            "commission_per_share",
            "commission_min_per_order",
        ]
    ),
)
def test_more_slippage_or_commission_never_costs_less(
    entry: float,
    exit_: float,
    risk_fraction: float,
    atr: float,
    shares: int | None,
    config: CostConfig,
    extra: float,
    field: str,
) -> None:
    risk = entry * risk_fraction
    dearer = config.model_copy(update={field: getattr(config, field) + extra})
    base = round_trip_cost_r(entry, exit_, risk, atr, shares, config=config)
    assert round_trip_cost_r(entry, exit_, risk, atr, shares, config=dearer) >= base * (1 - 1e-12)


# --- promotion compares net expectancy ----------------------------------------------------------


def test_promotion_compares_expectancy_after_costs() -> None:
    from breakout_assets.ml.evaluation import expectancy_table
    from breakout_assets.ml.registry import PromotionRules, promotion_verdict

    rules = PromotionRules(min_auc_margin=-0.5, min_gated_trades=1)
    p, gross = np.array([0.4, 0.6]), np.array([0.0, 0.1])
    net = np.array([-0.02, -0.2])  # the trade the gate keeps is the costly one
    metrics = {"roc_auc": 0.6}
    by_gross = promotion_verdict(metrics, expectancy_table(p, gross), rules)
    by_net = promotion_verdict(metrics, expectancy_table(p, gross, net_r=net), rules)
    assert by_gross["passed"] and not by_net["passed"]
    rule = by_net["checks"][-1]
    assert rule["rule"] == "net expectancy at the gate > scanner only"
    assert (rule["value"], rule["threshold"]) == (pytest.approx(-0.2), pytest.approx(-0.11))
    assert "gross" in by_gross["checks"][-1]["rule"]  # says when no costs were recorded

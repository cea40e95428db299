"""Expected value, risk tiers and position sizing: hand-computed cases (EV, tier boundaries, the
0.50 gate, each cap biting on its own), input and config validation, and hypothesis properties
(no cap is ever broken, no trade below the gate or at EV <= 0, the size is the largest that fits
and never shrinks as the tier improves)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from breakout_assets.core.sizing import (
    EPS,
    TIERS,
    Account,
    RiskTier,
    SizeDecision,
    SizingConfig,
    expected_value,
    size_position,
    tier_for,
)

DEFAULT = SizingConfig()
CAP_NAMES = (
    "max_position_notional",
    "max_open_risk",
    "max_open_positions",
    "buying_power",
    "margin_cushion",
)
# A $100k account on which no cap bites for the hand cases below (entry 10, stop 8: R = $2).
LOOSE = Account(
    equity=100_000.0, buying_power=1e9, open_risk=0.0, open_positions=0, excess_liquidity=1e9
)
# The caps may overshoot by the documented relative EPS at most (plus float noise).
TOL = 2 * EPS
PROPS = settings(max_examples=300, deadline=None)


def _size(
    confidence: float = 0.5,
    reward_risk: float = 4.0,
    entry: float = 10.0,
    stop: float = 8.0,
    account: Account = LOOSE,
    config: SizingConfig = DEFAULT,
    **account_changes: float,
) -> SizeDecision:
    return size_position(
        confidence,
        reward_risk,
        entry,
        stop,
        dataclasses.replace(account, **account_changes),
        config,
    )


# --- expected value -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confidence", "reward_risk", "ev"),
    [
        (0.5, 2.0, 0.5),  # 0.5 x 2 - 0.5
        (0.6, 2.0, 0.8),  # 1.2 - 0.4
        (0.5, 1.0, 0.0),  # break-even
        (0.4, 1.0, -0.2),
        (1.0, 3.0, 3.0),
        (0.0, 5.0, -1.0),
        (0.75, 0.0, -0.25),
        (0.5, 4.0, 1.5),
    ],
)
def test_expected_value_hand_cases(confidence: float, reward_risk: float, ev: float) -> None:
    assert expected_value(confidence, reward_risk) == pytest.approx(ev, abs=1e-12)


@pytest.mark.parametrize(
    ("confidence", "reward_risk"),
    [
        (-0.01, 2.0),
        (1.01, 2.0),
        (math.nan, 2.0),
        (0.5, -0.1),
        (0.5, math.inf),
        (0.5, math.nan),
    ],
)
def test_expected_value_rejects_invalid_inputs(confidence: float, reward_risk: float) -> None:
    with pytest.raises(ValueError):
        expected_value(confidence, reward_risk)


def test_net_expected_value_by_hand_and_a_tier_lost_to_costs() -> None:
    # 0.6 x (2.5 - 0.1) - 0.4 x (1 + 0.1) = 1.44 - 0.44 = 1.0 (gross 1.1)
    assert expected_value(0.6, 2.5, 0.1) == pytest.approx(1.0, abs=1e-12)
    assert expected_value(0.6, 2.5, 0.0) == expected_value(0.6, 2.5)
    # gross EV 1.5 is ULTRA PREMIUM; 0.05 R of costs makes it EXCELLENT, and the size follows
    assert tier_for(0.5, expected_value(0.5, 4.0), DEFAULT) is RiskTier.ULTRA_PREMIUM
    assert tier_for(0.5, expected_value(0.5, 4.0, 0.05), DEFAULT) is RiskTier.EXCELLENT
    assert _size().shares == 1250
    net = size_position(0.5, 4.0, 10.0, 8.0, LOOSE, DEFAULT, cost_r=0.05)
    assert (net.tier, net.shares) == (RiskTier.EXCELLENT, 1000)
    for bad in (-0.01, math.nan, math.inf):
        with pytest.raises(ValueError):
            expected_value(0.5, 2.0, bad)


@PROPS
@given(confidence=st.floats(0.0, 1.0), reward_risk=st.floats(0.0, 20.0), cost_r=st.floats(0.0, 5.0))
def test_net_expected_value_never_exceeds_gross(
    confidence: float, reward_risk: float, cost_r: float
) -> None:
    gross, net = (
        expected_value(confidence, reward_risk),
        expected_value(confidence, reward_risk, cost_r),
    )
    assert net <= gross + 1e-12
    assert net == pytest.approx(gross - cost_r, abs=1e-9)
    # a tier earned net is never better than the one earned gross
    tiers = [*TIERS, None]
    assert tiers.index(tier_for(confidence, net, DEFAULT)) >= tiers.index(
        tier_for(confidence, gross, DEFAULT)
    )


# --- tiers --------------------------------------------------------------------------------------


def test_tier_display_names_and_order() -> None:
    assert [t.value for t in TIERS] == ["ULTRA PREMIUM", "EXCELLENT", "VERY GOOD", "GOOD", "DECENT"]
    assert RiskTier.VERY_GOOD.display_name == "VERY GOOD"


@pytest.mark.parametrize(
    ("ev", "tier"),
    [
        (3.0, RiskTier.ULTRA_PREMIUM),
        (1.5, RiskTier.ULTRA_PREMIUM),  # exactly at the cut-off
        (1.4999, RiskTier.EXCELLENT),
        (1.0, RiskTier.EXCELLENT),
        (0.9999, RiskTier.VERY_GOOD),
        (0.6, RiskTier.VERY_GOOD),
        (0.5999, RiskTier.GOOD),
        (0.3, RiskTier.GOOD),
        (0.2999, RiskTier.DECENT),
        (1e-6, RiskTier.DECENT),
        (0.0, None),  # EV <= 0: no trade
        (-0.5, None),
    ],
)
def test_tier_cut_offs(ev: float, tier: RiskTier | None) -> None:
    assert tier_for(0.5, ev, DEFAULT) is tier


def test_confidence_gate_boundary() -> None:
    assert tier_for(0.5, 2.0, DEFAULT) is RiskTier.ULTRA_PREMIUM  # exactly at the gate trades
    assert tier_for(0.4999, 2.0, DEFAULT) is None
    assert tier_for(0.0, 2.0, DEFAULT) is None
    assert tier_for(math.nan, 2.0, DEFAULT) is None
    assert tier_for(0.6, 2.0, SizingConfig(confidence_gate=0.6)) is RiskTier.ULTRA_PREMIUM
    assert tier_for(0.59, 2.0, SizingConfig(confidence_gate=0.6)) is None


@pytest.mark.parametrize(
    ("reward_risk", "tier"),
    [
        (4.0, RiskTier.ULTRA_PREMIUM),  # EV 1.5
        (3.0, RiskTier.EXCELLENT),  # EV 1.0
        (2.2, RiskTier.VERY_GOOD),  # EV 0.6 (0.6000000000000001 in floats)
        (1.6, RiskTier.GOOD),  # EV 0.3
        (1.2, RiskTier.DECENT),  # EV 0.1
        (1.0, None),  # EV 0
    ],
)
def test_tier_from_computed_ev_at_the_gate(reward_risk: float, tier: RiskTier | None) -> None:
    assert tier_for(0.5, expected_value(0.5, reward_risk), DEFAULT) is tier


def test_tier_boundary_survives_float_noise() -> None:
    # 0.6 x 1.0 - 0.4 is 0.19999999999999996 in floats; it is exactly the 0.2 cut-off.
    config = SizingConfig(ev_decent=0.2)
    ev = expected_value(0.6, 1.0)
    assert ev < 0.2
    assert tier_for(0.6, ev, config) is RiskTier.DECENT
    assert tier_for(0.6, 0.19, config) is None  # positive but below the lowest cut-off


# --- sizing: hand cases -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reward_risk", "tier", "shares"),
    [
        (4.0, RiskTier.ULTRA_PREMIUM, 1250),  # 2.5% of 100k = 2500 / R 2
        (3.0, RiskTier.EXCELLENT, 1000),  # 2000 / 2
        (2.2, RiskTier.VERY_GOOD, 750),  # 1500 / 2
        (1.6, RiskTier.GOOD, 500),  # 1000 / 2
        (1.2, RiskTier.DECENT, 250),  # 500 / 2
    ],
)
def test_size_per_tier_without_caps(reward_risk: float, tier: RiskTier, shares: int) -> None:
    d = _size(reward_risk=reward_risk)
    assert (d.shares, d.tier, d.capped_by) == (shares, tier, ())
    assert d.risk_dollars == pytest.approx(shares * 2.0)
    assert d.notional == pytest.approx(shares * 10.0)
    assert tier.value in d.reason and "capped" not in d.reason


def test_short_side_sizes_on_the_same_distance() -> None:
    long, short = _size(entry=10.0, stop=8.0), _size(entry=8.0, stop=10.0)
    assert long.shares == short.shares == 1250
    assert short.notional == pytest.approx(1250 * 8.0)


def test_floor_is_not_fooled_by_float_noise() -> None:
    # R = 1.1 - 1.0 = 0.10000000000000009; 1% of $1000 / R = 99.99999999999991: exactly 100.
    account = dataclasses.replace(LOOSE, equity=1000.0)
    assert 1000.0 * 0.01 / (1.1 - 1.0) < 100
    d = _size(reward_risk=1.6, entry=1.1, stop=1.0, account=account)
    assert (d.tier, d.shares, d.capped_by) == (RiskTier.GOOD, 100, ())


def test_notional_cap() -> None:
    # ULTRA: 2500 / R 5 = 500 shares = $50k; the cap is 20% of 100k = $20k = 200 shares.
    d = _size(entry=100.0, stop=95.0)
    assert (d.shares, d.capped_by) == (200, ("max_position_notional",))
    assert d.notional == pytest.approx(20_000.0) and d.risk_dollars == pytest.approx(1000.0)
    assert "capped by max_position_notional" in d.reason


def test_open_risk_cap() -> None:
    # 6% of 100k = 6000 allowed, 5000 already open: room 1000 / R 2 = 500 shares.
    d = _size(open_risk=5000.0)
    assert (d.shares, d.capped_by) == (500, ("max_open_risk",))
    assert "max_open_risk" in d.reason
    full = _size(open_risk=6000.0)
    assert (full.shares, full.capped_by) == (0, ("max_open_risk",))
    assert full.reason.startswith("no trade")
    assert _size(open_risk=7000.0).shares == 0  # already over: no room, never negative


def test_open_positions_cap() -> None:
    assert _size(open_positions=9).shares == 1250
    d = _size(open_positions=10)
    assert (d.shares, d.tier, d.capped_by) == (0, RiskTier.ULTRA_PREMIUM, ("max_open_positions",))
    assert d.reason.startswith("no trade") and "max_open_positions" in d.reason


def test_buying_power_cap() -> None:
    d = _size(buying_power=5000.0)  # $5000 / $10 = 500 shares
    assert (d.shares, d.capped_by) == (500, ("buying_power",))
    assert "buying_power" in d.reason
    assert _size(buying_power=0.0).shares == 0


def test_margin_cushion_cap() -> None:
    # Cushion 14k, 10% of 100k must stay: 4000 of room / ($10 x 1.0) = 400 shares.
    d = _size(excess_liquidity=14_000.0)
    assert (d.shares, d.capped_by) == (400, ("margin_cushion",))
    assert "margin_cushion" in d.reason
    # A 25% requirement: only a quarter of the notional comes off the cushion.
    reg_t = SizingConfig(margin_requirement=0.25)
    assert _size(excess_liquidity=14_000.0, config=reg_t).capped_by == ()  # 1600 >= 1250
    d = _size(excess_liquidity=12_000.0, config=reg_t)  # 2000 / 2.5 = 800 shares
    assert (d.shares, d.capped_by) == (800, ("margin_cushion",))
    # Already below the minimum cushion: no trade.
    d = _size(excess_liquidity=9_000.0)
    assert (d.shares, d.capped_by) == (0, ("margin_cushion",))
    assert d.reason.startswith("no trade")


def test_several_caps_listed_in_order_and_only_when_they_cut() -> None:
    # ULTRA 500 shares -> notional 200 -> buying power $10k / $100 = 100.
    d = _size(entry=100.0, stop=95.0, buying_power=10_000.0)
    assert (d.shares, d.capped_by) == (100, ("max_position_notional", "buying_power"))
    assert "capped by max_position_notional, buying_power" in d.reason
    # Buying power for exactly 200 shares does not cut below the notional cap: not listed.
    d = _size(entry=100.0, stop=95.0, buying_power=20_000.0)
    assert (d.shares, d.capped_by) == (200, ("max_position_notional",))


def test_budget_under_one_share() -> None:
    # DECENT: 0.5% of $1000 = $5 of risk, R = $10: not one share; no cap is blamed.
    account = dataclasses.replace(LOOSE, equity=1000.0)
    d = _size(reward_risk=1.2, entry=100.0, stop=90.0, account=account)
    assert (d.shares, d.tier, d.capped_by) == (0, RiskTier.DECENT, ())
    assert d.reason.startswith("no trade") and "under one share" in d.reason


@pytest.mark.parametrize(
    ("confidence", "reward_risk", "word"),
    [
        (0.49, 10.0, "gate"),
        (0.5, 1.0, "EV"),
        (0.9, 0.05, "EV"),
    ],
)
def test_no_trade_below_gate_or_without_edge(
    confidence: float, reward_risk: float, word: str
) -> None:
    d = _size(confidence=confidence, reward_risk=reward_risk)
    assert d == SizeDecision(0, None, 0.0, 0.0, (), d.reason)
    assert d.reason.startswith("no trade") and word in d.reason


@pytest.mark.parametrize(
    ("entry", "stop"),
    [
        (10.0, 10.0),
        (math.nan, 9.0),
        (10.0, math.inf),
        (0.0, 1.0),
        (-5.0, -6.0),
        (10.0, 0.0),
    ],
)
def test_size_rejects_invalid_prices(entry: float, stop: float) -> None:
    with pytest.raises(ValueError):
        _size(entry=entry, stop=stop)


def test_size_rejects_invalid_confidence() -> None:
    with pytest.raises(ValueError, match="confidence"):
        _size(confidence=1.5)


@pytest.mark.parametrize(
    "changes",
    [
        {"equity": 0.0},
        {"equity": -1.0},
        {"equity": math.nan},
        {"equity": math.inf},
        {"buying_power": -1.0},
        {"open_risk": -1.0},
        {"open_positions": -1},
        {"excess_liquidity": math.nan},
    ],
)
def test_account_rejects_invalid_values(changes: dict) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(LOOSE, **changes)


# --- config -------------------------------------------------------------------------------------


def test_config_defaults_are_documented() -> None:
    assert [DEFAULT.cutoff(t) for t in TIERS] == [1.5, 1.0, 0.6, 0.3, 0.0]
    assert [DEFAULT.risk_fraction(t) for t in TIERS] == [0.025, 0.02, 0.015, 0.01, 0.005]
    assert DEFAULT.confidence_gate == 0.5
    for name, field in SizingConfig.model_fields.items():
        assert field.description, name


@pytest.mark.parametrize(
    "changes",
    [
        {"ev_excellent": 1.5},  # equal to ULTRA PREMIUM's: not strictly decreasing
        {"ev_good": 0.7},  # above VERY GOOD's
        {"ev_decent": 0.3},  # equal to GOOD's
        {"ev_decent": -0.1},  # a negative-EV tier
        {"risk_good": 0.02},  # GOOD would risk more than VERY GOOD
        {"risk_decent": 0.0},
        {"confidence_gate": 1.5},
        {"max_open_positions": 0},
        {"margin_requirement": 0.0},
        {"margin_cushion_min": 1.0},
        {"max_position_notional_pct": 0.0},
        {"unknown_setting": 1},
    ],
)
def test_config_validation(changes: dict) -> None:
    with pytest.raises(ValidationError):
        SizingConfig(**changes)


def test_config_equal_risk_fractions_allowed_and_frozen() -> None:
    assert SizingConfig(risk_good=0.015).risk_good == 0.015  # non-increasing, not strictly
    with pytest.raises(ValidationError):
        DEFAULT.confidence_gate = 0.4  # type: ignore[misc]


# --- properties ---------------------------------------------------------------------------------


@st.composite
def configs(draw: st.DrawFn) -> SizingConfig:
    decent = draw(st.floats(0.0, 0.2))
    steps = draw(st.lists(st.floats(0.01, 1.0), min_size=4, max_size=4))
    cuts = [decent + sum(steps[:i]) for i in range(4, -1, -1)]
    risks = sorted(draw(st.lists(st.floats(0.001, 0.05), min_size=5, max_size=5)), reverse=True)
    names = [t.name.lower() for t in TIERS]
    return SizingConfig(
        confidence_gate=draw(st.floats(0.3, 0.7)),
        **{f"ev_{n}": c for n, c in zip(names, cuts, strict=True)},
        **{f"risk_{n}": r for n, r in zip(names, risks, strict=True)},
        max_position_notional_pct=draw(st.floats(0.01, 1.0)),
        max_open_risk_pct=draw(st.floats(0.005, 0.2)),
        max_open_positions=draw(st.integers(1, 20)),
        margin_requirement=draw(st.floats(0.05, 1.0)),
        margin_cushion_min=draw(st.floats(0.0, 0.5)),
    )


@st.composite
def accounts(draw: st.DrawFn) -> Account:
    equity = draw(st.floats(1e3, 1e7))
    return Account(
        equity=equity,
        buying_power=draw(st.floats(0.0, 2.0)) * equity,
        open_risk=draw(st.floats(0.0, 0.1)) * equity,
        open_positions=draw(st.integers(0, 25)),
        excess_liquidity=draw(st.floats(-0.1, 1.5)) * equity,
    )


@st.composite
def prices(draw: st.DrawFn) -> tuple[float, float]:
    entry = draw(st.floats(0.5, 2000.0))
    distance = draw(st.floats(0.001, 0.5)) * entry
    return (entry, entry - distance) if draw(st.booleans()) else (entry, entry + distance)


def _within(value: float, limit: float) -> bool:
    return value <= limit + TOL * abs(limit) + 1e-9


@PROPS
@given(
    confidence=st.floats(0.0, 1.0),
    reward_risk=st.floats(0.0, 6.0),
    price=prices(),
    account=accounts(),
    config=configs(),
)
def test_size_never_breaks_a_cap(
    confidence: float,
    reward_risk: float,
    price: tuple[float, float],
    account: Account,
    config: SizingConfig,
) -> None:
    entry, stop = price
    risk = abs(entry - stop)
    d = size_position(confidence, reward_risk, entry, stop, account, config)
    ev = expected_value(confidence, reward_risk)
    eq = account.equity
    assert isinstance(d.shares, int) and d.shares >= 0
    assert d.tier is tier_for(confidence, ev, config)
    assert d.risk_dollars == d.shares * risk and d.notional == d.shares * entry
    assert list(d.capped_by) == [c for c in CAP_NAMES if c in d.capped_by]  # in order, once
    if ev <= 0 or confidence < config.confidence_gate:
        assert d.shares == 0 and d.tier is None
    if d.shares == 0:
        return
    assert d.tier is not None
    assert _within(d.risk_dollars, eq * config.risk_fraction(d.tier))
    assert _within(d.notional, config.max_position_notional_pct * eq)
    assert _within(account.open_risk + d.risk_dollars, config.max_open_risk_pct * eq)
    assert account.open_positions < config.max_open_positions
    assert _within(d.notional, account.buying_power)
    assert _within(
        d.notional * config.margin_requirement,
        account.excess_liquidity - config.margin_cushion_min * eq,
    )


@PROPS
@given(
    confidence=st.floats(0.0, 1.0),
    reward_risk=st.floats(0.0, 6.0),
    price=prices(),
    account=accounts(),
    config=configs(),
)
def test_size_is_the_largest_that_fits(
    confidence: float,
    reward_risk: float,
    price: tuple[float, float],
    account: Account,
    config: SizingConfig,
) -> None:
    """One more share would exceed the risk budget or break a cap (no size left on the table)."""
    entry, stop = price
    d = size_position(confidence, reward_risk, entry, stop, account, config)
    if d.tier is None:
        return
    n, risk, eq = d.shares + 1, abs(entry - stop), account.equity

    def over(value: float, limit: float) -> bool:
        return value > limit - TOL * abs(limit) - 1e-9

    assert (
        over(n * risk, eq * config.risk_fraction(d.tier))
        or over(n * entry, config.max_position_notional_pct * eq)
        or over(account.open_risk + n * risk, config.max_open_risk_pct * eq)
        or account.open_positions >= config.max_open_positions
        or over(n * entry, account.buying_power)
        or over(
            n * entry * config.margin_requirement,
            account.excess_liquidity - config.margin_cushion_min * eq,
        )
    )


@PROPS
@given(
    confidence=st.floats(0.0, 1.0),
    reward_risk=st.floats(0.0, 6.0),
    price=prices(),
    account=accounts(),
    config=configs(),
)
def test_no_trade_below_gate_or_at_non_positive_ev(
    confidence: float,
    reward_risk: float,
    price: tuple[float, float],
    account: Account,
    config: SizingConfig,
) -> None:
    gated = confidence * config.confidence_gate * 0.999  # strictly below the gate
    d = size_position(gated, reward_risk, *price, account, config)
    assert (d.shares, d.tier, d.risk_dollars, d.notional, d.capped_by) == (0, None, 0.0, 0.0, ())
    # R:R at most break-even for this confidence: EV = (1 - c) x (fraction - 1) <= 0.
    no_edge = (
        (1.0 - confidence) / confidence * min(reward_risk, 1.0) if confidence > 1e-6 else 0.0
    )  # (tiny c would overflow to inf x 0 = nan)
    assert expected_value(confidence, no_edge) <= 1e-12
    d = size_position(confidence, no_edge, *price, account, config)
    assert (d.shares, d.tier, d.risk_dollars, d.notional, d.capped_by) == (0, None, 0.0, 0.0, ())


# Caps that never bind, so the tier ladder shows uncut. The notional cap is set past the 1.0
# (the whole account) a setting may hold: model_copy does not validate.
LOOSE_CAPS = SizingConfig(
    max_open_risk_pct=1.0, max_open_positions=10**6, margin_cushion_min=0.0
).model_copy(update={"max_position_notional_pct": 1e6})


@PROPS
@given(
    c1=st.floats(0.0, 1.0),
    c2=st.floats(0.0, 1.0),
    reward_risk=st.floats(0.0, 6.0),
    price=prices(),
    equity=st.floats(1e3, 1e7),
    config=configs(),
    caps_loose=st.booleans(),
    account=accounts(),
)
def test_size_never_shrinks_as_the_tier_improves(
    c1: float,
    c2: float,
    reward_risk: float,
    price: tuple[float, float],
    equity: float,
    config: SizingConfig,
    caps_loose: bool,
    account: Account,
) -> None:
    """Higher confidence at a fixed R:R is a better (or equal) tier and never fewer shares."""
    low, high = sorted((c1, c2))
    if caps_loose:
        account = Account(
            equity=equity, buying_power=1e15, open_risk=0.0, open_positions=0, excess_liquidity=1e15
        )
        config = config.model_copy(
            update=LOOSE_CAPS.model_dump(
                include={
                    "max_position_notional_pct",
                    "max_open_risk_pct",
                    "max_open_positions",
                    "margin_cushion_min",
                }
            )
        )
    a = size_position(low, reward_risk, *price, account, config)
    b = size_position(high, reward_risk, *price, account, config)
    rank = {t: i for i, t in enumerate(TIERS)}
    if a.tier is not None:
        assert b.tier is not None and rank[b.tier] <= rank[a.tier]
    assert b.shares >= a.shares
    if caps_loose:
        assert a.capped_by == () and b.capped_by == ()


@settings(max_examples=100, deadline=None)
@given(price=prices(), equity=st.floats(1e3, 1e7))
def test_shares_follow_the_tier_ladder_when_caps_are_loose(
    price: tuple[float, float], equity: float
) -> None:
    account = Account(
        equity=equity, buying_power=1e15, open_risk=0.0, open_positions=0, excess_liquidity=1e15
    )
    # At confidence 0.5, R:R 4 / 3 / 2.2 / 1.6 / 1.2 walk down the default tiers.
    sizes = [size_position(0.5, rr, *price, account, LOOSE_CAPS) for rr in (4, 3, 2.2, 1.6, 1.2)]
    assert [d.tier for d in sizes] == list(TIERS)
    shares = [d.shares for d in sizes]
    assert shares == sorted(shares, reverse=True)
    risk = abs(price[0] - price[1])
    for d in sizes:  # uncapped: exactly floor(equity x tier% / R), up to the documented EPS
        assert d.tier is not None
        budget = equity * LOOSE_CAPS.risk_fraction(d.tier)
        assert budget - risk - 1e-6 < d.risk_dollars <= budget * (1 + TOL)

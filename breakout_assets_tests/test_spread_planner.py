"""The spread planner and the spread replay: golden cases by hand (strikes around T50/T100 for
longs and shorts, missing strikes, illiquid legs filtered, debit >= width refused, the EV's
sign, sizing under the caps), hypothesis properties on model chains (the max loss never above
the risk budget, max gain + max loss = width x 100 x contracts), and the backtest replay (the
close trigger, an in-the-money expiry capped at the width, a worthless one at -1R)."""

from __future__ import annotations

import math
import warnings
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from breakout_assets.core.config import OptionsConfig, OutcomeConfig
from breakout_assets.core.model_chain import model_chain, years_to_expiry
from breakout_assets.core.option_pricing import realised_vol
from breakout_assets.core.options import (
    CONTRACT_MULTIPLIER,
    OptionChain,
    OptionQuote,
    SpreadPlan,
    SpreadSkip,
)
from breakout_assets.core.spread_backtest import (
    SpreadReplay,
    backtest_spread,
    replay_spread,
    spread_value,
)
from breakout_assets.core.spreads import expiry_window, plan_spread
from breakout_assets.partitions import nyse_sessions
from breakout_assets.settings import SettingsError, load_settings

with warnings.catch_warnings():  # py_vollib 1.0.12 is a shim over vollib and says so
    warnings.simplefilter("ignore", DeprecationWarning)
    from py_vollib.black_scholes import black_scholes as vollib_price

CONFIG = OptionsConfig()  # min OI 100, bid-ask <= 25% of mid, slippage 0.02, 1% risk
AS_OF = date(2026, 3, 2)
MIN_EXPIRY = date(2026, 4, 1)
EARLY, FIRST, LATER = date(2026, 3, 20), date(2026, 4, 17), date(2026, 5, 15)
SESSIONS = nyse_sessions(date(2025, 6, 1), date(2026, 12, 31))

# A long signal from entry 100 with a 6-dollar move: targets 103 / 104.5 / 106; strikes may
# miss their target by 0.5 x (106 - 103) = 1.5.
LONG = dict(ticker="ACME", side="long", target_50=103.0, target_75=104.5, target_100=106.0)
SHORT = dict(ticker="ACME", side="short", target_50=97.0, target_75=95.5, target_100=94.0)


def q(strike, right, mid, expiry=FIRST, oi=1000, half=0.05):
    return OptionQuote("ACME", expiry, strike, right, mid - half, mid + half, open_interest=oi)


def chain(*quotes, price=100.0):
    return OptionChain("ACME", AS_OF, price, tuple(quotes))


CALLS = (
    q(100.0, "C", 4.20),
    q(102.5, "C", 3.00),
    q(105.0, "C", 2.00),
    q(107.5, "C", 1.30),
    q(110.0, "C", 0.80),
)
PUTS = (
    q(90.0, "P", 0.70),
    q(92.5, "P", 1.20),
    q(95.0, "P", 1.90),
    q(97.5, "P", 2.90),
    q(100.0, "P", 4.10),
)


def plan(signal=LONG, quotes=CALLS + PUTS, confidence=0.6, equity=100_000.0, **kw):
    config = kw.pop("config", CONFIG)
    return plan_spread(
        **signal,
        confidence=confidence,
        chain=chain(*quotes),
        min_expiry=kw.pop("min_expiry", MIN_EXPIRY),
        equity=equity,
        config=config,
        **kw,
    )


# --- golden cases ------------------------------------------------------------------------------
def test_a_long_buys_the_call_nearest_t50_and_sells_the_one_nearest_t100_above_it():
    # an earlier expiry (before min_expiry) and a later one are listed too: the first on or
    # after min_expiry is taken
    early = tuple(q(k.strike, "C", k.mid, expiry=EARLY) for k in CALLS)
    later = tuple(q(k.strike, "C", k.mid + 1, expiry=LATER) for k in CALLS)
    got = plan(quotes=early + CALLS + later + PUTS)
    debit = 3.00 - 2.00 + 0.02
    assert got == SpreadPlan(
        ticker="ACME",
        side="long",
        right="C",
        expiry=FIRST,
        long_strike=102.5,
        short_strike=105.0,
        net_debit=pytest.approx(debit),
        contracts=9,  # floor(1,000 / 102)
        ev=pytest.approx(0.6 * (2.5 - debit) - 0.4 * debit),  # 0.48
        close_trigger=106.0,  # longs close at the 100% target
    )
    assert got.max_loss == pytest.approx(918.0) and got.max_gain == pytest.approx(1332.0)


def test_a_short_buys_the_put_nearest_t50_and_sells_the_one_nearest_t100_below_it():
    got = plan(SHORT)
    assert isinstance(got, SpreadPlan)
    assert (got.right, got.long_strike, got.short_strike) == ("P", 97.5, 95.0)
    assert got.net_debit == pytest.approx(2.90 - 1.90 + 0.02)
    assert got.close_trigger == 95.5  # shorts close at the 75% target
    assert got.contracts == 9


def test_a_tie_between_two_strikes_goes_to_the_one_nearer_the_money():
    long_tie = dict(LONG, target_50=103.75, target_75=105.0, target_100=106.25)
    got = plan(long_tie)
    assert isinstance(got, SpreadPlan) and got.long_strike == 102.5
    short_tie = dict(SHORT, target_50=96.25, target_75=95.0, target_100=93.75)
    got = plan(short_tie)
    assert isinstance(got, SpreadPlan) and got.long_strike == 97.5
    assert got.short_strike == 95.0  # 92.5 and 95 tie around 93.75: the one nearer the money


def test_the_far_strike_is_beyond_the_near_one_even_when_t100_is_nearer_the_near_one():
    # strikes every $5: 105 is nearest both targets; the short leg must sit above it
    fives = (q(100.0, "C", 4.2), q(105.0, "C", 2.0), q(110.0, "C", 0.8))
    signal = dict(LONG, target_50=104.0, target_75=106.0, target_100=108.0)
    got = plan(signal, quotes=fives, config=OptionsConfig(max_strike_miss=1.0))
    assert isinstance(got, SpreadPlan) and (got.long_strike, got.short_strike) == (105.0, 110.0)


def test_missing_strikes_are_skipped_with_the_reason():
    no_far = tuple(c for c in CALLS if c.strike <= 102.5)
    got = plan(quotes=no_far)
    assert isinstance(got, SpreadSkip)
    assert got.reason == f"no call strike listed within $1.50 of the 100% target $106.00 on {FIRST}"
    no_near = (q(95.0, "C", 6.0), q(106.0, "C", 1.5))
    got = plan(quotes=no_near)
    assert isinstance(got, SpreadSkip) and "no call strike listed" in got.reason
    assert "50% target $103.00" in got.reason
    got = plan(SHORT, quotes=CALLS)  # no puts at all
    assert isinstance(got, SpreadSkip) and "no put strike" in got.reason
    got = plan(min_expiry=date(2026, 6, 1))
    assert got == SpreadSkip(
        "ACME", "long", "no expiry on or after 2026-06-01 (20 sessions out) in the chain"
    )


def test_an_illiquid_leg_is_filtered_and_the_next_fitting_strike_taken():
    thin_105 = tuple(q(c.strike, "C", c.mid, oi=10) if c.strike == 105 else c for c in CALLS)
    got = plan(quotes=thin_105)
    assert isinstance(got, SpreadPlan) and got.short_strike == 107.5  # 1.5 from T100: fits
    assert got.net_debit == pytest.approx(3.00 - 1.30 + 0.02)


def test_illiquid_strikes_with_nothing_else_fitting_skip_with_that_reason():
    wide = tuple(
        OptionQuote("ACME", FIRST, c.strike, "C", 2.0, 4.0, open_interest=5000)  # 67% of mid
        if c.strike == 102.5
        else c
        for c in CALLS
    )
    got = plan(quotes=wide)
    assert isinstance(got, SpreadSkip)
    assert got.reason == (
        f"the call strikes within $1.50 of the 50% target $103.00 on {FIRST} are illiquid "
        "(open interest under 100 or bid-ask over 25% of mid)"
    )
    thin_far = tuple(q(c.strike, "C", c.mid, oi=99) if c.strike > 103 else c for c in CALLS)
    got = plan(quotes=thin_far)
    assert isinstance(got, SpreadSkip) and "100% target" in got.reason
    assert "illiquid" in got.reason
    no_bid = tuple(
        OptionQuote("ACME", FIRST, c.strike, "C", 0.0, 0.05, open_interest=5000)
        if c.strike > 103
        else c
        for c in CALLS
    )
    assert "illiquid" in plan(quotes=no_bid).reason


def test_a_debit_at_or_above_the_width_is_refused():
    rich = (q(102.5, "C", 3.00), q(105.0, "C", 0.50))  # 2.50 + 0.02 slippage >= 2.5 wide
    got = plan(quotes=rich)
    assert isinstance(got, SpreadSkip)
    assert got.reason == f"calls 102.5/105 {FIRST}: net debit 2.52 is not below the width 2.5"
    inverted = (q(102.5, "C", 1.00), q(105.0, "C", 2.00))
    got = plan(quotes=inverted)
    assert isinstance(got, SpreadSkip) and "<= 0" in got.reason


def test_the_ev_sign_decides():
    # debit 1.02 on a 2.5 width: break-even at confidence 1.02 / 2.5 = 0.408
    below = plan(confidence=0.40)
    assert isinstance(below, SpreadSkip)
    assert below.reason.startswith(f"calls 102.5/105 {FIRST}: EV -0.020/share <= 0 at confidence")
    above = plan(confidence=0.41)
    assert isinstance(above, SpreadPlan) and above.ev == pytest.approx(0.41 * 1.48 - 0.59 * 1.02)
    # exactly zero (debit 1.25 = half the width at confidence 0.5) is no trade
    zero = plan(
        quotes=(q(102.5, "C", 3.00), q(105.0, "C", 1.75)),
        confidence=0.5,
        config=OptionsConfig(slippage=0.0),
    )
    assert isinstance(zero, SpreadSkip) and "EV 0.000" in zero.reason


def test_sizing_and_the_caps():
    assert plan(config=OptionsConfig(risk_pct=2.0)).contracts == 19  # floor(2,000 / 102)
    assert plan(risk_budget_dollars=500.0).contracts == 4  # the book's caps leave $500
    assert plan(risk_budget_dollars=5_000.0).contracts == 9  # 1% of equity is smaller
    assert plan(config=OptionsConfig(max_contracts=3)).contracts == 3
    assert plan(equity=102_000.0).contracts == 10  # exactly ten contracts' debit
    got = plan(risk_budget_dollars=50.0)
    assert got == SpreadSkip(
        "ACME",
        "long",
        f"calls 102.5/105 {FIRST}: one contract risks $102.00, more than the $50.00 budget",
    )
    assert isinstance(plan(risk_budget_dollars=-10.0), SpreadSkip)


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="confidence"):
        plan(confidence=1.2)
    with pytest.raises(ValueError, match="equity"):
        plan(equity=0.0)
    with pytest.raises(ValueError, match="targets"):
        plan(dict(LONG, target_100=102.0))
    with pytest.raises(ValueError, match="targets"):
        plan(dict(SHORT, side="long"))


def test_the_expiry_window_counts_sessions():
    config = OptionsConfig(min_dte=20, max_dte=60)
    start = date(2026, 3, 2)
    at = SESSIONS.index(start)
    assert expiry_window(start, SESSIONS, config) == (SESSIONS[at + 20], SESSIONS[at + 60])
    # Good Friday 2026 (April 3) is no session: 20 sessions from March 2 end on March 30
    assert expiry_window(start, SESSIONS, config)[0] == date(2026, 3, 30)
    with pytest.raises(ValueError, match="not one of"):
        expiry_window(date(2026, 3, 1), SESSIONS, config)
    with pytest.raises(ValueError, match="end on"):
        expiry_window(SESSIONS[-10], SESSIONS, config)


# --- properties on model chains -------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(
    price=st.floats(5, 1500),
    move=st.floats(0.03, 0.6),
    vol=st.floats(0.1, 1.2),
    confidence=st.floats(0.3, 0.95),
    equity=st.floats(2_000, 5_000_000),
    budget=st.none() | st.floats(0, 50_000),
    risk_pct=st.floats(0.1, 5),
    long=st.booleans(),
)
def test_max_loss_within_the_budget_and_gain_plus_loss_is_the_width(
    price, move, vol, confidence, equity, budget, risk_pct, long
):
    config = OptionsConfig(risk_pct=risk_pct)
    sign = 1 if long else -1
    mh = price * move
    targets = [price + sign * f * mh for f in (0.5, 0.75, 1.0)]
    min_expiry, max_expiry = expiry_window(AS_OF, SESSIONS, config)
    model = model_chain(
        "ACME",
        AS_OF,
        price,
        vol,
        sessions=SESSIONS,
        min_expiry=min_expiry,
        max_expiry=max_expiry,
        config=config,
    )
    got = plan_spread(
        ticker="ACME",
        side="long" if long else "short",
        target_50=targets[0],
        target_75=targets[1],
        target_100=targets[2],
        confidence=confidence,
        chain=model,
        min_expiry=min_expiry,
        equity=equity,
        config=config,
        risk_budget_dollars=budget,
    )
    if isinstance(got, SpreadSkip):
        assert got.reason
        return
    allowed = equity * risk_pct / 100 if budget is None else min(equity * risk_pct / 100, budget)
    assert 1 <= got.contracts <= config.max_contracts
    assert got.max_loss <= allowed * (1 + 1e-9)
    assert got.max_gain + got.max_loss == pytest.approx(
        got.width * CONTRACT_MULTIPLIER * got.contracts
    )
    assert 0 < got.net_debit < got.width and got.ev > 0
    assert got.expiry >= min_expiry
    assert (got.short_strike > got.long_strike) if long else (got.short_strike < got.long_strike)
    tolerance = config.max_strike_miss * abs(targets[2] - targets[0]) + 1e-9
    assert abs(got.long_strike - targets[0]) <= tolerance
    assert abs(got.short_strike - targets[2]) <= tolerance


# --- the backtest replay ----------------------------------------------------------------------
EXPIRY = date(2026, 4, 17)
DAYS = [date(2026, 4, 13), date(2026, 4, 14), date(2026, 4, 15), date(2026, 4, 16), EXPIRY]
CALL_SPREAD = SpreadPlan("ACME", "long", "C", EXPIRY, 100.0, 105.0, 2.0, 3, 0.5, 106.0)
PUT_SPREAD = SpreadPlan("ACME", "short", "P", EXPIRY, 100.0, 95.0, 2.0, 3, 0.5, 94.0)
VOL, RATE = 0.4, 0.04


def by_hand(right, spot, day, long_k, short_k):
    t = years_to_expiry(day, EXPIRY)
    flag = right.lower()
    return vollib_price(flag, spot, long_k, t, RATE, VOL) - vollib_price(
        flag, spot, short_k, t, RATE, VOL
    )


def test_the_close_trigger_exits_at_the_black_scholes_value_on_that_close():
    got = replay_spread(
        CALL_SPREAD, sessions=DAYS, closes=[101, 104, 106.5, 110, 111], entry_vol=VOL, rate=RATE
    )
    value = by_hand("C", 106.5, DAYS[2], 100.0, 105.0)
    assert got == SpreadReplay(DAYS[0], DAYS[2], "trigger", 106.5, 2.0, pytest.approx(value))
    assert got.r == pytest.approx((value - 2.0) / 2.0)
    # the exit's slippage comes off the value
    slipped = replay_spread(
        CALL_SPREAD,
        sessions=DAYS,
        closes=[101, 104, 106.5, 110, 111],
        entry_vol=VOL,
        rate=RATE,
        exit_slippage=0.05,
    )
    assert slipped.exit_value == pytest.approx(value - 0.05)


def test_a_put_spread_triggers_at_or_below_its_trigger():
    got = replay_spread(
        PUT_SPREAD, sessions=DAYS, closes=[99, 96, 94.0, 90, 90], entry_vol=VOL, rate=RATE
    )
    assert (got.exit_session, got.exit_reason) == (DAYS[2], "trigger")
    assert got.exit_value == pytest.approx(by_hand("P", 94.0, DAYS[2], 100.0, 95.0))


def test_an_in_the_money_expiry_is_capped_at_the_width():
    never = SpreadPlan("ACME", "long", "C", EXPIRY, 100.0, 105.0, 2.0, 3, 0.5, 150.0)
    got = replay_spread(
        never, sessions=DAYS, closes=[101, 103, 104, 105, 112], entry_vol=VOL, rate=RATE
    )
    assert (got.exit_session, got.exit_reason, got.exit_value) == (EXPIRY, "expiry", 5.0)
    assert got.r == pytest.approx(1.5)
    # between the strikes: the intrinsic value
    got = replay_spread(
        never, sessions=DAYS, closes=[101, 103, 104, 105, 103.0], entry_vol=VOL, rate=RATE
    )
    assert got.exit_value == pytest.approx(3.0) and got.r == pytest.approx(0.5)


def test_an_out_of_the_money_expiry_loses_the_debit():
    got = replay_spread(
        CALL_SPREAD, sessions=DAYS, closes=[101, 99, 98, 97, 99.9], entry_vol=VOL, rate=RATE
    )
    assert (got.exit_reason, got.exit_value, got.r) == ("expiry", 0.0, -1.0)
    got = replay_spread(
        PUT_SPREAD, sessions=DAYS, closes=[101, 99, 98, 97, 100.5], entry_vol=VOL, rate=RATE
    )
    assert got.r == -1.0


def test_bars_ending_early_mark_the_spread_open_and_a_missing_expiry_bar_settles_on_the_last():
    got = replay_spread(
        CALL_SPREAD, sessions=DAYS[:3], closes=[101, 102, 103], entry_vol=VOL, rate=RATE
    )
    assert (got.exit_session, got.exit_reason) == (DAYS[2], "open")
    assert got.exit_value == pytest.approx(by_hand("C", 103.0, DAYS[2], 100.0, 105.0))
    after = [*DAYS[:4], date(2026, 4, 20)]  # the expiry session is missing from the bars
    got = replay_spread(
        CALL_SPREAD, sessions=after, closes=[101, 102, 103, 104, 120], entry_vol=VOL, rate=RATE
    )
    assert (got.exit_session, got.exit_reason, got.exit_value) == (DAYS[3], "expiry", 4.0)


def test_nothing_to_replay():
    assert replay_spread(CALL_SPREAD, sessions=[], closes=[], entry_vol=VOL, rate=RATE) is None
    late = [date(2026, 4, 20)]
    assert (
        replay_spread(CALL_SPREAD, sessions=late, closes=[100.0], entry_vol=VOL, rate=RATE) is None
    )
    with pytest.raises(ValueError, match="closes"):
        replay_spread(CALL_SPREAD, sessions=DAYS, closes=[1.0], entry_vol=VOL, rate=RATE)


def test_the_spread_value_stays_between_zero_and_the_width():
    for spot in (50.0, 100.0, 102.5, 105.0, 200.0):
        for years in (0.0, 0.01, 0.5, 3.0):
            value = spread_value(CALL_SPREAD, spot, years, VOL, RATE)
            assert 0.0 <= value <= 5.0 and math.isfinite(value)


# --- one signal through the whole overlay ---------------------------------------------------
def _signal_path(days_before=30):
    """Closes alternating +-1% up to the signal session's close of 100."""
    steps = np.array([0.01 if i % 2 else -0.01 for i in range(days_before - 1)])
    logs = np.concatenate([np.cumsum(steps[::-1])[::-1], [0.0]])
    return list(100 * np.exp(logs))


def test_backtest_spread_plans_on_the_model_chain_and_replays_at_the_entry_iv():
    session = date(2026, 3, 2)
    at = SESSIONS.index(session)
    closes = _signal_path()
    after = SESSIONS[at + 1 : at + 6]
    got_plan, got_replay = backtest_spread(
        **LONG,
        session=session,
        confidence=0.6,
        closes_to_session=closes,
        calendar=SESSIONS,
        sessions_after=after,
        closes_after=[101.0, 102.0, 104.0, 106.2, 107.0],
        config=CONFIG,
    )
    vol = realised_vol(closes, CONFIG.vol_window)
    min_expiry, max_expiry = expiry_window(session, SESSIONS, CONFIG)
    expected = plan_spread(
        **LONG,
        confidence=0.6,
        chain=model_chain(
            "ACME",
            session,
            closes[-1],
            vol,
            sessions=SESSIONS,
            min_expiry=min_expiry,
            max_expiry=max_expiry,
            config=CONFIG,
        ),
        min_expiry=min_expiry,
        equity=100_000.0,
        config=CONFIG,
    )
    assert got_plan == expected and isinstance(got_plan, SpreadPlan)
    assert got_replay is not None
    assert (got_replay.exit_session, got_replay.exit_reason) == (after[3], "trigger")
    value = spread_value(
        got_plan,
        106.2,
        years_to_expiry(after[3], got_plan.expiry),
        vol * CONFIG.iv_multiplier,
        CONFIG.rate,
    )
    assert got_replay.exit_value == pytest.approx(value - CONFIG.slippage)


def test_backtest_spread_skips_without_enough_closes_for_the_volatility():
    got_plan, got_replay = backtest_spread(
        **LONG,
        session=date(2026, 3, 2),
        confidence=0.6,
        closes_to_session=_signal_path(10),
        calendar=SESSIONS,
        sessions_after=[],
        closes_after=[],
        config=CONFIG,
    )
    assert got_plan == SpreadSkip("ACME", "long", "fewer than 21 closes for the realised vol")
    assert got_replay is None


# --- the settings ---------------------------------------------------------------------------
def test_every_options_setting_is_documented_and_the_expiry_covers_the_holding_horizon():
    assert all(f.description for f in OptionsConfig.model_fields.values())
    assert OptionsConfig().min_dte == OutcomeConfig().max_holding_sessions
    assert (OptionsConfig().mode, OptionsConfig().chain_source) == ("paper", "model")
    with pytest.raises(ValidationError, match="max_dte must be >= min_dte"):
        OptionsConfig(min_dte=30, max_dte=20)
    with pytest.raises(ValidationError):
        OptionsConfig(risk_pct=0)
    with pytest.raises(ValidationError):
        OptionsConfig(unknown=1)


def test_options_settings_come_from_nested_breakout_variables(monkeypatch):
    monkeypatch.setenv("BREAKOUT_OPTIONS__MODE", "off")
    monkeypatch.setenv("BREAKOUT_OPTIONS__MIN_DTE", "25")
    monkeypatch.setenv("BREAKOUT_OPTIONS__MAX_SPREAD_FRACTION", "0.1")
    options = load_settings().options
    assert (options.mode, options.min_dte, options.max_spread_fraction) == ("off", 25, 0.1)
    monkeypatch.setenv("BREAKOUT_OPTIONS__RISK_PCT", "0")
    with pytest.raises(SettingsError, match="BREAKOUT_OPTIONS__RISK_PCT"):
        load_settings()
    monkeypatch.setenv("BREAKOUT_OPTIONS__RISK_PCT", "1")
    monkeypatch.setenv("BREAKOUT_OPTIONS__MODE", "yolo")
    with pytest.raises(SettingsError, match="BREAKOUT_OPTIONS__MODE"):
        load_settings()

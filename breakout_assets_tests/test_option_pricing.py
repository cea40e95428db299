"""Black-Scholes as the options overlay prices it, checked against a kept library (py_vollib)
rather than trusted as a hand-written formula: prices and deltas over a grid within 1e-6,
put-call parity, the expiry/zero-vol limits, and the realised volatility the model chain reads."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakout_assets.core.model_chain import bs_delta
from breakout_assets.core.option_pricing import (
    TRADING_DAYS_PER_YEAR,
    black_scholes,
    intrinsic,
    realised_vol,
)

with warnings.catch_warnings():  # py_vollib 1.0.12 is a shim over vollib and says so
    warnings.simplefilter("ignore", DeprecationWarning)
    from py_vollib.black_scholes import black_scholes as vollib_price
    from py_vollib.black_scholes.greeks.analytical import delta as vollib_delta

SPOTS = (5.0, 40.0, 100.0, 350.0)
MONEYNESS = (0.5, 0.8, 0.95, 1.0, 1.05, 1.25, 1.5)
YEARS = (1 / 365, 0.05, 0.25, 1.0)
VOLS = (0.05, 0.2, 0.45, 1.0)
RATES = (0.0, 0.04)
GRID = list(itertools.product(SPOTS, MONEYNESS, YEARS, VOLS, RATES))


@pytest.mark.parametrize("right", ["C", "P"])
def test_prices_match_py_vollib_over_a_grid(right):
    flag = right.lower()
    worst = 0.0
    for spot, m, t, vol, rate in GRID:
        strike = spot * m
        ours = float(black_scholes(right, spot, strike, t, vol, rate)[()])
        reference = vollib_price(flag, spot, strike, t, rate, vol)
        worst = max(worst, abs(ours - reference))
    assert worst < 1e-6


def test_the_vectorised_call_matches_the_scalar_reference_element_by_element():
    spot, t, vol, rate = 100.0, 0.3, 0.35, 0.04
    strikes = np.arange(50.0, 151.0, 2.5)
    ours = black_scholes("C", spot, strikes, t, vol, rate)
    reference = [vollib_price("c", spot, k, t, rate, vol) for k in strikes]
    np.testing.assert_allclose(ours, reference, atol=1e-6, rtol=0)


@pytest.mark.parametrize("right", ["C", "P"])
def test_deltas_match_py_vollib(right):
    for spot, m, t, vol, rate in GRID:
        strike = spot * m
        ours = float(bs_delta(right, spot, np.array(strike), np.array(t), vol, rate))
        assert ours == pytest.approx(
            vollib_delta(right.lower(), spot, strike, t, rate, vol), abs=1e-6
        )


@settings(max_examples=300, deadline=None)
@given(
    spot=st.floats(1, 2000),
    moneyness=st.floats(0.3, 3),
    years=st.floats(1e-3, 3),
    vol=st.floats(0.01, 2),
    rate=st.floats(0, 0.1),
)
def test_put_call_parity(spot, moneyness, years, vol, rate):
    strike = spot * moneyness
    call = float(black_scholes("C", spot, strike, years, vol, rate)[()])
    put = float(black_scholes("P", spot, strike, years, vol, rate)[()])
    assert call - put == pytest.approx(spot - strike * math.exp(-rate * years), abs=1e-7 * spot)


def test_at_expiry_or_without_volatility_an_option_is_worth_its_intrinsic_value():
    strikes = np.array([90.0, 100.0, 110.0])
    np.testing.assert_allclose(black_scholes("C", 100.0, strikes, 0.0, 0.3), [10, 0, 0])
    np.testing.assert_allclose(black_scholes("P", 100.0, strikes, 0.0, 0.3), [0, 0, 10])
    np.testing.assert_allclose(intrinsic("C", 100.0, strikes), [10, 0, 0])
    np.testing.assert_allclose(intrinsic("P", 100.0, strikes), [0, 0, 10])
    # no volatility: the discounted intrinsic value of the forward
    forward = 100 * math.exp(0.05)
    np.testing.assert_allclose(
        black_scholes("C", 100.0, strikes, 1.0, 0.0, 0.05),
        math.exp(-0.05) * np.maximum(forward - strikes, 0),
    )


def test_realised_vol_annualises_the_daily_log_returns():
    # returns alternating +a, -a: their sample standard deviation is known in closed form
    a, window = 0.01, 20
    log_path = np.cumsum([0.0] + [a if i % 2 == 0 else -a for i in range(window)])
    closes = 50 * np.exp(log_path)
    returns = np.diff(log_path)
    expected = np.std(returns, ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR)
    assert realised_vol(closes, window) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(realised_vol(closes[-window:], window))  # window returns need window + 1
    flat = np.full(30, 10.0)
    assert realised_vol(flat, window) == 0.0

"""The model option chain: strikes on the listed increments, monthly and weekly expiries moved
off NYSE holidays (the real XNYS calendar), quotes priced like py_vollib within 1e-6 around a
modelled bid-ask, and the `model` source behind the OptionChainSource protocol."""

from __future__ import annotations

import math
import warnings
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakout_assets.core.config import OptionsConfig
from breakout_assets.core.model_chain import (
    expiry_dates,
    model_chain,
    strike_grid,
    strike_increment,
    third_friday,
    years_to_expiry,
)
from breakout_assets.partitions import nyse_sessions
from breakout_assets.resources.option_chain.base import OptionChainError, OptionChainSource
from breakout_assets.resources.option_chain.model import ModelOptionChain

with warnings.catch_warnings():  # py_vollib 1.0.12 is a shim over vollib and says so
    warnings.simplefilter("ignore", DeprecationWarning)
    from py_vollib.black_scholes import black_scholes as vollib_price

CONFIG = OptionsConfig()
SESSIONS_2025_2026 = nyse_sessions(date(2025, 1, 1), date(2026, 12, 31))


# --- strikes ---------------------------------------------------------------------------------
def test_strike_increments_by_level():
    assert [strike_increment(x) for x in (3, 24.99, 25, 99.5, 100, 249, 250, 999, 1000, 4000)] == [
        0.5,
        0.5,
        1,
        1,
        2.5,
        2.5,
        5,
        5,
        10,
        10,
    ]


def test_strike_grid_by_hand():
    # $30 +-20%: 24 to 36; $0.50 below $25, $1 from $25
    assert strike_grid(30, 0.2) == [24, 24.5, 25] + [float(k) for k in range(26, 37)]
    # $200 +-50%: 100 to 300; $2.50 to $250, $5 above
    grid = strike_grid(200, 0.5)
    assert grid[:3] == [100, 102.5, 105] and grid[-3:] == [290, 295, 300]
    assert grid[grid.index(245) : grid.index(245) + 4] == [245, 247.5, 250, 255]
    # ends between grid strikes: one listed strike at or beyond each end
    assert strike_grid(41, 0.1) == [float(k) for k in range(36, 47)]  # 36.9 .. 45.1


@settings(max_examples=300, deadline=None)
@given(price=st.floats(1, 3000), strike_range=st.floats(0.05, 0.9))
def test_the_grid_spans_the_range_on_the_listed_increments(price, strike_range):
    grid = strike_grid(price, strike_range)
    assert grid[0] <= max(price * (1 - strike_range), 0.5) + 1e-9
    assert grid[-1] >= price * (1 + strike_range) - 1e-9
    assert grid[0] >= 0.5
    for low, high in zip(grid, grid[1:], strict=False):
        assert high - low == pytest.approx(strike_increment(low + 1e-9))
        assert low / strike_increment(low + 1e-9) == pytest.approx(
            round(low / strike_increment(low + 1e-9))
        )


# --- expiries --------------------------------------------------------------------------------
def test_third_fridays():
    assert third_friday(2026, 6) == date(2026, 6, 19)
    assert third_friday(2025, 4) == date(2025, 4, 18)
    assert third_friday(2026, 1) == date(2026, 1, 16)
    assert third_friday(2025, 8) == date(2025, 8, 15)  # the 1st is a Friday


def test_weeklies_and_the_good_friday_expiry_moved_to_thursday():
    # 2025-04-18 is Good Friday (NYSE closed) and April's third Friday
    assert expiry_dates(SESSIONS_2025_2026, date(2025, 4, 1), date(2025, 4, 30)) == [
        date(2025, 4, 4),
        date(2025, 4, 11),
        date(2025, 4, 17),
        date(2025, 4, 25),
    ]


def test_monthlies_only_and_juneteenth_moves_june_2026_to_thursday():
    got = expiry_dates(SESSIONS_2025_2026, date(2026, 5, 1), date(2026, 7, 31), weeklies=False)
    assert got == [date(2026, 5, 15), date(2026, 6, 18), date(2026, 7, 17)]


def test_the_window_bounds_the_expiries_and_unknown_fridays_are_not_listed():
    # a moved expiry (Thursday 17th) inside the window, although its Friday is outside it
    assert expiry_dates(SESSIONS_2025_2026, date(2025, 4, 12), date(2025, 4, 17)) == [
        date(2025, 4, 17)
    ]
    assert expiry_dates(SESSIONS_2025_2026, date(2025, 4, 19), date(2025, 4, 24)) == []
    # the calendar given ends on 2025-04-09: Fridays after it may be holidays, none listed
    short = [d for d in SESSIONS_2025_2026 if d <= date(2025, 4, 9)]
    assert expiry_dates(short, date(2025, 4, 1), date(2025, 4, 30)) == [date(2025, 4, 4)]


# --- quotes ----------------------------------------------------------------------------------
def _chain(price=100.0, vol=0.3, as_of=date(2026, 5, 1), config=CONFIG):
    return model_chain(
        "ACME",
        as_of,
        price,
        vol,
        sessions=SESSIONS_2025_2026,
        min_expiry=date(2026, 6, 1),
        max_expiry=date(2026, 6, 30),
        config=config,
    )


def test_the_chain_lists_calls_and_puts_on_every_strike_and_expiry():
    chain = _chain()
    assert chain.underlying == "ACME" and chain.underlying_price == 100.0
    assert chain.expiries() == [
        date(2026, 6, 5),
        date(2026, 6, 12),
        date(2026, 6, 18),
        date(2026, 6, 26),
    ]
    grid = strike_grid(100, CONFIG.model_strike_range)
    assert len(chain.quotes) == 4 * 2 * len(grid)
    for expiry in chain.expiries():
        assert chain.strikes(expiry, "C") == grid == chain.strikes(expiry, "P")
    assert {q.open_interest for q in chain.quotes} == {CONFIG.model_open_interest}
    (iv,) = {q.implied_vol for q in chain.quotes}
    assert iv == pytest.approx(0.3 * CONFIG.iv_multiplier)


def test_mids_match_py_vollib_and_the_bid_ask_is_the_modelled_half_spread():
    chain = _chain()
    iv = 0.3 * CONFIG.iv_multiplier
    checked = 0
    for q in chain.quotes:
        t = years_to_expiry(chain.as_of, q.expiry)
        reference = vollib_price(q.right.lower(), 100.0, q.strike, t, CONFIG.rate, iv)
        half = max(reference * CONFIG.model_half_spread, CONFIG.model_min_half_spread)
        assert q.ask == pytest.approx(reference + half, abs=1e-6)
        assert q.bid == pytest.approx(max(reference - half, 0.0), abs=1e-6)
        if q.bid > 0:
            assert q.mid == pytest.approx(reference, abs=1e-6)
            checked += 1
    assert checked > len(chain.quotes) / 2


def test_put_call_parity_on_the_chain_mids():
    chain = _chain()
    for expiry in chain.expiries():
        t = years_to_expiry(chain.as_of, expiry)
        for k in chain.strikes(expiry, "C"):
            call, put = chain.quote(expiry, k, "C"), chain.quote(expiry, k, "P")
            assert call is not None and put is not None
            if call.bid > 0 and put.bid > 0:
                assert call.mid - put.mid == pytest.approx(
                    100.0 - k * math.exp(-CONFIG.rate * t), abs=1e-9
                )


def test_deltas_are_filled_and_ordered():
    chain = _chain()
    expiry = chain.expiries()[0]
    calls = [chain.quote(expiry, k, "C") for k in chain.strikes(expiry, "C")]
    deltas = np.array([q.delta for q in calls if q is not None])
    assert np.all(np.diff(deltas) <= 0) and 0 <= deltas.min() and deltas.max() <= 1
    atm_call, atm_put = chain.quote(expiry, 100.0, "C"), chain.quote(expiry, 100.0, "P")
    assert atm_call is not None and atm_put is not None
    assert atm_call.delta - atm_put.delta == pytest.approx(1.0)  # no dividends


def test_the_model_settings_shape_the_quotes():
    config = OptionsConfig(iv_multiplier=1.0, model_half_spread=0.1, model_open_interest=7)
    chain = _chain(config=config)
    q = chain.quote(chain.expiries()[0], 100.0, "C")
    assert q is not None and q.implied_vol == 0.3 and q.open_interest == 7
    assert (q.ask - q.bid) / q.mid == pytest.approx(0.2)


def test_a_bad_volatility_or_price_is_refused():
    with pytest.raises(ValueError, match="ACME"):
        _chain(vol=math.nan)
    with pytest.raises(ValueError, match="positive"):
        _chain(price=0.0)


# --- the `model` source --------------------------------------------------------------------
def test_the_model_source_is_an_option_chain_source_on_the_nyse_calendar():
    asked = []

    def vol(ticker: str, day: date) -> float:
        asked.append((ticker, day))
        return 0.25

    source = ModelOptionChain(CONFIG, vol)
    assert isinstance(source, OptionChainSource) and source.name == "model"
    chain = source.chain(
        "ACME", date(2026, 5, 1), 50.0, min_expiry=date(2026, 6, 1), max_expiry=date(2026, 6, 30)
    )
    assert asked == [("ACME", date(2026, 5, 1))]
    assert date(2026, 6, 18) in chain.expiries() and date(2026, 6, 19) not in chain.expiries()
    assert chain.quotes[0].implied_vol == pytest.approx(0.25 * CONFIG.iv_multiplier)
    source.close()


def test_the_model_source_names_itself_and_the_ticker_without_volatility():
    source = ModelOptionChain(CONFIG, lambda ticker, day: math.nan)
    with pytest.raises(OptionChainError, match=r"model option chain: ACME .*2026-05-01"):
        source.chain(
            "ACME",
            date(2026, 5, 1),
            50.0,
            min_expiry=date(2026, 6, 1),
            max_expiry=date(2026, 6, 30),
        )
    with pytest.raises(OptionChainError, match="model option chain: ACME: .*positive"):
        ModelOptionChain(CONFIG, lambda ticker, day: 0.2).chain(
            "ACME",
            date(2026, 5, 1),
            -1.0,
            min_expiry=date(2026, 6, 1),
            max_expiry=date(2026, 6, 30),
        )

"""Bar validation: every row ends up in exactly one place, and only sound rows are valid."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from breakout_assets.core.bars import conform_bars
from breakout_assets.core.quality import validate_bars

SESSION = date(2024, 3, 1)

price = st.one_of(
    st.floats(min_value=-5, max_value=500),
    st.just(float("nan")),
    st.just(float("inf")),
    st.just("abc"),
    st.none(),
)
row = st.fixed_dictionaries(
    {
        "ticker": st.sampled_from(["AAA", "BBB", "CCC", "brk", "", "BRK.B"]),
        "session": st.sampled_from(["2024-03-01", "2024-03-04"]),
        "open": price,
        "high": price,
        "low": price,
        "close": price,
        "volume": st.one_of(st.integers(-5, 10**9), st.floats(0, 10), st.just(float("nan"))),
    }
)
COLUMNS = ["ticker", "session", "open", "high", "low", "close", "volume"]


@settings(max_examples=200, deadline=None)
@given(st.lists(row, min_size=0, max_size=40))
def test_every_row_is_either_valid_or_quarantined_with_a_reason(rows):
    bars = conform_bars(pd.DataFrame(rows, columns=COLUMNS))
    checked = validate_bars(bars, {SESSION})
    assert len(checked.valid) + len(checked.quarantined) == len(bars)
    assert checked.quarantined["reason"].notna().all()
    v = checked.valid
    assert (v[["open", "high", "low", "close"]] > 0).all().all()
    assert (v["low"] <= v[["open", "close"]].min(axis=1)).all()
    assert (v["high"] >= v[["open", "close"]].max(axis=1)).all()
    assert (v["volume"] >= 0).all() and v["volume"].dtype == np.int64
    assert not v.duplicated(["ticker", "session"]).any()
    assert (v["session"] == pd.Timestamp(SESSION)).all()


def _bars(**overrides):
    base = {
        "ticker": ["AAA"],
        "session": ["2024-03-01"],
        "open": [10.0],
        "high": [11.0],
        "low": [9.0],
        "close": [10.5],
        "volume": [1000],
    }
    base.update(overrides)
    return conform_bars(pd.DataFrame(base))


def test_a_sound_bar_is_valid():
    checked = validate_bars(_bars(), {SESSION})
    assert len(checked.valid) == 1 and checked.quarantined.empty


def test_reasons_name_the_problem():
    cases = {
        "missing or non-numeric value": _bars(close=["n/a"]),
        "non-positive price": _bars(low=[0.0]),
        "negative volume": _bars(volume=[-1]),
        "fractional volume": _bars(volume=[1.5]),
        "low above high": _bars(low=[12.0]),
        "open or close above high": _bars(close=[11.5]),
        "open or close below low": _bars(open=[8.0]),
        "malformed ticker": _bars(ticker=[None]),
        "session not requested": _bars(session=["2024-03-04"]),
    }
    for reason, bars in cases.items():
        checked = validate_bars(bars, {SESSION})
        assert list(checked.quarantined["reason"]) == [reason], reason


def test_exact_duplicates_keep_one_copy_conflicts_keep_none():
    same = pd.concat([_bars(), _bars()], ignore_index=True)
    checked = validate_bars(same, {SESSION})
    assert len(checked.valid) == 1
    assert list(checked.quarantined["reason"]) == ["exact duplicate of another row"]
    conflict = pd.concat([_bars(), _bars(close=[10.4])], ignore_index=True)
    checked = validate_bars(conflict, {SESSION})
    assert checked.valid.empty and len(checked.quarantined) == 2

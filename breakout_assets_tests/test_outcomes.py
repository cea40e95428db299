"""Golden outcome cases built by hand, and properties of the replay (core.outcomes).

Every case: a signal on session 0 with entry 100, stop 96 (R = 4), booked target 104
(= target_50), target_75 106, target_100 108; bars are (open, high, low, close) on sessions 1, 2...
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakout_assets.core.outcomes import BarPaths, OutcomeConfig, Status, entry_fill, replay

LONG = dict(
    side=1,
    entry=100.0,
    stop=96.0,
    booked_target=104.0,
    target_50=104.0,
    target_75=106.0,
    target_100=108.0,
)


def mirror(signal: dict, bars: list[tuple], centre: float = 200.0) -> tuple[dict, list[tuple]]:
    """The short twin of a long case: every price reflected through centre/2."""
    short = {k: (centre - v if k != "side" else -v) for k, v in signal.items()}
    return short, [(centre - o, centre - lo, centre - hi, centre - c) for o, hi, lo, c in bars]


def run(signal: dict, bars: list[tuple], as_of: int | None = None, sessions=None, **config):
    sessions = sessions or list(range(1, len(bars) + 1))
    arrays = {k: np.array([v]) for k, v in signal.items()}
    arrays["risk"] = np.abs(arrays["entry"] - arrays["stop"])
    arrays["signal_ord"] = np.array([0])
    prices = np.array(bars, dtype=float).reshape(-1, 4)
    paths = BarPaths.from_rows(
        np.zeros(len(bars), np.int64),
        np.array(sessions, np.int64),
        1,
        open=prices[:, 0],
        high=prices[:, 1],
        low=prices[:, 2],
        close=prices[:, 3],
    )
    out = replay(
        arrays,
        paths,
        as_of if as_of is not None else sessions[-1] if sessions else 0,
        OutcomeConfig(**config),
    )
    row = {
        name: getattr(out, name)[0]
        for name in (
            "status",
            "entry_bar",
            "entry_price",
            "exit_bar",
            "exit_price",
            "r_multiple",
            "mfe_r",
            "mae_r",
            "bars_held",
        )
    }
    row["status"] = Status(row["status"]).label
    row["hits"] = tuple(bool(h) for h in out.hit_targets[0])
    return row


def both_sides(signal, bars, **kwargs):
    """Run a long case and its mirrored short; they must agree exactly."""
    long = run(signal, bars, **kwargs)
    short = run(*mirror(signal, bars), **kwargs)
    for key in (
        "status",
        "entry_bar",
        "exit_bar",
        "r_multiple",
        "mfe_r",
        "mae_r",
        "bars_held",
        "hits",
    ):
        assert long[key] == pytest.approx(short[key], nan_ok=True), key
    return long


def test_target_first():
    out = both_sides(LONG, [(100.5, 101, 99.5, 100.8), (101, 104.5, 100.5, 104)])
    assert out["status"] == "win"
    assert (out["entry_bar"], out["entry_price"]) == (0, 100.0)  # limit reached intraday
    assert (out["exit_bar"], out["exit_price"]) == (1, 104.0)
    assert out["r_multiple"] == 1.0
    assert out["mfe_r"] == 1.0 and out["mae_r"] == pytest.approx(0.5 / 4)
    assert out["bars_held"] == 2 and out["hits"] == (True, False, False)


def test_stop_first_after_an_open_fill():
    out = both_sides(LONG, [(99.8, 100.5, 99, 100.2), (99, 99.5, 95.5, 96.5)])
    assert out["status"] == "loss" and out["entry_price"] == 99.8  # filled at the better open
    assert out["exit_price"] == 96.0
    assert out["r_multiple"] == pytest.approx((96 - 99.8) / 4)
    assert out["mfe_r"] == pytest.approx(0.7 / 4)  # the fill bar's high counts: filled at open
    assert out["mae_r"] == pytest.approx(3.8 / 4)  # down to the exit, not the bar's low


def test_stop_wins_a_bar_touching_both():
    out = both_sides(LONG, [(100.5, 101, 99.5, 100.8), (100, 105, 95, 101)])
    assert out["status"] == "loss" and out["exit_price"] == 96.0 and out["r_multiple"] == -1.0
    assert out["hits"] == (False, False, False)
    assert out["mfe_r"] == pytest.approx(0.8 / 4)  # only the fill bar's close; not the 105


def test_gap_through_the_stop_fills_at_the_open():
    out = both_sides(LONG, [(100.5, 101, 99.5, 100.8), (94, 95, 93, 94.5)])
    assert out["status"] == "loss" and out["exit_price"] == 94.0
    assert out["r_multiple"] == -1.5 and out["mae_r"] == 1.5


def test_gap_through_the_target_fills_at_the_open():
    out = both_sides(LONG, [(100.5, 101, 99.5, 100.8), (107, 109, 106.5, 108)])
    assert out["status"] == "win" and out["exit_price"] == 107.0 and out["r_multiple"] == 1.75
    assert out["hits"] == (True, True, False)


def test_intraday_fill_bar_counts_only_the_stop():
    # The bar opened above the entry, came down to fill, and also printed 105: that high may
    # have come first, so it is not a win; the next bar decides.
    out = both_sides(LONG, [(101, 105, 99.9, 102), (102, 103, 101, 102.5)], as_of=2)
    assert out["status"] == "pending" and out["exit_bar"] == -1
    assert out["hits"] == (False, False, False)


def test_fill_bar_that_reaches_the_stop_loses():
    out = both_sides(LONG, [(101, 101.5, 95, 95.5)])
    assert out["status"] == "loss" and out["exit_price"] == 96.0 and out["r_multiple"] == -1.0


def test_expiry_at_the_holding_limit():
    bars = [
        (100.5, 101, 99.5, 100.8),
        (101, 102, 100, 101.5),
        (101.5, 103, 101, 102.6),
        (103, 110, 90, 104),
    ]
    out = both_sides(LONG, bars, max_holding_sessions=3)
    assert out["status"] == "expired" and out["exit_bar"] == 2 and out["exit_price"] == 102.6
    assert out["r_multiple"] == pytest.approx(2.6 / 4) and out["bars_held"] == 3
    assert out["mfe_r"] == pytest.approx(3 / 4)


def test_expiry_counts_sessions_when_the_ticker_stops_trading():
    out = both_sides(
        LONG, [(100.5, 101, 99.5, 100.8), (101, 102, 100, 101.5)], as_of=10, max_holding_sessions=5
    )
    assert out["status"] == "expired" and out["exit_bar"] == 1 and out["exit_price"] == 101.5
    # ... and a missing session still counts towards the limit
    out = both_sides(
        LONG,
        [(100.5, 101, 99.5, 100.8), (101, 102, 100, 101.5), (102, 103, 101, 102.5)],
        sessions=[1, 2, 9],
        max_holding_sessions=5,
    )
    assert out["status"] == "expired" and out["exit_bar"] == 1


def test_never_filled():
    out = both_sides(LONG, [(101, 103, 100.5, 102), (101, 101, 99, 100)])
    assert out["status"] == "unfilled" and out["entry_bar"] == -1
    assert np.isnan(out["r_multiple"]) and out["bars_held"] == 0
    # a longer-lived entry order catches the pullback on the second session
    out = both_sides(
        LONG, [(101, 103, 100.5, 102), (101, 101, 99, 100)], as_of=2, entry_valid_sessions=2
    )
    assert out["status"] == "pending" and out["entry_bar"] == 1


def test_unfilled_needs_the_whole_entry_window():
    assert both_sides(LONG, [], as_of=0)["status"] == "pending"
    assert both_sides(LONG, [], as_of=1)["status"] == "unfilled"  # no bar: the order expired


def test_pending_until_the_bars_decide():
    out = both_sides(LONG, [(100.5, 101, 99.5, 100.8), (101, 102, 100, 101.5)])
    assert out["status"] == "pending" and out["entry_price"] == 100.0
    assert out["bars_held"] == 2 and np.isnan(out["r_multiple"])


def test_entry_fill_rule():
    assert entry_fill(1, 100.0, 99.0, 101.0, 98.0) == 99.0
    assert entry_fill(1, 100.0, 101.0, 102.0, 100.0) == 100.0
    assert np.isnan(entry_fill(1, 100.0, 101.0, 102.0, 100.01))
    assert entry_fill(-1, 100.0, 101.0, 101.5, 99.0) == 101.0
    assert entry_fill(-1, 100.0, 99.0, 100.0, 98.0) == 100.0


def test_rejects_zero_risk():
    with pytest.raises(ValueError, match="positive risk"):
        run(dict(LONG, stop=100.0), [(100, 101, 99, 100)])


prices = st.integers(80, 120).map(float)


@st.composite
def bar_paths(draw):
    n = draw(st.integers(0, 12))
    bars = []
    for _ in range(n):
        a, b, c, d = sorted(draw(st.lists(prices, min_size=4, max_size=4)))
        o, cl = draw(st.permutations([b, c]))
        bars.append((o, d, a, cl))
    return bars


@settings(max_examples=300, deadline=None)
@given(bars=bar_paths(), entry_valid=st.integers(1, 3), holding=st.integers(1, 6))
def test_final_outcomes_never_change_with_more_bars(bars, entry_valid, holding):
    config = dict(entry_valid_sessions=entry_valid, max_holding_sessions=holding)
    full = both_sides(LONG, bars, as_of=len(bars), **config)
    for as_of in range(len(bars) + 1):
        partial = run(LONG, bars[:as_of], as_of=as_of, **config)
        if partial["status"] != "pending":
            assert partial == pytest.approx(full, nan_ok=True)
        else:
            assert partial["entry_bar"] in (-1, full["entry_bar"])


@settings(max_examples=300, deadline=None)
@given(bars=bar_paths())
def test_outcome_invariants(bars):
    out = run(LONG, bars, as_of=len(bars))
    status, r = out["status"], out["r_multiple"]
    if status in ("win", "loss", "expired"):
        assert 0 <= out["entry_bar"] <= out["exit_bar"] < len(bars)
        assert out["bars_held"] == out["exit_bar"] - out["entry_bar"] + 1
        assert -out["mae_r"] - 1e-12 <= r <= out["mfe_r"] + 1e-12
    if status == "win":
        assert r > 0 and out["exit_price"] >= LONG["booked_target"] and out["hits"][0]
    if status == "loss":
        assert r <= 0 and out["exit_price"] <= LONG["stop"]
    if status in ("unfilled", "pending") and out["entry_bar"] < 0:
        assert np.isnan(r) and out["bars_held"] == 0
    assert out["entry_bar"] < 0 or out["entry_price"] <= LONG["entry"]


def test_labels_have_no_time_cut_by_default() -> None:
    """A trade that needs 30 sessions to reach its target expires as a live position (20-session
    limit) but is a win as a label; with a label horizon set it expires as a label too."""
    bars = [(100.0, 100.5, 99.5, 100.0)] * 30 + [(100.0, 106.0, 99.8, 105.5)]
    signals = {
        "side": np.array([1]),
        "entry": np.array([100.0]),
        "stop": np.array([95.0]),
        "booked_target": np.array([105.0]),
        "target_50": np.array([105.0]),
        "target_75": np.array([107.5]),
        "target_100": np.array([110.0]),
        "risk": np.array([5.0]),
        "signal_ord": np.array([0]),
    }

    def paths_of(n: int) -> BarPaths:
        return BarPaths.from_rows(
            np.zeros(n, np.int64),
            np.arange(1, n + 1),
            1,
            **{
                c: np.array([b[i] for b in bars[:n]])
                for i, c in enumerate(("open", "high", "low", "close"))
            },
        )

    n = len(bars)
    paths = paths_of(n)
    live = replay(signals, paths, n, OutcomeConfig())
    label = replay(signals, paths, n, OutcomeConfig(), labels=True)
    capped = replay(signals, paths, n, OutcomeConfig(label_horizon_sessions=25), labels=True)
    assert Status(live.status[0]) is Status.EXPIRED and live.bars_held[0] == 20
    assert Status(label.status[0]) is Status.WIN and label.r_multiple[0] == pytest.approx(1.0)
    assert Status(capped.status[0]) is Status.EXPIRED and capped.bars_held[0] == 25
    still_open = replay(signals, paths_of(n - 1), n - 1, OutcomeConfig(), labels=True)
    assert Status(still_open.status[0]) is Status.PENDING

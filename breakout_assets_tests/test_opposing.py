"""Hand-built fades and properties of the opposing book's replay (core.opposing).

Most cases: a primary LONG signalled on session 0 with entry 100, stop 90, booked target 120
(= target_50). The fade is a short: reference limit L = 115 (75% of the way), run level 115,
stop 120 (T50), take-profit 90 (S); R of the limit leg = 5. Bars are (open, high, low, close)
on sessions 1, 2, ... `RUN` arms the 2-bar alert on bar 2 with alert level A = 104 (R = 16).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from breakout_assets.core.opposing import (
    LEGS,
    FadeBars,
    FadeOutcome,
    OpposingConfig,
    fade_levels,
    fade_quantity,
    fade_summary,
    replay_fade,
)

LONG = dict(primary_side=1, entry=100.0, stop=90.0, target=120.0, target_50=120.0)
RUN = [
    (101, 108, 100, 107),  # a new high below the run level: no alert can start here
    (107, 117, 106, 116),  # the run's new high, above 115: the alert's first bar
    (115, 116, 104, 105),
]  # closes below 106 without a new high: armed, A = 104
CENTRE = 300.0


def run(
    bars: list[tuple],
    geometry: dict = LONG,
    sessions: list[int] | None = None,
    as_of: int | None = None,
    **config,
) -> FadeOutcome:
    sessions = sessions or list(range(1, len(bars) + 1))
    prices = np.array(bars, dtype=float).reshape(-1, 4)
    fade_bars = FadeBars(sessions, prices[:, 0], prices[:, 1], prices[:, 2], prices[:, 3])
    return replay_fade(
        **geometry,
        bars=fade_bars,
        config=OpposingConfig(**config),
        signal_session=0,
        as_of_session=as_of,
    )


def mirror(geometry: dict, bars: list[tuple]) -> tuple[dict, list[tuple]]:
    """The primary-short twin: every price reflected through CENTRE / 2."""
    twin = {k: (-v if k == "primary_side" else CENTRE - v) for k, v in geometry.items()}
    return twin, [(CENTRE - o, CENTRE - lo, CENTRE - hi, CENTRE - c) for o, hi, lo, c in bars]


def check(
    out: FadeOutcome,
    status: str,
    leg: str | None = None,
    fill: tuple | None = None,
    exit: tuple | None = None,
    r: float | None = None,
    held: int | None = None,
) -> None:
    assert out.status == status
    assert out.leg == leg
    if fill is not None:
        assert (out.fill_index, out.fill_price) == pytest.approx(fill)
    else:
        assert out.fill_index == -1 and math.isnan(out.fill_price)
    if exit is not None:
        assert (out.exit_index, out.exit_price) == pytest.approx(exit)
    if r is not None:
        assert out.r_multiple == pytest.approx(r)
    if held is not None:
        assert out.bars_held == held


CASES = {
    # alert leg first, take-profit at S
    "alert_first_win": (
        RUN + [(105, 106, 103, 103.5), (103, 104, 89, 91)],
        dict(status="win", leg="alert", fill=(3, 104), exit=(4, 90), r=14 / 16, held=2),
    ),
    # limit leg first, stop at T50
    "limit_first_loss": (
        RUN + [(112, 115.5, 110, 111), (111, 121, 109, 110)],
        dict(status="loss", leg="limit", fill=(3, 115), exit=(4, 120), r=-1),
    ),
    "limit_first_win": (
        RUN + [(112, 115.5, 110, 111), (111, 112, 89, 91)],
        dict(status="win", leg="limit", fill=(3, 115), exit=(4, 90), r=5),
    ),
    # both levels trade inside one bar: one fill only, the worse price for the short (A)
    "both_same_bar": (
        RUN + [(110, 116, 103, 105), (105, 106, 100, 101), (101, 102, 89, 90)],
        dict(status="win", leg="alert", fill=(3, 104), exit=(5, 90), r=14 / 16),
    ),
    # the limit level trades the bar after the alert leg filled: cancelled, never doubled
    "limit_level_next_bar": (
        RUN + [(105, 106, 103, 104), (104, 116, 103, 110), (110, 111, 89, 90)],
        dict(status="win", leg="alert", fill=(3, 104), exit=(5, 90)),
    ),
    "alert_level_next_bar": (
        RUN + [(112, 115.5, 110, 111), (111, 112, 103, 104), (104, 105, 95, 96)],
        dict(status="pending", leg="limit", fill=(3, 115), held=3),
    ),
    # intrabar fill: only the stop counts on the fill bar (stop wins), not the take-profit
    "fill_bar_stop": (
        RUN + [(105, 121, 103, 110)],
        dict(status="loss", leg="alert", fill=(3, 104), exit=(3, 120), r=-1),
    ),
    "fill_bar_target_ignored": (
        RUN + [(105, 106, 88, 89), (89, 95, 88, 94)],
        dict(status="win", leg="alert", fill=(3, 104), exit=(4, 89), r=15 / 16),
    ),
    # gaps
    "gap_through_stop": (
        RUN + [(105, 106, 103, 104), (122, 123, 119, 121)],
        dict(status="loss", leg="alert", fill=(3, 104), exit=(4, 122), r=-18 / 16),
    ),
    "alert_gap_fill": (
        RUN + [(102, 103, 95, 96), (96, 97, 89, 90)],
        dict(status="win", leg="alert", fill=(3, 102), exit=(4, 90), r=12 / 16),
    ),
    "open_fill_then_target": (
        RUN + [(102, 103, 89, 90)],
        dict(status="win", leg="alert", fill=(3, 102), exit=(3, 90), r=12 / 16, held=1),
    ),
    "limit_marketable": (
        [
            (101, 108, 100, 107),
            (117, 125, 117, 124),
            (124, 124, 112, 116),
            (118, 119, 113, 114),
            (88, 90, 86, 89),
        ],
        dict(status="win", leg="limit", fill=(3, 118), exit=(4, 88), r=6),
    ),
    "limit_gap_over_stop": (
        [(101, 108, 100, 107), (118, 130, 118, 128), (127, 128, 115, 117), (123, 124, 121, 122)],
        dict(status="loss", leg="limit", fill=(3, 123), exit=(3, 123), r=0),
    ),
    "gap_through_target_unfilled": (RUN + [(89, 92, 85, 86)], dict(status="unfilled")),
    # no alert, no trade
    "primary_stopped_first": (
        [(101, 102, 89, 95), (95, 117, 95, 116), (115, 116, 104, 105), (105, 106, 103, 104)],
        dict(status="no_alert"),
    ),
    "run_level_not_reached": (
        [(101, 110, 100, 109), (109, 112, 108, 111), (111, 111, 100, 101), (101, 102, 95, 96)],
        dict(status="no_alert"),
    ),
    "alert_beyond_fade_stop": (
        [(101, 108, 100, 107), (118, 130, 125, 129), (128, 128, 121, 122), (122, 123, 119, 119.5)],
        dict(status="no_alert"),
    ),
    "expired": (
        RUN + [(105, 106, 103, 104), (104, 108, 100, 105), (105, 106, 101, 102)],
        dict(status="expired", leg="alert", fill=(3, 104), exit=(4, 105), r=-1 / 16, held=2),
    ),
}
CONFIGS = {
    "expired": dict(max_holding_bars=2),
    "run_level_not_reached": dict(window_sessions=4),
    "alert_beyond_fade_stop": dict(window_sessions=4),
}


@pytest.mark.parametrize("name", CASES)
def test_hand_built_long_primary(name: str) -> None:
    bars, expected = CASES[name]
    check(run(bars, **CONFIGS.get(name, {})), **expected)


@pytest.mark.parametrize("name", CASES)
def test_short_primary_mirrors_to_a_long_fade(name: str) -> None:
    bars, expected = CASES[name]
    geometry, twin_bars = mirror(LONG, bars)
    out = run(twin_bars, geometry, **CONFIGS.get(name, {}))
    flip = dict(expected)
    for key in ("fill", "exit"):
        if key in flip:
            flip[key] = (flip[key][0], CENTRE - flip[key][1])
    check(out, **flip)
    assert out.side == 1
    if out.armed_index >= 0:
        assert out.alert_level == pytest.approx(
            CENTRE - run(bars, **CONFIGS.get(name, {})).alert_level
        )


def test_alert_recorded_before_fill() -> None:
    out = run(RUN + [(105, 106, 103, 103.5)])
    assert (out.armed_index, out.alert_level, out.limit_level) == (2, 104, 115)
    assert out.side == -1 and out.risk_per_share == 16


def test_75_percent_level_trading_without_alert_is_no_trade() -> None:
    bars = [
        (101, 116, 100, 115),
        (115, 118, 114, 117),
        (117, 117.5, 115, 116),
        (116, 116, 113, 113.5),
        (113, 114, 100, 101),
        (101, 102, 95, 96),
    ]
    out = run(bars, as_of=10)
    check(out, "no_alert")
    assert out.armed_index == -1
    # a 3-bar alert allows one bar between the new high and the reversal: armed on bar 3
    three = run(bars, alert_bars=3)
    assert (three.armed_index, three.alert_level) == (3, 113)
    check(three, "pending", leg="alert", fill=(4, 113))


def test_legs_window_counts_sessions() -> None:
    check(run(RUN, window_sessions=2), "no_alert")  # the reversal bar is in session 3
    late = RUN + [(106, 108, 105, 107), (107, 110, 100, 101)]
    check(run(late, window_sessions=4), "unfilled")  # the alert level trades in session 5
    check(run(late, window_sessions=5), "pending", leg="alert", fill=(4, 104))


def test_hourly_bars_share_sessions() -> None:
    bars = RUN + [(105, 106, 103, 103.5), (103, 104, 89, 91)]
    check(run(bars, sessions=[1, 1, 1, 2, 2], window_sessions=1), "unfilled")
    check(
        run(bars, sessions=[1, 1, 1, 2, 2], window_sessions=2),
        "win",
        leg="alert",
        fill=(3, 104),
        exit=(4, 90),
        r=14 / 16,
    )


def test_pending_until_window_or_holding_limit_passes() -> None:
    out = run(RUN)
    assert (out.status, out.armed_index) == ("pending", 2)
    check(run(RUN, as_of=10), "unfilled")
    check(run([], as_of=0), "pending")
    check(run([], as_of=10), "no_alert")


def test_limit_leg_beyond_the_fade_stop_is_never_placed() -> None:
    geometry = dict(primary_side=1, entry=100.0, stop=90.0, target=140.0, target_50=120.0)
    levels = fade_levels(**geometry, config=OpposingConfig())
    assert math.isnan(levels.limit) and (
        levels.side,
        levels.stop,
        levels.take_profit,
        levels.run_level,
    ) == (-1, 120, 90, 130)
    bars = [(101, 131, 125, 130), (129, 129, 118, 119), (119, 119.5, 117, 118)]
    check(run(bars, geometry), "pending", leg="alert", fill=(2, 118))


def test_fade_levels_short_primary() -> None:
    levels = fade_levels(-1, 100.0, 110.0, 80.0, 80.0, OpposingConfig())
    assert (levels.side, levels.limit, levels.stop, levels.take_profit, levels.run_level) == (
        1,
        85,
        80,
        110,
        85,
    )


@pytest.mark.parametrize(
    "geometry",
    [
        dict(primary_side=1, entry=100.0, stop=101.0, target=120.0, target_50=120.0),
        dict(primary_side=1, entry=100.0, stop=90.0, target=99.0, target_50=120.0),
        dict(primary_side=-1, entry=100.0, stop=90.0, target=80.0, target_50=80.0),
        dict(primary_side=0, entry=100.0, stop=90.0, target=120.0, target_50=120.0),
    ],
)
def test_bad_geometry_rejected(geometry: dict) -> None:
    with pytest.raises(ValueError):
        run(RUN, geometry)


def test_bars_must_follow_the_signal_session() -> None:
    with pytest.raises(ValueError):
        run(RUN, sessions=[0, 1, 2])
    with pytest.raises(ValueError):
        run(RUN, sessions=[2, 1, 3])


def test_quantity_is_one_r_from_the_fill() -> None:
    assert fade_quantity(1000.0, 104.0, 120.0) == 62
    assert fade_quantity(1000.0, 115.0, 120.0) == 200
    assert fade_quantity(10.0, 104.0, 120.0) == 0
    assert fade_quantity(0.0, 104.0, 120.0) == 0
    assert fade_quantity(1000.0, 120.0, 120.0) == 0


def test_summary_overall_and_per_leg() -> None:
    outs = [run(bars, **CONFIGS.get(name, {})) for name, (bars, _) in CASES.items()]
    summary = fade_summary(outs)
    trades = [o for o in outs if o.status in ("win", "loss", "expired")]
    assert summary["signals"] == len(CASES)
    assert summary["trades"] == len(trades) == 13
    assert summary["wins"] == sum(o.status == "win" for o in outs)
    assert summary["win_rate"] == pytest.approx(summary["wins"] / len(trades))
    assert summary["sum_r"] == pytest.approx(sum(o.r_multiple for o in trades))
    assert summary["expectancy_r"] == pytest.approx(summary["sum_r"] / len(trades))
    assert (summary["no_alert"], summary["unfilled"], summary["pending"]) == (3, 1, 1)
    legs = summary["legs"]
    assert legs["limit"]["trades"] + legs["alert"]["trades"] == summary["trades"]
    assert legs["limit"]["sum_r"] == pytest.approx(
        sum(o.r_multiple for o in trades if o.leg == "limit")
    )
    empty = fade_summary([])
    assert empty["trades"] == 0 and empty["win_rate"] is None and empty["sum_r"] == 0


# ---------------------------------------------------------------- properties on random paths


def random_case(
    seed: int,
    n: int,
    drift: float,
    vol: float,
    per_session: int,
    side: int,
    risk: float,
    reach: float,
    stretch: float,
    turn: int,
) -> tuple[dict, list[tuple], list[int]]:
    """A primary (entry 100) and a random walk drifting toward its target, back after `turn`."""
    rng = np.random.default_rng(seed)
    geometry = dict(
        primary_side=side,
        entry=100.0,
        stop=100.0 - side * risk,
        target=100.0 + side * reach * stretch,
        target_50=100.0 + side * reach,
    )
    bars, close = [], 100.0
    for i in range(n):
        o = round(close + rng.normal(0, vol / 3), 2)
        c = round(o + side * (drift if i < turn else -drift) + rng.normal(0, vol), 2)
        hi = round(max(o, c) + rng.exponential(vol / 2), 2)
        lo = round(min(o, c) - rng.exponential(vol / 2), 2)
        bars.append((o, hi, lo, c))
        close = c
    return geometry, bars, [1 + i // per_session for i in range(n)]


case_args = st.tuples(
    st.integers(0, 2**32 - 1),
    st.integers(1, 40),
    st.floats(-0.5, 2.0),
    st.floats(0.3, 4.0),
    st.sampled_from([1, 3, 7]),
    st.sampled_from([1, -1]),
    st.floats(2.0, 15.0),
    st.floats(5.0, 30.0),
    st.sampled_from([1.0, 1.5, 2.0]),
    st.integers(0, 40),
)
configs = st.builds(
    OpposingConfig,
    limit_fraction=st.sampled_from([0.5, 0.75, 1.0]),
    arm_fraction=st.sampled_from([0.5, 0.75]),
    alert_bars=st.integers(2, 3),
    window_sessions=st.integers(1, 10),
    max_holding_bars=st.integers(1, 30),
)


def replay_case(
    args: tuple, config: OpposingConfig
) -> tuple[dict, list[tuple], list[int], FadeOutcome]:
    geometry, bars, sessions = random_case(*args)
    prices = np.array(bars, dtype=float).reshape(-1, 4)
    fade_bars = FadeBars(sessions, prices[:, 0], prices[:, 1], prices[:, 2], prices[:, 3])
    return (
        geometry,
        bars,
        sessions,
        replay_fade(**geometry, bars=fade_bars, config=config, signal_session=0),
    )


def alert_pattern_at(k: int, geometry: dict, bars: list[tuple], config: OpposingConfig) -> bool:
    """Independent check of the alert definition on bar k, in the primary's direction."""
    side, e, t = geometry["primary_side"], geometry["entry"], geometry["target"]
    ext = [side * (hi if side > 0 else lo) for _, hi, lo, _ in bars]  # run extremes
    back = [side * (lo if side > 0 else hi) for _, hi, lo, _ in bars]  # the opposite extremes
    run_level = side * (e + config.arm_fraction * (t - e))
    for j in range(max(0, k - config.alert_bars + 1), k):
        new_high = all(ext[j] > x for x in ext[:j])
        holds = all(x <= ext[j] for x in ext[j + 1 : k + 1])
        if new_high and holds and ext[j] >= run_level and side * bars[k][3] < back[j]:
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(case_args, configs)
def test_no_position_without_an_armed_alert(args: tuple, config: OpposingConfig) -> None:
    geometry, bars, sessions, out = replay_case(args, config)
    if out.fill_index >= 0:
        assert 0 <= out.armed_index < out.fill_index
        assert sessions[out.fill_index] <= config.window_sessions
        assert alert_pattern_at(out.armed_index, geometry, bars, config)
        side, stop, t50 = out.side, geometry["stop"], geometry["target_50"]
        assert side * (out.alert_level - t50) > 0 and side * (stop - out.alert_level) > 0
    if out.status == "no_alert":
        assert out.armed_index == -1 and out.fill_index == -1


@settings(max_examples=300, deadline=None)
@given(case_args, configs)
def test_at_most_one_leg_and_the_first_touch_wins(args: tuple, config: OpposingConfig) -> None:
    geometry, bars, _, out = replay_case(args, config)
    assert (out.leg is None) == (out.fill_index < 0)
    if out.leg is None:
        return
    assert out.leg in LEGS
    level = out.limit_level if out.leg == "limit" else out.alert_level
    assert out.fill_price in (pytest.approx(level), bars[out.fill_index][0])
    for _, hi, lo, _ in bars[out.armed_index + 1 : out.fill_index]:  # neither leg traded before
        fade = out.side  # -1: a short fade sells the limit above, the stop-entry below
        limit_hit = (
            not math.isnan(out.limit_level)
            and fade * ((lo if fade > 0 else hi) - out.limit_level) <= 0
        )
        alert_hit = fade * ((hi if fade > 0 else lo) - out.alert_level) >= 0
        assert not limit_hit and not alert_hit


@settings(max_examples=300, deadline=None)
@given(case_args, configs)
def test_r_signs_and_own_fill_risk(args: tuple, config: OpposingConfig) -> None:
    _, _, _, out = replay_case(args, config)
    if out.status == "win":
        assert out.r_multiple > 0
    if out.status == "loss":
        assert out.r_multiple <= 0
    if out.status in ("win", "loss", "expired"):
        assert out.risk_per_share > 0
        assert out.r_multiple == pytest.approx(
            out.side * (out.exit_price - out.fill_price) / out.risk_per_share
        )
        assert out.bars_held == out.exit_index - out.fill_index + 1 <= config.max_holding_bars


@settings(max_examples=150, deadline=None)
@given(case_args, configs)
@example(
    args=(374112681, 20, 1.0, 3.0, 7, -1, 10.0, 5.0, 1.0, 3),  # filled, still open at the end
    config=OpposingConfig(
        limit_fraction=0.5, arm_fraction=0.5, alert_bars=2, window_sessions=3, max_holding_bars=2
    ),
)
def test_mirrored_primary_gives_the_mirrored_fade(args: tuple, config: OpposingConfig) -> None:
    geometry, bars, sessions, out = replay_case(args, config)
    twin_geometry, twin_bars = mirror(geometry, bars)
    prices = np.array(twin_bars, dtype=float).reshape(-1, 4)
    twin = replay_fade(
        **twin_geometry, bars=FadeBars(sessions, *prices.T), config=config, signal_session=0
    )
    assert (twin.status, twin.leg, twin.armed_index, twin.fill_index, twin.exit_index) == (
        out.status,
        out.leg,
        out.armed_index,
        out.fill_index,
        out.exit_index,
    )
    if out.fill_index >= 0:
        assert twin.fill_price == pytest.approx(CENTRE - out.fill_price)
        # A filled but still open fade (status 'pending') has no R yet: NaN on both sides.
        assert twin.r_multiple == pytest.approx(out.r_multiple, abs=1e-9, nan_ok=True)
        assert math.isnan(out.r_multiple) == (out.status == "pending")


@settings(max_examples=300, deadline=None)
@given(st.floats(0.0, 1e6), st.floats(0.01, 1e4), st.floats(0.001, 500.0), st.sampled_from([1, -1]))
def test_size_is_one_r_from_its_own_fill(
    risk_dollars: float, fill: float, dist: float, side: int
) -> None:
    stop = fill + side * dist
    qty = fade_quantity(risk_dollars, fill, stop)
    per_share = abs(fill - stop)
    assert qty >= 0 and qty * per_share <= risk_dollars
    if per_share > 0:
        assert (qty + 1) * per_share > risk_dollars


def test_random_paths_exercise_both_legs() -> None:
    """The property tests' generator reaches every outcome, so they are not vacuous."""
    config = OpposingConfig(window_sessions=10, max_holding_bars=20)
    seen: set = set()
    for seed in range(400):
        args = (
            seed,
            40,
            1.0,
            2.0,
            1 + 2 * (seed % 2),
            1 if seed % 4 < 2 else -1,
            8.0,
            12.0,
            1.0,
            8 + seed % 16,
        )
        out = replay_case(args, config)[3]
        seen.add((out.status, out.leg))
    assert {
        ("win", "limit"),
        ("win", "alert"),
        ("loss", "limit"),
        ("loss", "alert"),
        ("no_alert", None),
    } <= seen


def test_plan_fade_only_on_the_session_the_alert_arms():
    """A long primary (E 100, S 96, T = T50 = 104): the run prints 103.5, the next bar closes
    below that bar's low, arming the alert at its low 100.8; legs 1R from their own entries."""
    from breakout_assets.core.opposing import plan_fade

    bars = FadeBars(
        np.array([1, 2]),
        np.array([101.0, 102.5]),
        np.array([103.5, 102.8]),
        np.array([101.5, 100.8]),
        np.array([103.0, 101.0]),
    )
    config = OpposingConfig()
    assert (
        plan_fade(
            1,
            100.0,
            96.0,
            104.0,
            104.0,
            FadeBars(*(a[:1] for a in (bars.session, bars.open, bars.high, bars.low, bars.close))),
            0,
            1,
            100_000.0,
            config,
        )
        is None
    )  # the run, no alert yet
    plan = plan_fade(1, 100.0, 96.0, 104.0, 104.0, bars, 0, 2, 100_000.0, config)
    assert (plan.side, plan.alert_level, plan.limit_level, plan.stop, plan.take_profit) == (
        -1,
        100.8,
        103.0,
        104.0,
        96.0,
    )
    assert (plan.risk_dollars, plan.alert_quantity, plan.limit_quantity) == (500.0, 156, 500)
    assert plan.valid_sessions == config.window_sessions - 2
    assert plan_fade(1, 100.0, 96.0, 104.0, 104.0, bars, 0, 3, 100_000.0, config) is None


def test_daily_bars_keep_the_holding_limit_in_sessions() -> None:
    """140 one-hour bars (7 a session) are 20 sessions on daily bars; nothing else changes."""
    hourly = OpposingConfig()
    daily = hourly.on_daily_bars()
    assert daily.max_holding_bars == 20
    assert daily.model_dump(exclude={"max_holding_bars"}) == hourly.model_dump(
        exclude={"max_holding_bars"}
    )
    assert OpposingConfig(max_holding_bars=3).on_daily_bars().max_holding_bars == 1

"""Position management rules (core.trade_management): hand-built cases, long and mirrored short,
and properties over random bar paths.

Primary long: signal entry E = 100, stop 96 (R = 4), targets 104 / 106 / 108, booked take-profit
104, 100 shares ($400 at risk), filled at the open of session 1 at 100. The short twin reflects
every price through 200. Bars are (open, high, low, close) on sessions 1, 2, ...
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakout_assets.core.outcomes import BarPaths, OutcomeConfig, Status, replay
from breakout_assets.core.trade_management import (
    ALL_RULES,
    Action,
    Bar,
    ManagedPosition,
    ManagementConfig,
    OpposingRules,
    apply,
    bars_from_arrays,
    dollar_risk,
    manage,
    replay_managed,
)

CENTRE = 200.0
CONFIG = ManagementConfig()
ONE_R_TP = ManagementConfig(opposing=OpposingRules(take_profit_r=1.0))  # the 1 x R variant


def primary(side: str = "long", **kw) -> ManagedPosition:
    base = dict(
        order_ref="BRK-X",
        book="primary",
        side="long",
        fill_price=100.0,
        fill_session=1,
        quantity=100,
        original_stop=96.0,
        stop=96.0,
        take_profit=104.0,
        planned_risk=4.0,
        original_dollar_risk=400.0,
        signal_entry=100.0,
        targets=(104.0, 106.0, 108.0),
    )
    base.update(kw)
    return mirror_position(ManagedPosition(**base)) if side == "short" else ManagedPosition(**base)


def opposing(side: str = "short", **kw) -> ManagedPosition:
    """The fade of the long primary: short at 103 (75% of the way to 104), stop at the 50% line
    104 (R = 1), bracket take-profit at the primary's stop 96; E = 100 is 3 R in our favour."""
    base = dict(
        order_ref="OPP-X",
        book="opposing",
        side="short",
        fill_price=103.0,
        fill_session=1,
        quantity=100,
        original_stop=104.0,
        stop=104.0,
        take_profit=96.0,
        planned_risk=1.0,
        original_dollar_risk=100.0,
        signal_entry=100.0,
        targets=(104.0, 106.0, 108.0),
    )
    base.update(kw)
    return mirror_position(ManagedPosition(**base)) if side == "long" else ManagedPosition(**base)


def mirror_position(p: ManagedPosition) -> ManagedPosition:
    m = lambda x: CENTRE - x  # noqa: E731
    return ManagedPosition(
        p.order_ref,
        p.book,
        "short" if p.side == "long" else "long",
        m(p.fill_price),
        p.fill_session,
        p.quantity,
        m(p.original_stop),
        m(p.stop),
        m(p.take_profit),
        p.planned_risk,
        p.original_dollar_risk,
        m(p.signal_entry),
        tuple(m(t) for t in p.targets),
        p.add_on_done,
        p.breakeven_done,
        m(p.average_price),
    )


def mk_bars(rows: list[tuple], side: str = "long", first: int = 1) -> list[Bar]:
    """Bars on sessions first, first + 1, ...; for the mirrored side prices reflect through 200
    (high and low swap)."""
    if side in ("short",):
        rows = [(CENTRE - o, CENTRE - lo, CENTRE - hi, CENTRE - c) for o, hi, lo, c in rows]
    return [Bar(first + i, *map(float, r)) for i, r in enumerate(rows)]


def mirrored(x: float, side: str) -> float:
    return x if side == "long" else CENTRE - x


def kinds(actions: list[Action]) -> list[str]:
    return [a.action for a in actions]


SIDES = pytest.mark.parametrize("side", ["long", "short"])


# --- breakeven ---------------------------------------------------------------------------------


@SIDES
def test_breakeven_exactly_at_half_r(side):
    bars = mk_bars([(100, 101, 99.5, 100.5), (100.5, 102, 100, 101)], side)
    pos = primary(side)
    assert manage(pos, bars, 1, CONFIG) == []
    (a,) = manage(pos, bars, 2, CONFIG)
    assert (a.action, a.old_stop, a.new_stop) == (
        "breakeven",
        mirrored(96, side),
        mirrored(100, side),
    )
    assert "+0.5R" in a.reason and a.new_quantity == a.old_quantity == 100
    after = apply(pos, [a])
    assert after.breakeven_done and after.stop == mirrored(100, side)
    assert manage(after, bars, 2, CONFIG) == []  # re-running changes nothing


@SIDES
def test_no_breakeven_just_below_half_r(side):
    bars = mk_bars([(100, 101, 99.5, 100.5), (100.5, 101.99, 100, 101)], side)
    assert manage(primary(side), bars, 2, CONFIG) == []


@SIDES
def test_intraday_fill_bar_counts_only_its_close(side):
    # filled at 100 on the way down from a 101 open; its 103 high may have come before the fill
    bars = mk_bars([(101, 103, 99.5, 101)], side)
    assert manage(primary(side), bars, 1, CONFIG) == []
    bars = mk_bars([(101, 103, 99.5, 102.5)], side)
    assert kinds(manage(primary(side), bars, 1, CONFIG)) == ["breakeven"]


# --- primary add-on, trail and take-profit -----------------------------------------------------

HOLDS = [(100, 101, 99, 100.5), (100.5, 101.5, 99.5, 101), (101, 101.8, 100.2, 101.5)]


@SIDES
def test_add_on_on_day_two_when_the_move_holds(side):
    pos, bars = primary(side), mk_bars(HOLDS, side)
    assert manage(pos, bars, 2, CONFIG) == []  # day 1: nothing yet
    actions = manage(pos, bars, 3, CONFIG)
    assert kinds(actions) == ["add_on", "trail", "take_profit"]
    add, trail, tp = actions
    # target 1.5 x $400 = $600; $400 at risk; 5.5 to the stop per share -> floor(200 / 5.5) = 36
    assert (add.old_quantity, add.new_quantity, add.price) == (100, 136, mirrored(101.5, side))
    assert "floor" in add.reason
    assert trail.new_stop == mirrored(99.5, side)  # low of sessions 2-3
    assert (tp.old_take_profit, tp.new_take_profit) == (
        mirrored(104, side),
        mirrored(108 if side == "long" else 106, side),
    )
    after = apply(pos, actions)
    assert after.quantity == 136 and after.add_on_done
    assert after.average_price == pytest.approx(mirrored((100 * 100 + 36 * 101.5) / 136, side))
    with_add_only = apply(pos, [add])
    assert dollar_risk(with_add_only) == pytest.approx(598.0) and dollar_risk(after) < 598
    assert manage(after, bars, 3, CONFIG) == []


@SIDES
@pytest.mark.parametrize("close", [99.8, 100.0])
def test_no_add_on_when_the_move_fails(side, close):
    bars = mk_bars([*HOLDS[:2], (101, 101.5, 99.6, close)], side)
    actions = manage(primary(side), bars, 3, CONFIG)
    assert "add_on" not in kinds(actions) and "take_profit" not in kinds(actions)
    assert kinds(actions) == ["trail"]  # the trail still starts on day 2


@SIDES
def test_no_add_on_when_the_stop_was_hit(side):
    bars = mk_bars([HOLDS[0], (100.5, 101.5, 96, 101), HOLDS[2]], side)
    assert "add_on" not in kinds(manage(primary(side), bars, 3, CONFIG))


@SIDES
def test_add_on_only_on_day_two(side):
    bars = mk_bars([*HOLDS, (101.5, 101.9, 101, 101.7)], side)
    pos = primary(side)
    assert "add_on" not in kinds(manage(pos, bars, 4, CONFIG))  # day 3: the moment has passed
    later = ManagementConfig(primary=dict(add_on_day=3))
    assert "add_on" in kinds(manage(pos, bars, 4, later))


@SIDES
def test_no_add_on_when_the_risk_is_already_at_the_target(side):
    pos = primary(side, original_dollar_risk=400.0)
    cfg = ManagementConfig(primary=dict(resize_to=1.0))
    assert "add_on" not in kinds(manage(pos, mk_bars(HOLDS, side), 3, cfg))


@SIDES
def test_take_profit_stays_booked_without_the_add_on(side):
    bars = mk_bars(HOLDS, side)
    actions = manage(primary(side), bars, 3, CONFIG, rules={"trail", "take_profit"})
    assert kinds(actions) == ["trail"]


@SIDES
def test_take_profit_never_placed_behind_the_close(side):
    pos = primary(side, add_on_done=True)
    bars = mk_bars([*HOLDS[:2], (103, 109, 102.5, 108.5)], side)
    assert "take_profit" not in kinds(manage(pos, bars, 3, CONFIG))


@SIDES
def test_trail_ratchets_and_never_loosens(side):
    rows = [*HOLDS, (101.5, 103, 101, 102.5), (102.5, 103.5, 102, 103), (102, 102.5, 98, 99)]
    bars, pos = mk_bars(rows, side), primary(side)
    stops = [pos.stop]
    for session in range(1, 7):
        pos = apply(pos, manage(pos, bars, session, CONFIG, rules={"trail"}))
        stops.append(pos.stop)
    expected = [96, 96, 96, 99.5, 100.2, 101, 101]  # 2-bar lows; the last bar's 98 is ignored
    assert stops == [mirrored(x, side) for x in expected]


def test_apply_refuses_a_loosening_or_stale_action():
    pos = primary()
    loosen = Action("trail", 2, 96.0, 95.0, 100, 100, 104.0, 104.0, math.nan, "x")
    with pytest.raises(ValueError, match="against"):
        apply(pos, [loosen])
    stale = Action("trail", 2, 97.0, 98.0, 100, 100, 104.0, 104.0, math.nan, "x")
    with pytest.raises(ValueError, match="stale"):
        apply(pos, [stale])
    shrink = Action("add_on", 2, 96.0, 96.0, 100, 90, 104.0, 104.0, 101.0, "x")
    with pytest.raises(ValueError, match="quantity"):
        apply(pos, [shrink])


def test_bars_after_the_session_are_ignored():
    bars = mk_bars([*HOLDS, (90, 91, 80, 85)])
    assert manage(primary(), bars, 3, CONFIG) == manage(primary(), bars[:3], 3, CONFIG)


def test_bars_from_arrays_and_a_dated_fill_session():
    p = np.array(HOLDS)
    bars = bars_from_arrays(np.arange(1, 4), p[:, 0], p[:, 1], p[:, 2], p[:, 3])
    assert bars == mk_bars(HOLDS)
    dated = primary(fill_session=date(2024, 1, 2))  # the first bar is taken as the fill bar
    assert kinds(manage(dated, bars, 3, CONFIG)) == ["add_on", "trail", "take_profit"]


def test_rejects_unknown_rules_and_a_wrong_fill_bar():
    with pytest.raises(ValueError, match="unknown rules"):
        manage(primary(), mk_bars(HOLDS), 3, CONFIG, rules={"pyramid"})
    with pytest.raises(ValueError, match="fill session"):
        manage(primary(), mk_bars(HOLDS, first=5), 6, CONFIG)


# --- expiry ------------------------------------------------------------------------------------


@SIDES
def test_expiry_at_the_holding_limit_and_only_that(side):
    cfg = ManagementConfig(outcomes=OutcomeConfig(max_holding_sessions=3))
    bars = mk_bars([*HOLDS[:2], (101, 103, 100.5, 102.5)], side)
    assert "expire" not in kinds(manage(primary(side), bars, 2, cfg))
    (a,) = manage(primary(side), bars, 3, cfg)  # breakeven and add-on would trigger otherwise
    assert (a.action, a.price, a.new_quantity) == ("expire", mirrored(102.5, side), 0)
    assert apply(primary(side), [a]).quantity == 0
    result = replay_managed(primary(side), bars, cfg)
    assert (result.exit_session, result.exit_price) == (3, mirrored(102.5, side))
    assert result.r_multiple == pytest.approx(2.5 / 4)


# --- opposing book -----------------------------------------------------------------------------

OPP_SIDES = pytest.mark.parametrize("side", ["short", "long"])


def omirror(x: float, side: str) -> float:
    return x if side == "short" else CENTRE - x


def obars(rows, side):
    return mk_bars(rows, "long" if side == "short" else "short")


@OPP_SIDES
def test_opposing_breakeven_trail_and_take_profit(side):
    pos = opposing(side)
    # fill at the 103 open; low 102.6 is +0.4R: only the take-profit moves, to fill - 1R
    bars = obars([(103, 103.3, 102.6, 102.8), (102.8, 103.0, 102.4, 102.7)], side)
    (tp,) = manage(pos, bars, 1, ONE_R_TP)
    assert (tp.action, tp.old_take_profit, tp.new_take_profit) == (
        "take_profit",
        omirror(96, side),
        omirror(102, side),
    )
    pos = apply(pos, [tp])
    # low 102.4 is +0.6R: breakeven at 103, then the trail 1/3 R behind the best price
    be, trail = manage(pos, bars, 2, ONE_R_TP)
    assert (be.action, be.new_stop) == ("breakeven", omirror(103, side))
    assert trail.action == "trail"
    assert trail.new_stop == pytest.approx(omirror(102.4 + 1 / 3, side))
    assert manage(apply(pos, [be, trail]), bars, 2, ONE_R_TP) == []


@OPP_SIDES
def test_opposing_trail_waits_for_half_r(side):
    cfg = ManagementConfig(opposing=dict(take_profit_r=None))
    bars = obars([(103, 103.3, 102.6, 102.8)], side)
    assert manage(opposing(side), bars, 1, cfg) == []


@OPP_SIDES
@pytest.mark.parametrize("open_, price", [(101.0, 100.0), (99.5, 99.5)])
def test_opposing_add_on_at_the_signal_entry(side, open_, price):
    cfg = ManagementConfig(opposing=OpposingRules(take_profit_r=None))
    pos = opposing(side, stop=101.5, breakeven_done=True)
    bars = obars([(103, 103.3, 101.2, 101.4), (open_, 101.2, 99.2, 99.6)], side)
    actions = manage(pos, bars, 2, cfg, rules={"add_on"})
    (add,) = actions
    # the stop is in profit: $0 at risk, so the whole 1.0 x $100 goes on the new shares
    per_share = 101.5 - price
    assert add.price == omirror(price, side)
    assert add.new_quantity == 100 + math.floor(100 / per_share * (1 + 1e-9))
    assert dollar_risk(apply(pos, actions)) <= 100 + 1e-6
    # not reached: no add-on
    far = obars([(103, 103.3, 101.2, 101.4), (101.4, 101.6, 100.1, 100.5)], side)
    assert manage(pos, far, 2, cfg, rules={"add_on"}) == []


def test_opposing_one_r_take_profit_closes_before_the_signal_entry():
    # with DESIGN's geometry E is 3R away and the 1R take-profit comes first
    bars = obars([(103, 103.3, 102.6, 102.8), (102.8, 102.9, 99.5, 99.8)], "short")
    result = replay_managed(opposing(), bars, ONE_R_TP)
    assert (result.exit_session, result.exit_price, result.r_multiple) == (2, 102.0, 1.0)
    assert "add_on" not in kinds(result.actions)


# --- replay ------------------------------------------------------------------------------------


@SIDES
def test_replay_compares_rules(side):
    rows = [*HOLDS, (101.5, 103, 101, 102.5), (102.5, 104.5, 102, 104.2), (104, 108.5, 103.5, 108)]
    bars = mk_bars(rows, side)
    static = replay_managed(primary(side), bars, CONFIG, rules=())
    assert (static.exit_session, static.exit_price, static.r_multiple) == (
        5,
        mirrored(104, side),
        1.0,
    )
    full = replay_managed(primary(side), bars, CONFIG)
    assert kinds(full.actions)[:3] == ["add_on", "trail", "take_profit"]
    if side == "long":  # the 108 target takes all 136 shares
        assert full.exit_price == 108.0
        assert full.r_multiple == pytest.approx(136 * (108 - (10000 + 36 * 101.5) / 136) / 400)
    else:  # the short's 75% target 94 (mirror of 106) is hit on session 6
        assert (full.exit_session, full.exit_price) == (6, 94.0)


# --- properties --------------------------------------------------------------------------------

prices = st.integers(360, 440).map(lambda x: x / 4)  # 90..110 in quarters


@st.composite
def bar_rows(draw, min_size=1):
    rows = []
    for _ in range(draw(st.integers(min_size, 10))):
        a, b, c, d = sorted(draw(st.lists(prices, min_size=4, max_size=4)))
        o, cl = draw(st.permutations([b, c]))
        rows.append((o, d, a, cl))
    return rows


@st.composite
def walk_rows(draw):
    """A random walk from 100 in quarters: gaps, trends and reversals at the scale of R."""
    rows, close = [], 100.0
    for _ in range(draw(st.integers(1, 12))):
        o = close + draw(st.integers(-6, 6)) / 4
        c = o + draw(st.integers(-8, 8)) / 4
        rows.append(
            (o, max(o, c) + draw(st.integers(0, 4)) / 4, min(o, c) - draw(st.integers(0, 4)) / 4, c)
        )
        close = c
    return rows


def _position(book: str, fill: float, flip: bool) -> ManagedPosition:
    """A primary long / opposing short filled at `fill` with the standard geometry around it
    (mirrored when `flip`)."""
    if book == "primary":
        pos = primary(
            fill_price=fill,
            original_stop=fill - 4,
            stop=fill - 4,
            take_profit=fill + 4,
            signal_entry=fill,
            targets=(fill + 4, fill + 6, fill + 8),
        )
    else:
        pos = opposing(
            fill_price=fill,
            original_stop=fill + 1,
            stop=fill + 1,
            take_profit=fill - 7,
            signal_entry=fill - 3,
            targets=(fill + 1, fill + 3, fill + 5),
        )
    return mirror_position(pos) if flip else pos


@settings(max_examples=150, deadline=None)
@given(
    rows=walk_rows(),
    book=st.sampled_from(["primary", "opposing"]),
    flip=st.booleans(),
    holding=st.integers(1, 8),
    rules=st.sets(st.sampled_from(sorted(ALL_RULES))),
    tp_r=st.sampled_from([None, 1.0, 4.0]),
)
def test_management_invariants(rows, book, flip, holding, rules, tp_r):
    bars = mk_bars(rows, "short" if flip else "long")
    pos = _position(book, rows[0][0], flip)
    cfg = ManagementConfig(
        outcomes=OutcomeConfig(max_holding_sessions=holding), opposing=dict(take_profit_r=tp_r)
    )
    result = replay_managed(pos, bars, cfg, rules)
    s, state = pos.sign, pos
    for a in result.actions:
        assert s * (a.new_stop - a.old_stop) >= 0  # the stop never moves against us
        assert a.new_quantity >= a.old_quantity or a.action == "expire"
        assert a.action in rules or a.action == "expire"
        state = apply(state, [a])
        if a.action == "add_on":
            resize = cfg.primary.resize_to if book == "primary" else cfg.opposing.resize_to
            assert dollar_risk(state) <= resize * pos.original_dollar_risk * (1 + 1e-9)
    # each session's actions, applied, leave nothing to do on a re-run
    state = pos
    for k, bar in enumerate(bars):
        if result.exit_session is not None and bar.session >= result.exit_session:
            break
        actions = manage(state, bars[: k + 1], bar.session, cfg, rules)
        state = apply(state, actions)
        assert manage(state, bars[: k + 1], bar.session, cfg, rules) == []


def _static_outcome(rows, side, entry_valid, holding):
    signal = dict(
        side=1,
        entry=100.0,
        stop=96.0,
        booked_target=104.0,
        target_50=104.0,
        target_75=106.0,
        target_100=108.0,
    )
    if side == "short":
        signal = {k: (CENTRE - v if k != "side" else -1) for k, v in signal.items()}
    arrays = {k: np.array([v]) for k, v in signal.items()}
    arrays["risk"], arrays["signal_ord"] = np.array([4.0]), np.array([0])
    p = np.array(rows, dtype=float).reshape(-1, 4)
    paths = BarPaths.from_rows(
        np.zeros(len(rows), np.int64),
        np.arange(1, len(rows) + 1),
        1,
        open=p[:, 0],
        high=p[:, 1],
        low=p[:, 2],
        close=p[:, 3],
    )
    return replay(
        arrays,
        paths,
        len(rows),
        OutcomeConfig(entry_valid_sessions=entry_valid, max_holding_sessions=holding),
    )


@settings(max_examples=150, deadline=None)
@given(
    rows=st.one_of(bar_rows(), walk_rows()),
    side=st.sampled_from(["long", "short"]),
    entry_valid=st.integers(1, 3),
    holding=st.integers(1, 6),
)
def test_replay_without_rules_is_the_static_outcome(rows, side, entry_valid, holding):
    rows = [tuple(mirrored(x, side) for x in r) for r in rows]
    rows = [(o, max(a, b), min(a, b), c) for o, a, b, c in rows]
    out = _static_outcome(rows, side, entry_valid, holding)
    if out.entry_bar[0] < 0:
        return
    k = int(out.entry_bar[0])
    bars = [Bar(i + 1, *r) for i, r in enumerate(rows)][k:]
    pos = primary(side, fill_price=mirrored(float(out.entry_price[0]), side), fill_session=k + 1)
    cfg = ManagementConfig(outcomes=OutcomeConfig(max_holding_sessions=holding))
    result = replay_managed(pos, bars, cfg, rules=())
    if Status(out.status[0]) is Status.PENDING:
        assert result.exit_session is None
        return
    assert result.exit_session == int(out.exit_bar[0]) + 1
    assert result.exit_price == out.exit_price[0]
    assert result.r_multiple == pytest.approx(out.r_multiple[0])
    assert [a.action for a in result.actions] in ([], ["expire"])

"""core.journal on fixed fills: R by hand, P&L as cash, exit reasons, reconciliation."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from breakout_assets.core.journal import (
    PlannedTrade,
    StopMove,
    TradeFill,
    build_journal,
    combo_fill,
)

D = [date(2024, 1, d) for d in (2, 3, 4, 5, 8, 9, 10)]


def plan(ref="BRK-X-L", side="long", quantity=100, stop=96.0, tp=104.0, **kw) -> PlannedTrade:
    kw.setdefault("book", "primary")
    return PlannedTrade(
        trade_id=ref,
        ticker="X",
        side=side,
        quantity=quantity,
        initial_stop=stop,
        take_profit=tp,
        entry_deadline=D[1],
        **kw,
    )


def fill(action, price, day, quantity=100, ref="BRK-X-L", purpose=None, commission=0.0):
    return TradeFill(ref, "X", action, quantity, price, day, purpose, None, commission)


def only(journal):
    [trade] = journal.trades
    return trade


@pytest.mark.parametrize(
    ("side", "entry", "stop", "exit_", "quantity"),
    [
        ("long", 100.0, 96.0, 104.0, 100),  # +1R
        ("long", 100.0, 96.0, 95.5, 100),  # gapped through the stop: -1.125R
        ("short", 50.0, 52.5, 45.0, 40),  # +2R
        ("short", 50.0, 52.5, 50.0, 40),  # scratch
    ],
)
def test_r_is_exit_minus_entry_over_the_initial_risk(side, entry, stop, exit_, quantity):
    opening, closing = ("BUY", "SELL") if side == "long" else ("SELL", "BUY")
    journal = build_journal(
        [
            fill(opening, entry, D[1], quantity, commission=1.0),
            fill(closing, exit_, D[3], quantity, commission=1.25),
        ],
        [plan(side=side, quantity=quantity, stop=stop, tp=None)],
    )
    trade = only(journal)
    sign = 1 if side == "long" else -1
    by_hand = sign * (exit_ - entry) / abs(entry - stop)
    assert trade.r_gross == pytest.approx(by_hand, abs=1e-12)
    assert trade.initial_risk == pytest.approx(abs(entry - stop) * quantity)
    assert trade.gross_pnl == pytest.approx(sign * (exit_ - entry) * quantity)
    assert trade.fees == 2.25 and trade.net_pnl == pytest.approx(trade.gross_pnl - 2.25)
    assert trade.r_net == pytest.approx(trade.net_pnl / trade.initial_risk)
    assert (trade.status, trade.session, trade.entry_session, trade.exit_session) == (
        "closed",
        D[3],
        D[1],
        D[3],
    )
    assert journal.exceptions == []


def test_partial_fills_are_averaged_and_an_open_trade_belongs_to_its_entry():
    fills = [
        TradeFill(
            "BRK-X-L", "X", "BUY", 60, 100.0, D[1], "entry", datetime(2024, 1, 3, 15, tzinfo=UTC)
        ),
        TradeFill(
            "BRK-X-L", "X", "BUY", 40, 100.5, D[2], "entry", datetime(2024, 1, 4, 15, tzinfo=UTC)
        ),
    ]
    trade = only(build_journal(fills, [plan()]))
    assert trade.entry_price == pytest.approx(100.2) and trade.quantity == 100
    assert trade.status == "open" and trade.session == D[2] and trade.entry_session == D[1]
    assert trade.gross_pnl is trade.r_gross is trade.exit_price is trade.exit_reason is None
    closed = only(
        build_journal([*fills, fill("SELL", 104.0, D[4], purpose="take_profit")], [plan()])
    )
    assert closed.gross_pnl == pytest.approx((104.0 - 100.2) * 100)
    assert closed.r_gross == pytest.approx((104.0 - 100.2) / (100.2 - 96.0))
    assert closed.session == D[4] and closed.exit_reason == "target"


def moves_to(*moves):
    return [StopMove("BRK-X-L", day, action, old, new) for day, action, old, new in moves]


@pytest.mark.parametrize(
    ("purpose", "price", "moves", "reason"),
    [
        ("take_profit", 104.0, [], "target"),
        ("stop", 96.0, [], "stop"),
        ("stop", 100.0, [(D[2], "breakeven", 96.0, 100.0)], "breakeven"),
        ("stop", 101.5, [(D[2], "breakeven", 96.0, 100.0), (D[3], "trail", 100.0, 101.5)], "trail"),
        # a move decided on the exit's own session was not in force yet
        ("stop", 96.0, [(D[4], "breakeven", 96.0, 100.0)], "stop"),
        ("expiry", 101.0, [], "expiry"),
        ("close", 101.0, [(D[3], "expire", 96.0, 96.0)], "expiry"),
        ("close", 101.0, [], "manual"),
        # the broker did not say which order filled: the levels decide
        (None, 104.2, [], "target"),
        (None, 95.0, [], "stop"),
        (None, 99.98, [(D[2], "breakeven", 96.0, 100.0)], "breakeven"),
        (None, 101.0, [], "manual"),
    ],
)
def test_exit_reasons(purpose, price, moves, reason):
    fills = [fill("BUY", 100.0, D[1], purpose="entry"), fill("SELL", price, D[4], purpose=purpose)]
    assert only(build_journal(fills, [plan()], moves_to(*moves))).exit_reason == reason


def test_an_add_on_follows_its_primarys_stop_moves_after_its_own_placement():
    add_on = plan(
        "BRK-X-L-ADD", quantity=50, stop=100.0, tp=108.0, book="add_on", parent_ref="BRK-X-L"
    )
    moves = moves_to((D[2], "breakeven", 96.0, 100.0), (D[3], "add_on", 100.0, 100.0))
    fills = [
        fill("BUY", 103.0, D[4], 50, "BRK-X-L-ADD", "entry"),
        fill("SELL", 100.0, D[5], 50, "BRK-X-L-ADD", "stop"),
    ]
    trade = only(build_journal(fills, [add_on], moves))
    assert trade.exit_reason == "stop" and trade.r_gross == pytest.approx(-1.0)
    trailed = moves + moves_to((D[4], "trail", 100.0, 102.0))
    fills[1] = fill("SELL", 102.0, D[5], 50, "BRK-X-L-ADD", "stop")
    assert only(build_journal(fills, [add_on], trailed)).exit_reason == "trail"


def test_a_spread_risks_its_debit_and_settles():
    spread = plan("BRK-X-L-SPRD", quantity=300, stop=None, tp=None, book="option_spread")
    legs_in = [(3, 4.10, 100, 1.95), (-3, 1.60, 100, 1.95)]  # bought near, sold far
    entry = combo_fill("BRK-X-L-SPRD", "X", "BUY", "entry", legs_in, D[1], None)
    assert (entry.price, entry.quantity, entry.commission) == (pytest.approx(2.5), 300, 3.9)
    settled = fill("SELL", 5.0, D[6], 300, "BRK-X-L-SPRD", "settlement")
    trade = only(build_journal([entry, settled], [spread]))
    assert trade.initial_risk == pytest.approx(750.0) and trade.gross_pnl == pytest.approx(750.0)
    assert trade.r_gross == pytest.approx(1.0) and trade.exit_reason == "settlement"
    assert trade.r_net == pytest.approx((750.0 - 3.9) / 750.0)
    condition = fill("SELL", 0.0, D[6], 300, "BRK-X-L-SPRD", "condition")
    trade = only(build_journal([entry, condition], [spread]))
    assert trade.r_gross == pytest.approx(-1.0) and trade.exit_reason == "target"


def test_reconciliation_reports_what_does_not_match():
    plans = [
        plan("BRK-A-L"),  # filled 90 of 100
        plan("BRK-B-L"),  # the broker says filled, no fill came
        plan("BRK-C-L"),  # the broker has no such order
        plan("BRK-D-L"),  # expired unfilled: nothing should exist
        plan("BRK-E-L"),  # a sell without its buy
    ]
    fills = [
        fill("BUY", 100.0, D[1], 90, "BRK-A-L"),
        fill("BUY", 20.0, D[1], 10, "NOT-OURS"),
        fill("SELL", 104.0, D[2], 100, "BRK-E-L"),
    ]
    states = {"BRK-B-L": "filled", "BRK-D-L": "expired", "BRK-E-L": "closed"}
    journal = build_journal(fills, plans, [], states, [D[1]])
    found = {(e.session, e.kind, e.ref) for e in journal.exceptions}
    assert found == {
        (D[1], "quantity_mismatch", "BRK-A-L"),
        (D[1], "fill_without_plan", "NOT-OURS"),
        (D[1], "plan_without_fills", "BRK-B-L"),
        (D[1], "plan_without_fills", "BRK-C-L"),
        (D[2], "exit_without_entry", "BRK-E-L"),
    }
    assert [t.trade_id for t in journal.trades] == ["BRK-A-L"]  # kept, with its real quantity
    assert journal.trades[0].quantity == 90
    # not due yet (the entry window closes on another session): nothing is missing
    later = build_journal(fills, plans, [], states, [D[2]])
    assert not [e for e in later.exceptions if e.kind == "plan_without_fills"]


def test_a_fade_leg_cancelled_by_its_filled_sibling_is_not_missing():
    legs = [
        plan(
            "OPP-X-20240102-S-ALT",
            side="short",
            stop=104.0,
            tp=96.0,
            book="opposing",
            oca_group="OPP-X-20240102-S",
            parent_ref="OPP-X-20240102-S",
        ),
        plan(
            "OPP-X-20240102-S-LIM",
            side="short",
            stop=104.0,
            tp=96.0,
            book="opposing",
            oca_group="OPP-X-20240102-S",
            parent_ref="OPP-X-20240102-S",
        ),
    ]
    fills = [fill("SELL", 101.0, D[1], ref="OPP-X-20240102-S-ALT", purpose="entry")]
    # IB no longer lists the cancelled -LIM leg: still nothing is missing
    journal = build_journal(fills, legs, [], {}, [D[1]])
    assert journal.exceptions == [] and only(journal).book == "opposing"
    alone = build_journal([], legs[1:], [], {}, [D[1]])
    assert [e.kind for e in alone.exceptions] == ["plan_without_fills"]

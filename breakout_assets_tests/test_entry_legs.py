"""The fade book's entry legs: stop-entries and one-cancels-other (OCA) groups of brackets.

`stop_entry_fill` by hand; the simulated broker on hand-built bars (signal bar at 100 on
SESSIONS[0], bars from SESSIONS[1]); the IBKR adapter against the FakeIB of test_ibkr_broker.
The fade legs below are shorts: a limit sell above the market at 105 (stop 108, take-profit 100)
and a stop-entry sell below it at 95 (stop 98, take-profit 90).
"""

from __future__ import annotations

import math

import pytest
from ib_async import StopOrder
from ib_async.util import UNSET_DOUBLE
from sqlalchemy import text

from breakout_assets.core.outcomes import stop_entry_fill
from breakout_assets.resources.broker.base import BracketOrder
from breakout_assets.resources.broker.ibkr import IbkrBroker
from breakout_assets.resources.broker.simulated import SimulatedBroker
from breakout_assets_tests.test_ibkr_broker import (  # noqa: F401  (_no_network: autouse guard)
    FakeIB,
    _no_network,
    make_broker,
)
from breakout_assets_tests.test_ibkr_broker import bracket as ib_bracket
from breakout_assets_tests.test_simulated_broker import (  # noqa: F401  (engine: a fixture)
    CONFIG,
    SESSIONS,
    add_bars,
    engine,
    status_of,
)

# --- the fill rule ----------------------------------------------------------------------------


def test_stop_entry_fill_rule():
    # long: a buy stop at 100
    assert stop_entry_fill(1, 100.0, 101.0, 102.0, 100.5) == 101.0  # gap up: the open
    assert stop_entry_fill(1, 100.0, 100.0, 100.5, 99.0) == 100.0  # opens on it: the open
    assert stop_entry_fill(1, 100.0, 99.0, 100.0, 98.0) == 100.0  # the high reaches it
    assert math.isnan(stop_entry_fill(1, 100.0, 99.0, 99.99, 95.0))  # a limit would fill here
    # short: a sell stop at 100
    assert stop_entry_fill(-1, 100.0, 98.0, 99.0, 97.0) == 98.0  # gap down: the open
    assert stop_entry_fill(-1, 100.0, 101.0, 102.0, 100.0) == 100.0  # the low reaches it
    assert math.isnan(stop_entry_fill(-1, 100.0, 101.0, 110.0, 100.01))


def test_bracket_order_entry_legs_default_and_validation():
    plain = BracketOrder("R", "AAA", "long", 1, 100.0, 96.0, 104.0, SESSIONS[0])
    assert (plain.entry_type, plain.oca_group) == ("limit", None)
    with pytest.raises(ValueError, match="entry_type"):
        BracketOrder("R", "AAA", "long", 1, 100.0, 96.0, 104.0, SESSIONS[0], entry_type="market")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="levels out of order"):  # a stop-entry: same levels
        BracketOrder("R", "AAA", "short", 1, 95.0, 90.0, 98.0, SESSIONS[0], entry_type="stop")


# --- the simulated broker ---------------------------------------------------------------------


@pytest.fixture
def sim(engine) -> SimulatedBroker:  # noqa: F811
    return SimulatedBroker(engine, 100_000.0, CONFIG)


def limit_leg(ref: str = "LIM", group: str | None = "G", quantity: int = 100) -> BracketOrder:
    return BracketOrder(
        ref,
        "AAA",
        "short",
        quantity,
        105.0,
        108.0,
        100.0,
        SESSIONS[0],
        2,
        entry_type="limit",
        oca_group=group,
    )


def stop_leg(ref: str = "STP", group: str | None = "G", quantity: int = 100) -> BracketOrder:
    return BracketOrder(
        ref,
        "AAA",
        "short",
        quantity,
        95.0,
        98.0,
        90.0,
        SESSIONS[0],
        2,
        entry_type="stop",
        oca_group=group,
    )


def entry_of(sim: SimulatedBroker, ref: str) -> tuple | None:
    fills = [(f["session"], f["price"]) for f in sim.fills(ref) if f["leg"] == "entry"]
    return fills[0] if fills else None


def reason_of(engine, ref: str) -> str | None:  # noqa: F811
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT reason FROM sim_orders WHERE order_ref = :r"), {"r": ref}
        ).scalar_one()


@pytest.mark.parametrize(
    "bar, price",
    [
        ((100, 97, 94.5, 96), 95.0),  # the low reaches 95
        ((93, 94, 92, 93), 93.0),
    ],
)  # gap down: the open
def test_stop_entry_short_fills_at_its_level_or_the_gap_open(engine, sim, bar, price):  # noqa: F811
    add_bars(engine, "AAA", [(100, 101, 95.5, 96), bar])
    assert sim.place_bracket(stop_leg(group=None)).status == "submitted"
    sim.process_session(SESSIONS[1])  # 95.5 low: not triggered (a sell LIMIT would fill at 100)
    assert status_of(engine, "STP") == "working" and entry_of(sim, "STP") is None
    sim.process_session(SESSIONS[2])
    assert entry_of(sim, "STP") == (SESSIONS[2], pytest.approx(price))
    assert status_of(engine, "STP") == "filled"
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT entry_type, oca_group FROM sim_orders")).one()
    assert tuple(stored) == ("stop", None)


def test_stop_entry_fill_bar_opening_beyond_the_stop_exits_at_the_stop(engine, sim):  # noqa: F811
    """The bar opens at 100, above the stop 98, then falls through 95: the position exists only
    from 95, so the stop (touched, conservative) exits at 98, not at the 100 open."""
    add_bars(engine, "AAA", [(100, 100.5, 94.5, 96)])
    sim.place_bracket(stop_leg(group=None))
    sim.process_session(SESSIONS[1])
    assert [(f["leg"], f["price"]) for f in sim.fills("STP")] == [("entry", 95.0), ("stop", 98.0)]


def test_oca_first_fill_cancels_the_other_leg_for_good(engine, sim):  # noqa: F811
    """The limit fills on session 1; the stop leg, cancelled then, ignores session 2's drop."""
    add_bars(engine, "AAA", [(100, 106, 99, 101), (99, 99.5, 94, 95)])
    sim.place_bracket(limit_leg())
    sim.place_bracket(stop_leg())
    first = sim.process_session(SESSIONS[1])
    assert (first["entries"], first["cancelled"]) == (1, 1)
    assert entry_of(sim, "LIM") == (SESSIONS[1], 105.0)
    assert status_of(engine, "STP") == "cancelled"
    assert reason_of(engine, "STP") == "OCA: LIM filled"
    sim.process_session(SESSIONS[2])
    assert sim.fills("STP") == [] and status_of(engine, "STP") == "cancelled"
    assert [f["leg"] for f in sim.fills("LIM")] == ["entry", "take_profit"]  # 99 gaps past 100


@pytest.mark.parametrize(
    "bar, first, winner, price",
    [
        ((100, 106, 94, 100), "LIM", "STP", 95.0),  # both inside the bar: the worse price (lower)
        ((100, 106, 94, 100), "STP", "STP", 95.0),  # ... whichever was placed first
        ((106, 107, 94, 100), "STP", "LIM", 106.0),  # the limit fills at the open: surely first
        ((94, 106, 93, 100), "LIM", "STP", 94.0),  # the stop-entry at the open (a gap down)
    ],
)
def test_oca_legs_never_both_fill_on_a_bar_reaching_both(  # noqa: F811
    engine, sim, bar, first, winner, price
):  # noqa: F811
    add_bars(engine, "AAA", [bar])
    legs = {"LIM": limit_leg(), "STP": stop_leg()}
    loser = "STP" if winner == "LIM" else "LIM"
    sim.place_bracket(legs[first])
    sim.place_bracket(legs["STP" if first == "LIM" else "LIM"])
    summary = sim.process_session(SESSIONS[1])
    assert (summary["entries"], summary["cancelled"]) == (1, 1)
    assert entry_of(sim, winner) == (SESSIONS[1], price)
    assert sim.fills(loser) == []
    assert (status_of(engine, loser), reason_of(engine, loser)) == (
        "cancelled",
        f"OCA: {winner} filled",
    )
    # idempotent: the same session again changes nothing
    state = (
        {r: sim.fills(r) for r in legs},
        sim.account(),
        {r: status_of(engine, r) for r in legs},
    )
    again = sim.process_session(SESSIONS[1])
    assert again["already_processed"] and again["sessions"] == []
    assert (
        {r: sim.fills(r) for r in legs},
        sim.account(),
        {r: status_of(engine, r) for r in legs},
    ) == state


def test_oca_legs_at_the_same_price_the_first_placed_fills(engine, sim):  # noqa: F811
    add_bars(engine, "AAA", [(100, 106, 99, 101)])
    sim.place_bracket(limit_leg("B"))
    sim.place_bracket(limit_leg("A"))
    sim.process_session(SESSIONS[1])
    assert entry_of(sim, "B") == (SESSIONS[1], 105.0) and sim.fills("A") == []
    assert reason_of(engine, "A") == "OCA: B filled"


def test_oca_group_reserves_its_largest_leg_and_a_spent_group_takes_no_new_leg(  # noqa: F811
    engine, sim
):  # noqa: F811
    add_bars(engine, "AAA", [(100, 106, 99, 101)])
    sim.place_bracket(limit_leg())  # 100 x 105 reserved, 300 at risk
    sim.place_bracket(stop_leg())  # 100 x 95 and 300: inside the group's largest
    sim.place_bracket(stop_leg("SOLO", group=None, quantity=10))  # 950 and 30 on its own
    snap = sim.account()
    assert snap.buying_power == pytest.approx(100_000 - 10_500 - 950)
    assert snap.open_risk == pytest.approx(300 + 30)
    sim.process_session(SESSIONS[1])
    late = sim.place_bracket(stop_leg("LATE"))
    assert late.status == "rejected" and "LIM filled" in (late.error or "")


# --- the IBKR adapter -------------------------------------------------------------------------


@pytest.fixture
def fake() -> FakeIB:
    return FakeIB()


@pytest.fixture
def ib(fake: FakeIB) -> IbkrBroker:
    return make_broker(fake)


def test_stop_entry_parent_is_stp_in_the_oca_group_children_unchanged(
    fake: FakeIB, ib: IbkrBroker
) -> None:
    """A buy stop rounds down (100.006 -> 100.00: never a worse trigger than planned)."""
    limit = ib_bracket("lim", entry=100.004)
    ib.place_bracket(limit)
    order = BracketOrder(
        **{
            **limit.__dict__,
            "order_ref": "stp",
            "entry": 100.006,
            "entry_type": "stop",
            "oca_group": "fade-1",
        }
    )
    placed = ib.place_bracket(order)
    assert placed.status == "submitted"
    (_, lim_parent), (_, lim_take), (_, lim_stop) = fake.placed[:3]
    (_, parent), (_, take), (_, stop) = fake.placed[3:]
    assert isinstance(parent, StopOrder) and parent.orderType == "STP"
    assert (parent.auxPrice, parent.lmtPrice) == (100.0, UNSET_DOUBLE)
    assert (parent.ocaGroup, parent.ocaType, parent.orderRef) == ("fade-1", 1, "stp")
    assert (parent.action, parent.totalQuantity, parent.transmit, parent.tif) == (
        "BUY",
        100,
        False,
        "DAY",
    )
    assert parent.account == lim_parent.account and parent.parentId == 0
    # the children are the limit bracket's, field for field, but for ids and the ref
    for child, same in ((take, lim_take), (stop, lim_stop)):
        assert child.parentId == parent.orderId and child.orderRef == "stp"
        assert (child.ocaGroup, child.ocaType) == ("", 0)
        assert {**child.__dict__, "orderId": 0, "parentId": 0, "orderRef": "", "permId": 0} == {
            **same.__dict__,
            "orderId": 0,
            "parentId": 0,
            "orderRef": "",
            "permId": 0,
        }
    assert placed.broker_order_ids == [str(o.orderId) for o in (parent, take, stop)]


def test_short_stop_entry_rounds_up_and_limit_legs_without_group_are_unchanged(
    fake: FakeIB, ib: IbkrBroker
) -> None:
    """TSLA ticks 0.05: a sell stop at 50.02 rounds up to 50.05 (a limit would go to 50.00)."""
    ib.place_bracket(ib_bracket("s", "TSLA", "short"))
    ib.place_bracket(ib_bracket("t", "TSLA", "short", entry_type="stop"))  # type: ignore[arg-type]
    (_, limit_parent), *_ = fake.placed[:3]
    (_, stop_parent), *_ = fake.placed[3:]
    assert (limit_parent.orderType, limit_parent.lmtPrice) == ("LMT", 50.0)
    assert (stop_parent.orderType, stop_parent.auxPrice, stop_parent.action) == (
        "STP",
        50.05,
        "SELL",
    )
    assert {(o.ocaGroup, o.ocaType) for _, o in fake.placed} == {("", 0)}


def test_oca_limit_leg_modify_stop_and_open_risk_with_a_stop_entry(
    fake: FakeIB, ib: IbkrBroker
) -> None:
    """Two legs of one group count their larger risk once; modify_stop moves the stop-loss,
    never the stop-entry parent (both are STP orders of the same ref)."""
    lim = ib.place_bracket(ib_bracket("lim", oca_group="g"))  # type: ignore[arg-type]
    stp = ib.place_bracket(
        ib_bracket(
            "stp",
            entry=100.5,
            oca_group="g",  # type: ignore[arg-type]
            entry_type="stop",
        )
    )
    (_, lim_parent), (_, lim_take), _ = fake.placed[:3]
    assert (lim_parent.orderType, lim_parent.ocaGroup, lim_parent.ocaType) == ("LMT", "g", 1)
    assert (lim_take.ocaGroup, lim_take.ocaType) == ("", 0)
    # lim: 100 x (100 - 98) = 200; stp: 100 x (100.5 - 98) = 250; the group counts 250
    assert ib.account().open_risk == pytest.approx(250)
    ib.modify_stop("stp", 99.0)
    parent_id, stop_id = int(stp.broker_order_ids[0]), int(stp.broker_order_ids[2])
    assert fake.trades[stop_id].order.auxPrice == 99.0
    assert fake.trades[parent_id].order.auxPrice == 100.5
    assert fake.placed[-1][1].orderId == stop_id and lim.status == "submitted"

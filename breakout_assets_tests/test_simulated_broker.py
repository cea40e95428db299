"""The simulated broker against real Postgres, on hand-built bars inserted into market_bars.

Every case: a bracket placed on session 0 (entry 100, stop 96, take-profit 104; R = 4), bars on
sessions 1, 2, ... as (open, high, low, close). Each case is also checked against
`core.outcomes.replay` on the same bars, and run mirrored as a short (prices reflected through
100: entry 100, stop 104, take-profit 96).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from breakout_assets.core.outcomes import BarPaths, OutcomeConfig, Status, replay
from breakout_assets.partitions import nyse_sessions, session_ordinals
from breakout_assets.resources.broker.base import BracketOrder, Broker, BrokerError
from breakout_assets.resources.broker.simulated import SimulatedBroker
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets_tests.conftest import new_database

SESSIONS = nyse_sessions(date(2024, 3, 1), date(2024, 5, 31))
CONFIG = OutcomeConfig(max_holding_sessions=5)
INSERT_BAR = text(
    "INSERT INTO market_bars (ticker, session, open, high, low, close, volume) "
    "VALUES (:ticker, :session, :open, :high, :low, :close, 1000)"
)


@pytest.fixture
def engine(pg_server):
    engine = create_engine(with_driver(new_database(pg_server), "psycopg"))
    yield engine
    engine.dispose()


@pytest.fixture
def broker(engine) -> SimulatedBroker:
    return SimulatedBroker(engine, 100_000.0, CONFIG)


def mirror(bars):
    return [(200 - o, 200 - lo, 200 - hi, 200 - c) for o, hi, lo, c in bars]


def add_bars(engine, ticker: str, bars, first: int = 1, signal_bar: bool = True) -> None:
    """Bars on SESSIONS[first], SESSIONS[first + 1], ...; plus a bar on the signal session."""
    rows = [
        dict(ticker=ticker, session=SESSIONS[first + i], open=o, high=h, low=lo, close=c)
        for i, (o, h, lo, c) in enumerate(bars)
    ]
    if signal_bar:
        rows.append(
            dict(ticker=ticker, session=SESSIONS[0], open=100, high=100, low=100, close=100)
        )
    with engine.begin() as conn:
        conn.execute(INSERT_BAR, rows)


def bracket(
    side: str = "long",
    ref: str = "R1",
    ticker: str = "AAA",
    quantity: int = 100,
    valid: int = 1,
    session: date = SESSIONS[0],
) -> BracketOrder:
    stop, target = (96.0, 104.0) if side == "long" else (104.0, 96.0)
    return BracketOrder(ref, ticker, side, quantity, 100.0, stop, target, session, valid)


def run_days(broker: SimulatedBroker, last: int, first: int = 1) -> None:
    for k in range(first, last + 1):
        broker.process_session(SESSIONS[k])


def status_of(engine, ref: str) -> str:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT status FROM sim_orders WHERE order_ref = :r"), {"r": ref}
        ).scalar_one()


def replayed(order: BracketOrder, bars, as_of: int) -> dict:
    """core.outcomes.replay of the same bracket on the same bars, through SESSIONS[as_of], in
    broker terms."""
    days = np.array(SESSIONS[1 : len(bars) + 1], dtype="datetime64[D]")
    prices = np.array(bars, dtype=float).reshape(-1, 4)
    paths = BarPaths.from_rows(
        np.zeros(len(bars), np.int64),
        session_ordinals(days),
        1,
        **{k: prices[:, j] for j, k in enumerate(("open", "high", "low", "close"))},
    )
    tp = np.array([order.take_profit])
    signals = dict(
        side=np.array([1 if order.side == "long" else -1]),
        entry=np.array([order.entry]),
        stop=np.array([order.stop]),
        booked_target=tp,
        target_50=tp,
        target_75=tp,
        target_100=tp,
        risk=np.array([abs(order.entry - order.stop)]),
        signal_ord=session_ordinals(np.array([order.session], "datetime64[D]")),
    )
    config = CONFIG.model_copy(update={"entry_valid_sessions": order.valid_sessions})
    as_of_ord = session_ordinals(np.array([SESSIONS[as_of]], "datetime64[D]"))[0]
    out = replay(signals, paths, int(as_of_ord), config)
    label = Status(out.status[0]).label
    if label == "unfilled":
        return {"status": "expired"}
    leg = {"win": "take_profit", "loss": "stop", "expired": "expiry"}[label]
    return {
        "status": "closed",
        "entry": (SESSIONS[out.entry_bar[0] + 1], out.entry_price[0]),
        "exit": (leg, SESSIONS[out.exit_bar[0] + 1], out.exit_price[0]),
    }


def outcome(broker: SimulatedBroker, engine, ref: str = "R1") -> dict:
    fills = broker.fills(ref)
    result: dict = {"status": status_of(engine, ref)}
    for f in fills:
        if f["leg"] == "entry":
            result["entry"] = (f["session"], f["price"])
        else:
            result["exit"] = (f["leg"], f["session"], f["price"])
    return result


STEADY = [
    (100.5, 102, 99, 101),
    (101, 102.5, 100, 102),
    (102, 103, 101, 102.5),
    (102.5, 103, 101.5, 102.8),
]
# name: (long bars, valid_sessions, expected long outcome as (entry idx, price), (leg, idx, price))
CASES = {
    "fill_at_open_then_target": (
        [(99.5, 101, 99, 100.5), (101, 104.5, 100.5, 104)],
        1,
        (1, 99.5),
        ("take_profit", 2, 104.0),
    ),
    "intraday_fill_then_target_first": (
        [(100.5, 101, 99.5, 100.8), (101, 104.5, 100.5, 104)],
        1,
        (1, 100.0),
        ("take_profit", 2, 104.0),
    ),
    "never_filled_expires": ([(101, 102, 100.5, 101.5), (101, 103, 99, 100)], 1, None, None),
    "fills_on_the_second_window_session": (
        [(101, 102, 100.5, 101.5), (101, 103, 99, 100), (99, 99.5, 95, 96)],
        2,
        (2, 100.0),
        ("stop", 3, 96.0),
    ),
    "stop_first": ([(100, 101, 99, 100), (99, 99.5, 95.5, 96)], 1, (1, 100.0), ("stop", 2, 96.0)),
    "bar_touching_both_stop_wins": (
        [(100, 100.5, 99.5, 100), (100, 105, 95, 100)],
        1,
        (1, 100.0),
        ("stop", 2, 96.0),
    ),
    "gap_through_the_stop_fills_at_open": (
        [(100, 101, 99, 100), (94, 95, 93, 94)],
        1,
        (1, 100.0),
        ("stop", 2, 94.0),
    ),
    "gap_through_the_target_fills_at_open": (
        [(100, 101, 99, 100), (106, 107, 105, 106)],
        1,
        (1, 100.0),
        ("take_profit", 2, 106.0),
    ),
    "intraday_fill_bar_counts_only_the_stop": (
        [(100.5, 105, 99.8, 101)] + STEADY,
        1,
        (1, 100.0),
        ("expiry", 5, 102.8),
    ),
    "fill_bar_reaching_the_stop_loses": ([(100.5, 101, 95, 96)], 1, (1, 100.0), ("stop", 1, 96.0)),
    "expiry_at_the_holding_limit": (
        [(99.5, 101, 99, 100.5)] + STEADY + [(103, 110, 90, 100)],
        1,
        (1, 99.5),
        ("expiry", 5, 102.8),
    ),
}


@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("case", CASES)
def test_fills_follow_the_outcome_rules_and_match_replay(engine, broker, case, side):
    bars, valid, entry, exit_ = CASES[case]
    price = (lambda p: p) if side == "long" else (lambda p: 200 - p)
    bars = bars if side == "long" else mirror(bars)
    order = bracket(side, valid=valid)
    add_bars(engine, "AAA", bars)
    assert broker.place_bracket(order).status == "submitted"
    run_days(broker, len(bars))
    got = outcome(broker, engine)
    if entry is None:
        assert got == {"status": "expired"}
    else:
        assert got == {
            "status": "closed",
            "entry": (SESSIONS[entry[0]], pytest.approx(price(entry[1]))),
            "exit": (exit_[0], SESSIONS[exit_[1]], pytest.approx(price(exit_[2]))),
        }
    assert got == replayed(order, bars, len(bars))


def test_place_is_idempotent(engine, broker):
    add_bars(engine, "AAA", [])
    first = broker.place_bracket(bracket())
    again = broker.place_bracket(bracket(quantity=5))
    assert first.status == again.status == "submitted"
    assert first.broker_order_ids == again.broker_order_ids
    assert [i.split("-")[-1] for i in first.broker_order_ids] == ["P", "TP", "SL"]
    with engine.connect() as conn:
        counted = conn.execute(text("SELECT count(*), max(quantity) FROM sim_orders")).one()
    assert tuple(counted) == (1, 100)


def test_process_session_is_idempotent(engine, broker):
    add_bars(engine, "AAA", [(99.5, 101, 99, 100.5), (101, 102, 100, 101)])
    broker.place_bracket(bracket())
    first = broker.process_session(SESSIONS[1])
    assert (first["sessions"], first["entries"], first["already_processed"]) == (
        [SESSIONS[1]],
        1,
        False,
    )
    assert first["cash"] == pytest.approx(100_000 - 100 * 99.5)
    state = (broker.fills("R1"), broker.account())
    again = broker.process_session(SESSIONS[1])
    assert again["already_processed"] and again["sessions"] == []
    assert (broker.fills("R1"), broker.account()) == state
    broker.process_session(SESSIONS[2])
    assert broker.process_session(SESSIONS[1])["already_processed"]  # an older one: no-op
    assert broker.fills("R1") == state[0]


def test_processing_out_of_order_raises(engine, broker):
    add_bars(engine, "AAA", [(100, 101, 99, 100)] * 3)
    broker.process_session(SESSIONS[3])
    with pytest.raises(BrokerError, match="in order"):
        broker.process_session(SESSIONS[2])
    with pytest.raises(ValueError, match="not an NYSE session"):
        broker.process_session(date(2024, 3, 9))


def test_skipped_sessions_are_caught_up_in_order(engine, broker):
    bars = [(100.5, 101, 99.5, 100.8), (101, 104.5, 100.5, 104), (104, 105, 103, 104)]
    add_bars(engine, "AAA", bars)
    broker.place_bracket(bracket())
    summary = broker.process_session(SESSIONS[3])  # first use: from the session after the signal
    assert summary["sessions"] == SESSIONS[1:4] and summary["exits"] == 1
    assert outcome(broker, engine) == replayed(bracket(), bars, 3)


def test_missing_bars_raise_and_leave_nothing_behind(engine, broker):
    add_bars(engine, "AAA", [])
    broker.place_bracket(bracket())
    with pytest.raises(BrokerError, match="no market_bars"):
        broker.process_session(SESSIONS[1])
    assert status_of(engine, "R1") == "working"
    add_bars(engine, "AAA", [(99.5, 101, 99, 100.5)], signal_bar=False)
    assert broker.process_session(SESSIONS[1])["entries"] == 1


def test_position_expires_at_the_last_close_when_the_ticker_stops_trading(engine, broker):
    add_bars(engine, "AAA", [(99.5, 101, 99, 100.5), (100.5, 102, 99, 101.5)])
    add_bars(engine, "ZZZ", [(10, 10, 10, 10)] * 6, signal_bar=False)
    broker.place_bracket(bracket())
    run_days(broker, 6)
    assert outcome(broker, engine)["exit"] == ("expiry", SESSIONS[2], pytest.approx(101.5))
    assert outcome(broker, engine) == replayed(
        bracket(), [(99.5, 101, 99, 100.5), (100.5, 102, 99, 101.5)], 6
    )


def test_rejections_are_answers_and_leave_other_orders_alone(engine, broker):
    add_bars(engine, "AAA", [(99.5, 101, 99, 100.5)])
    big = broker.place_bracket(bracket(ref="BIG", quantity=900))  # 90,000 of 100,000
    unknown = broker.place_bracket(bracket(ref="NEW", ticker="NOPE"))
    too_big = broker.place_bracket(bracket(ref="MORE", quantity=101))  # 10,100 > 10,000
    assert big.status == "submitted"
    assert unknown.status == too_big.status == "rejected"
    assert "never traded" in unknown.error and "buying power" in too_big.error
    assert broker.place_bracket(bracket(ref="MORE", quantity=1)).status == "rejected"
    assert broker.place_bracket(bracket(ref="FITS", quantity=100)).status == "submitted"
    assert broker.account().buying_power == pytest.approx(0.0)
    broker.process_session(SESSIONS[1])
    assert {r: status_of(engine, r) for r in ("BIG", "NEW", "MORE", "FITS")} == {
        "BIG": "filled",
        "NEW": "rejected",
        "MORE": "rejected",
        "FITS": "filled",
    }
    assert broker.fills("MORE") == broker.fills("NEW") == []


def test_late_order_whose_window_passed_is_rejected(engine, broker):
    add_bars(engine, "AAA", [(101, 102, 100.5, 101.5)])
    broker.process_session(SESSIONS[1])
    late = broker.place_bracket(bracket())
    assert late.status == "rejected" and "window passed" in late.error


def test_current_session_is_the_accounts_clock(engine, broker):
    """What `sync(through)` would make it, without syncing: `through` until the account has
    processed a later close, then that close (the pipeline expires plans it has passed)."""
    assert broker.current_session(SESSIONS[3]) == SESSIONS[3]
    with engine.connect() as conn:  # nothing processed by asking
        assert not conn.execute(text("SELECT count(*) FROM sim_processed_sessions")).scalar()
    broker.sync(SESSIONS[5])
    assert broker.current_session(SESSIONS[0]) == SESSIONS[5]
    assert broker.current_session(SESSIONS[5]) == SESSIONS[5]
    assert broker.current_session(SESSIONS[8]) == SESSIONS[8]


def test_cancel_withdraws_a_working_entry_only(engine, broker):
    add_bars(engine, "AAA", [(99.5, 101, 99, 100.5), (100, 101, 99, 100)])
    broker.place_bracket(bracket(ref="GONE"))
    broker.place_bracket(bracket(ref="KEPT"))
    assert broker.account().buying_power == pytest.approx(80_000)
    broker.cancel("GONE")
    broker.cancel("GONE")  # again: nothing to do
    assert broker.account().buying_power == pytest.approx(90_000)
    broker.process_session(SESSIONS[1])
    assert (status_of(engine, "GONE"), broker.fills("GONE")) == ("cancelled", [])
    assert status_of(engine, "KEPT") == "filled"
    with pytest.raises(BrokerError, match="open position"):
        broker.cancel("KEPT")
    with pytest.raises(BrokerError, match="unknown"):
        broker.cancel("NOPE")


def test_modify_stop_on_working_and_open_brackets(engine, broker):
    add_bars(engine, "AAA", [(99.5, 101, 99, 100.5), (101, 103, 101, 102), (101, 102, 99.8, 100)])
    broker.place_bracket(bracket())
    broker.modify_stop("R1", 97.0)  # working: tighter, still below the entry
    with pytest.raises(BrokerError, match="loss side of the entry"):
        broker.modify_stop("R1", 100.5)
    broker.process_session(SESSIONS[1])
    assert broker.account().open_risk == pytest.approx(100 * (99.5 - 97.0))
    broker.process_session(SESSIONS[2])
    broker.modify_stop("R1", 100.0)  # open: past the fill (breakeven and then some)
    assert broker.account().open_risk == 0.0
    with pytest.raises(BrokerError, match="take-profit"):
        broker.modify_stop("R1", 104.5)
    broker.process_session(SESSIONS[3])
    assert outcome(broker, engine)["exit"] == ("stop", SESSIONS[3], pytest.approx(100.0))
    with pytest.raises(BrokerError, match="closed"):
        broker.modify_stop("R1", 99.0)
    with engine.connect() as conn:
        changes = conn.execute(
            text(
                "SELECT old_stop, new_stop, after_session FROM sim_stop_changes ORDER BY changed_at"
            )
        ).all()
    assert [tuple(c) for c in changes] == [(96.0, 97.0, None), (97.0, 100.0, SESSIONS[2])]


def test_account_through_a_long_round_trip(engine, broker):
    add_bars(engine, "AAA", [(99.5, 101, 99, 100.5), (101, 104.5, 100.5, 104)])
    broker.place_bracket(bracket())
    working = broker.account()
    assert (working.equity, working.buying_power, working.excess_liquidity) == (
        100_000,
        90_000,
        100_000,
    )
    assert (working.open_risk, working.open_positions) == (400, 0)
    broker.process_session(SESSIONS[1])  # bought 100 at 99.50, closed at 100.50
    held = broker.account()
    assert held.equity == pytest.approx(90_050 + 10_050)
    assert held.excess_liquidity == held.buying_power == pytest.approx(90_050)
    assert (held.open_risk, held.open_positions) == (pytest.approx(350), 1)
    assert [(p.ticker, p.quantity, p.average_price, p.order_ref) for p in broker.positions()] == [
        ("AAA", 100, 99.5, "R1")
    ]
    broker.process_session(SESSIONS[2])  # sold 100 at the 104 target
    done = broker.account()
    assert done.equity == done.buying_power == done.excess_liquidity == pytest.approx(100_450)
    assert (done.open_risk, done.open_positions, broker.positions()) == (0, 0, [])


def test_account_through_a_short_round_trip(engine, broker):
    add_bars(engine, "AAA", mirror([(99.5, 101, 99, 100), (101, 104.5, 100.5, 104)]))
    broker.place_bracket(bracket("short"))
    broker.process_session(SESSIONS[1])  # sold 100 at 100.50, closed at 100
    held = broker.account()
    assert held.equity == pytest.approx(110_050 - 10_000)
    assert held.excess_liquidity == held.buying_power == pytest.approx(110_050 - 20_000)
    assert held.open_risk == pytest.approx(100 * (104 - 100.5))
    assert [(p.quantity, p.average_price) for p in broker.positions()] == [(-100, 100.5)]
    broker.process_session(SESSIONS[2])  # bought back 100 at the 96 target
    assert broker.account().equity == pytest.approx(110_050 - 9_600)


def test_find_refs_knows_working_filled_closed_and_rejected_orders(engine, broker):
    add_bars(engine, "AAA", [(99.5, 101, 99, 100.5), (101, 104.5, 100.5, 104)])
    add_bars(engine, "BBB", [(100, 101, 99, 100.5), (100.5, 102, 100, 101)])
    broker.place_bracket(bracket(ref="CLOSED"))
    broker.place_bracket(bracket(ref="OPEN", ticker="BBB"))
    broker.place_bracket(bracket(ref="LATER", session=SESSIONS[2]))
    broker.place_bracket(bracket(ref="REJ", ticker="NOPE"))
    run_days(broker, 2)
    known = broker.find_refs(["CLOSED", "OPEN", "LATER", "REJ", "NEVER"])
    assert {ref: k.state for ref, k in known.items()} == {
        "CLOSED": "closed",
        "OPEN": "filled",
        "LATER": "open",
        "REJ": "rejected",
    }
    assert all(len(k.broker_order_ids) == 3 for k in known.values())


def test_is_a_broker_and_keeps_an_existing_account(engine, broker):
    assert isinstance(broker, Broker) and broker.name == "simulated"
    broker.account()
    assert SimulatedBroker(engine, 5.0).account().equity == 100_000
    broker.close()

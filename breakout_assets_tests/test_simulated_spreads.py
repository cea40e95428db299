"""The simulated broker's option combos against real Postgres, on hand-built daily bars.

Every underlying has the same history on SESSIONS[0..6] (the realised volatility's window),
the spreads are placed on the signal session SESSIONS[6] and work from SESSIONS[7]; they expire
on SESSIONS[15] (Friday 2024-03-22). Expected prices are computed here from the documented
model (core.option_pricing, checked against py_vollib elsewhere): the combo = Black-Scholes of
the long leg - the short leg at the named spot, vol = realised vol of the closes before the
session x the multiplier, rounded to the cent.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import create_engine, text

from breakout_assets.core.config import OptionsConfig
from breakout_assets.core.option_pricing import black_scholes, realised_vol
from breakout_assets.core.options import SpreadOrder
from breakout_assets.partitions import nyse_sessions
from breakout_assets.resources.broker.base import BracketOrder, Broker, BrokerError
from breakout_assets.resources.broker.simulated import SimulatedBroker
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets_tests.conftest import new_database

SESSIONS = nyse_sessions(date(2024, 3, 1), date(2024, 5, 31))
SIGNAL, EXPIRY = SESSIONS[6], SESSIONS[15]
HISTORY = [100, 102, 99, 101, 98, 100, 100]  # closes of SESSIONS[0..6]
WINDOW, IV_MULT, RATE, SLIP = 5, 1.2, 0.04, 0.03
OPTIONS = OptionsConfig(vol_window=WINDOW, iv_multiplier=IV_MULT, rate=RATE, slippage=SLIP)
START = 100_000.0
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
    return SimulatedBroker(engine, START, options=OPTIONS)


def add_bars(engine, ticker: str, bars) -> None:
    """The history on SESSIONS[0..6], then `bars` (open, high, low, close) from SESSIONS[7]."""
    rows = [
        dict(ticker=ticker, session=SESSIONS[i], open=c, high=c, low=c, close=c)
        for i, c in enumerate(HISTORY)
    ] + [
        dict(ticker=ticker, session=SESSIONS[7 + i], open=o, high=h, low=lo, close=c)
        for i, (o, h, lo, c) in enumerate(bars)
    ]
    with engine.begin() as conn:
        conn.execute(INSERT_BAR, rows)


def closes_before(bars, k: int) -> list[float]:
    """The closes before SESSIONS[k] (history, then the bars from SESSIONS[7])."""
    return [*HISTORY, *(b[3] for b in bars)][:k]


def combo(right, long_k, short_k, spot, k: int, bars, sale: bool = False) -> float:
    """The modelled combo on SESSIONS[k] at `spot`; a sale gets it less the slippage."""
    vol = realised_vol(closes_before(bars, k), WINDOW) * IV_MULT
    years = (EXPIRY - SESSIONS[k]).days / 365.0
    legs = black_scholes(right, spot, [long_k, short_k], years, vol, RATE)
    value = round(min(max(float(legs[0] - legs[1]), 0.0), abs(short_k - long_k)), 2)
    return round(max(value - SLIP, 0.0), 2) if sale else value


def spread(ref, ticker, right="C", strikes=(100.0, 110.0), n=3, debit=3.5, trigger=110.0):
    return SpreadOrder(ref, ticker, right, EXPIRY, *strikes, n, debit, trigger, SIGNAL)


def run_days(broker: SimulatedBroker, last: int, first: int = 7) -> None:
    for k in range(first, last + 1):
        broker.process_session(SESSIONS[k])


def cash(engine) -> float:
    with engine.connect() as conn:
        return conn.execute(text("SELECT cash FROM sim_account")).scalar_one()


def flat(close: float, days: int):
    return [(close, close + 0.5, close - 0.5, close)] * days


# a call spread filled at the open, then sold by the condition when the high trades through 110
CALL_CLOSED = [(100, 101, 99.5, 100.5), (101, 111, 100.5, 110.5), *flat(110, 7)]
# a call spread filled at its limit intraday (the low), settled at expiry on the 105 close
CALL_EXPIRED = [(101, 101.5, 99, 100), *flat(103, 7), (104, 106, 103, 105)]
# a put spread (long 100, short 90) that expires worthless on a 102 close
PUT_WORTHLESS = [(100, 100.5, 99.5, 100), *flat(101, 7), (101, 102.5, 100.5, 102)]
# a put spread sold by the condition at the open: the session gaps down through the 92 trigger
PUT_GAPPED = [(100, 100.5, 99.5, 100), (99, 99.5, 97, 98), (91, 92, 89, 90), *flat(90, 6)]


def test_spreads_fill_close_settle_and_cash_round_trips(engine, broker):
    for ticker, bars in (
        ("AAA", CALL_CLOSED),
        ("BBB", CALL_EXPIRED),
        ("CCC", PUT_WORTHLESS),
        ("DDD", PUT_GAPPED),
    ):
        add_bars(engine, ticker, bars)
    # AAA: the combo at the first open is under the limit: it fills there
    aaa_entry = combo("C", 100, 110, 100, 7, CALL_CLOSED)
    assert 0 < aaa_entry <= 3.5
    # BBB: the limit sits between the combo at the open and at the low: it fills at the limit
    at_open, at_low = (combo("C", 100, 110, s, 7, CALL_EXPIRED) for s in (101, 99))
    bbb_limit = round((at_open + at_low) / 2, 2)
    assert at_low < bbb_limit < at_open
    ccc_entry = combo("P", 100, 90, 100, 7, PUT_WORTHLESS)
    ddd_entry = combo("P", 100, 90, 100, 7, PUT_GAPPED)
    orders = [
        spread("AAA-SPR", "AAA", n=3, debit=3.5),
        spread("BBB-SPR", "BBB", n=2, debit=bbb_limit, trigger=115.0),
        spread("CCC-SPR", "CCC", "P", (100.0, 90.0), n=4, debit=ccc_entry + 0.5, trigger=85.0),
        spread("DDD-SPR", "DDD", "P", (100.0, 90.0), n=1, debit=ddd_entry + 0.5, trigger=92.0),
    ]
    placed = [broker.place_spread(o) for o in orders]
    assert [p.status for p in placed] == ["submitted"] * 4
    assert all(len(p.broker_order_ids) == 2 for p in placed)

    broker.process_session(SESSIONS[7])
    snap = broker.account()
    debits = {
        "AAA-SPR": aaa_entry,
        "BBB-SPR": bbb_limit,
        "CCC-SPR": ccc_entry,
        "DDD-SPR": ddd_entry,
    }
    sizes = {o.order_ref: o.contracts for o in orders}
    paid = sum(debits[r] * 100 * sizes[r] for r in debits)
    assert cash(engine) == pytest.approx(START - paid, abs=0.005)
    assert snap.open_risk == pytest.approx(paid, abs=0.005)  # each spread's whole debit
    assert snap.open_positions == 4 and broker.positions() == []  # spreads are no stock

    run_days(broker, 16, first=8)
    rows = {r["order_ref"]: r for r in broker.spreads()}
    assert {r: rows[r]["status"] for r in rows} == dict.fromkeys(debits, "closed")
    assert {r: rows[r]["entry_price"] for r in rows} == pytest.approx(debits, abs=1e-9)
    exits = {
        "AAA-SPR": ("condition", SESSIONS[8], combo("C", 100, 110, 110, 8, CALL_CLOSED, sale=True)),
        "BBB-SPR": ("expiry", EXPIRY, 5.0),  # intrinsic on the 105 close
        "CCC-SPR": ("expiry", EXPIRY, 0.0),  # worthless on the 102 close
        # gapped through the trigger: sold at the combo on the 91 open
        "DDD-SPR": ("condition", SESSIONS[9], combo("P", 100, 90, 91, 9, PUT_GAPPED, sale=True)),
    }
    assert {
        r: (rows[r]["exit_leg"], rows[r]["exit_session"], rows[r]["exit_price"]) for r in rows
    } == exits
    assert rows["AAA-SPR"]["exit_price"] > aaa_entry
    received = sum(exits[r][2] * 100 * sizes[r] for r in exits)
    # cash round-trips to the cent: start - debits paid + proceeds received
    assert cash(engine) == pytest.approx(START - paid + received, abs=0.005)
    after = broker.account()
    assert after.equity == pytest.approx(START - paid + received, abs=0.005)
    assert after.open_risk == 0 and after.open_positions == 0
    fills = broker.spread_fills("AAA-SPR")
    assert [f["leg"] for f in fills] == ["entry", "condition"]
    assert sum(f["cash_change"] for f in fills) == pytest.approx(
        (exits["AAA-SPR"][2] - aaa_entry) * 300, abs=0.005
    )

    # a re-run places nothing twice and applies no bar twice
    again = [broker.place_spread(o) for o in orders]
    assert [a.broker_order_ids for a in again] == [p.broker_order_ids for p in placed]
    assert broker.process_session(SESSIONS[16])["already_processed"]
    assert cash(engine) == pytest.approx(START - paid + received, abs=0.005)
    with engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM sim_spread_orders), "
                "(SELECT count(*) FROM sim_spread_fills)"
            )
        ).one()
    assert tuple(counts) == (4, 8)
    known = broker.find_refs([*debits, "NEVER"])
    assert {r: k.state for r, k in known.items()} == dict.fromkeys(debits, "closed")


def test_held_spread_is_marked_and_counts_its_debit_as_risk(engine, broker):
    add_bars(engine, "AAA", [(100, 101, 99.5, 100.5), *flat(104, 3)])
    entry = combo("C", 100, 110, 100, 7, [(100, 101, 99.5, 100.5)])
    broker.place_spread(spread("S1", "AAA", n=2, debit=3.5))
    before = broker.account()
    assert before.open_risk == pytest.approx(3.5 * 200)  # a working combo: its limit debit
    assert before.buying_power == pytest.approx(START - 3.5 * 200)
    run_days(broker, 9)
    bars = [(100, 101, 99.5, 100.5), *flat(104, 2)]
    mark = combo("C", 100, 110, 104, 9, bars)
    snap = broker.account()
    assert snap.equity == pytest.approx(START - entry * 200 + mark * 200, abs=0.005)
    assert snap.open_risk == pytest.approx(entry * 200, abs=0.005)
    assert snap.excess_liquidity == pytest.approx(START - entry * 200, abs=0.005)
    assert {r["order_ref"]: r["status"] for r in broker.spreads()} == {"S1": "filled"}
    with pytest.raises(BrokerError, match="held spread"):
        broker.cancel("S1")
    with pytest.raises(BrokerError, match="option spread"):
        broker.modify_stop("S1", 95.0)
    broker.close_position("S1")  # sold at the model on the last close, less the slippage
    assert [f["leg"] for f in broker.spread_fills("S1")] == ["entry", "close"]
    sold = round(mark - SLIP, 2)
    assert cash(engine) == pytest.approx(START - entry * 200 + sold * 200, abs=0.005)


def test_unfilled_combo_expires_and_refusals_are_answers(engine, broker):
    add_bars(engine, "AAA", [(100, 101, 99.5, 100.5), *flat(100, 2)])
    low = combo("C", 100, 110, 99.5, 7, [(100, 101, 99.5, 100.5)])
    assert broker.place_spread(spread("LOW", "AAA", debit=round(low - 0.3, 2))).status == (
        "submitted"
    )
    cancelled = broker.place_spread(spread("GONE", "AAA"))
    broker.cancel("GONE")
    assert broker.place_spread(spread("NOPE", "ZZZ")).error.startswith("unknown ticker ZZZ")
    big = broker.place_spread(spread("BIG", "AAA", n=1000, debit=3.5))
    assert big.status == "rejected" and "insufficient buying power" in big.error
    broker.place_bracket(BracketOrder("BR", "AAA", "long", 10, 100.0, 96.0, 104.0, SIGNAL))
    taken = broker.place_spread(spread("BR", "AAA"))
    assert taken.status == "rejected" and "bracket" in taken.error
    twice = broker.place_bracket(BracketOrder("LOW", "AAA", "long", 1, 100.0, 96.0, 104.0, SIGNAL))
    assert twice.status == "rejected" and "option spread" in twice.error
    run_days(broker, 8)
    states = {r["order_ref"]: (r["status"], r["reason"]) for r in broker.spreads()}
    assert states["LOW"] == ("expired", "unfilled after 1 session(s)")
    assert states["GONE"] == ("cancelled", "cancelled by request")
    assert cancelled.status == "submitted"
    late = broker.place_spread(spread("LATE", "AAA"))
    assert late.status == "rejected" and "entry window passed" in late.error
    assert cash(engine) == pytest.approx(START - 10 * 100.0)  # the bracket's entry only
    assert {k: v.state for k, v in broker.find_refs(["LOW", "BIG", "BR"]).items()} == {
        "LOW": "expired",
        "BIG": "rejected",
        "BR": "filled",
    }


def test_still_a_broker(engine, broker):
    assert isinstance(broker, Broker)
    assert SimulatedBroker(engine).options == OptionsConfig()  # the settings' defaults


def test_limit_fill_intraday_waits_a_session_for_its_condition(engine, broker):
    # a put spread: the limit is reached at the day's high, and the same bar's low is through
    # the trigger; which came first a daily bar cannot say, so the close waits for the next bar
    bars = [(99, 101, 91, 95), (95, 96, 91.5, 93)]
    add_bars(engine, "PPP", bars)
    at_open, at_high = (combo("P", 100, 90, s, 7, bars) for s in (99, 101))
    limit = round((at_open + at_high) / 2, 2)
    assert at_high < limit < at_open
    broker.place_spread(spread("P1", "PPP", "P", (100.0, 90.0), n=1, debit=limit, trigger=92.0))
    run_days(broker, 8)
    fills = broker.spread_fills("P1")
    assert [(f["leg"], f["session"], f["price"]) for f in fills] == [
        ("entry", SESSIONS[7], limit),
        ("condition", SESSIONS[8], combo("P", 100, 90, 92, 8, bars, sale=True)),
    ]
    assert cash(engine) == pytest.approx(START + (fills[1]["price"] - limit) * 100, abs=0.005)

"""`journal` against the simulated broker, real Postgres and real Dagster materialisations.

Hand-built bars of TEST (helpers.seed_hand_built: one long signal on 2024-01-02, entry 100, stop
96, targets 104 / 106 / 108): the bracket fills at 100 on the 3rd; stop_updates moves the stop to
breakeven after the 4th, adds 200 shares at 103 after the 5th and trails the stop to 100.4, the
add-on fills at 103 on the 8th and the stop trails to 101.9; both are stopped there on the 9th.
The real-sample test runs brackets and a spread on the bundled real bars over four months.
"""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
from dagster import materialize
from sqlalchemy import create_engine, text

from breakout_assets.assets.journal import planned_trades
from breakout_assets.core.options import SpreadOrder
from breakout_assets.definitions import build_assets, build_resources
from breakout_assets.resources.broker.base import BracketOrder
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.resources.sql import query
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import new_database
from breakout_assets_tests.helpers import (
    RANGE_END,
    RANGE_START,
    read_table,
    run_assets,
    run_totals,
    seed_hand_built,
)

REF = "BRK-TEST-20240102-L"
BARS = [  # session, open, high, low, close
    ("2024-01-02", 99.0, 100.2, 98.8, 100.0),
    ("2024-01-03", 100.5, 101.0, 99.8, 100.6),
    ("2024-01-04", 100.7, 102.5, 100.4, 102.2),
    ("2024-01-05", 102.3, 103.4, 101.9, 103.0),
    ("2024-01-08", 103.1, 103.9, 102.6, 103.5),
    ("2024-01-09", 103.4, 103.6, 99.0, 99.5),
    ("2024-01-10", 99.6, 100.0, 99.1, 99.8),
]
DAYS = [b[0] for b in BARS[1:6]]
PLAN = f"""INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side, quantity, entry,
                stop, take_profit, risk_dollars, tier, confidence, status, reason)
            VALUES ({REF!r}, 'TEST:2024-01-02:long', '2024-01-02', 'TEST', 'long', 100, 100, 96,
                104, 400, 'GOOD', 0.61, 'sent', 'test')"""
JOURNAL = "SELECT * FROM journal ORDER BY trade_id"
EXCEPTIONS = "SELECT session, kind, ref, detail FROM journal_exceptions ORDER BY kind, ref"


def run(settings, names, first, last=None):
    """Materialise `names` for one session, or a range as ONE run (as a backfill does)."""
    assets = [a for a in build_assets(settings) if a.key.to_user_string() in names]
    return materialize(
        assets,
        resources=build_resources(settings),
        partition_key=None if last else first,
        tags={RANGE_START: first, RANGE_END: last} if last else None,
        instance=helpers.DEFAULT_INSTANCE,
    )


@pytest.fixture
def live(pg_server, tmp_path):
    url = new_database(pg_server)
    seed_hand_built(url, BARS, [PLAN])
    settings = load_settings(database_url=url, dry_run=False, kill_switch_path=tmp_path / "K")
    broker = build_resources(settings)["broker"].build()
    broker.place_bracket(
        BracketOrder(REF, "TEST", "long", 100, 100.0, 96.0, 104.0, date(2024, 1, 2))
    )
    return settings


def managed_days(settings) -> None:
    """The trading day as the pipeline runs it: management after each close, then the journal."""
    for day in DAYS:
        run(settings, ["stop_updates"], day)
        run(settings, ["journal"], day)


def table(settings, sql) -> pd.DataFrame:
    return read_table(settings.database_url, sql)


def test_a_managed_trade_and_its_add_on_move_to_the_session_of_their_latest_fill(live):
    run(live, ["stop_updates"], DAYS[0])
    run(live, ["journal"], DAYS[0])
    [row] = table(live, JOURNAL).itertuples()
    assert (row.trade_id, str(row.session), row.status, row.entry_price) == (
        REF,
        "2024-01-03",
        "open",
        100.0,
    )
    assert row.gross_pnl is None or math.isnan(row.gross_pnl)
    for day in DAYS[1:]:
        run(live, ["stop_updates"], day)
        run(live, ["journal"], day)
    rows = table(live, JOURNAL).set_index("trade_id")
    primary, add_on = rows.loc[REF], rows.loc[f"{REF}-ADD"]
    # by hand: stopped at the trailed 101.9; R on the initial risk (entry - initial stop)
    assert (str(primary.session), primary.status, primary.exit_reason) == (
        "2024-01-09",
        "closed",
        "trail",
    )
    assert primary.exit_price == 101.9 and primary.initial_risk == pytest.approx(400.0)
    assert primary.gross_pnl == pytest.approx(190.0)
    assert primary.r_gross == pytest.approx((101.9 - 100.0) / (100.0 - 96.0))
    assert (primary.book, primary.tier, primary.confidence, primary.fees) == (
        "primary",
        "GOOD",
        0.61,
        0.0,
    )
    # the add-on: 200 at 103 after the 5th, its initial stop the add_on action's 100
    assert (add_on.book, add_on.parent_ref, add_on.quantity, add_on.entry_price) == (
        "add_on",
        REF,
        200,
        103.0,
    )
    assert str(add_on.entry_session) == "2024-01-08" and add_on.initial_stop == 100.0
    assert add_on.r_gross == pytest.approx((101.9 - 103.0) / (103.0 - 100.0))
    assert add_on.exit_reason == "trail"
    # the totals are the broker's cash movement, to the cent
    cash = table(live, "SELECT cash, starting_cash FROM sim_account").iloc[0]
    assert round(rows["gross_pnl"].sum(), 2) == round(cash.cash - cash.starting_cash, 2) == -30.0
    assert (rows["net_pnl"] == rows["gross_pnl"]).all()  # the simulated broker charges nothing
    assert table(live, EXCEPTIONS).empty
    # the row left 2024-01-03 when the trade closed: re-running that session does not touch it
    before = table(live, JOURNAL)
    run(live, ["journal"], DAYS[0])
    pd.testing.assert_frame_equal(before, table(live, JOURNAL))


def test_a_range_run_equals_the_daily_runs_and_a_rerun_changes_nothing(live):
    managed_days(live)
    daily = table(live, JOURNAL)
    with create_engine(with_driver(live.database_url, "psycopg")).begin() as conn:
        conn.execute(text("DELETE FROM journal"))
    result = run(live, ["journal"], DAYS[0], DAYS[-1])
    ranged = table(live, JOURNAL)
    pd.testing.assert_frame_equal(
        daily.drop(columns="recorded_at"), ranged.drop(columns="recorded_at")
    )
    totals = helpers.run_totals(result, "journal")
    assert (totals["trades"], totals["closed"], totals["gross_pnl"]) == (2, 2, -30.0)
    assert totals["exits"] == {"trail": 2} and totals["exceptions"] == 0
    assert f"| {REF}-ADD | add_on " in totals["closed_trades"]
    run(live, ["journal"], DAYS[0], DAYS[-1])
    run(live, ["journal"], DAYS[-1])
    pd.testing.assert_frame_equal(ranged, table(live, JOURNAL))  # recorded_at included


def test_a_fill_without_a_plan_and_a_plan_without_fills_are_reported_not_dropped(live):
    stray = "MANUAL-TEST-1"
    build_resources(live)["broker"].build().place_bracket(
        BracketOrder(stray, "TEST", "long", 10, 100.5, 98.0, 102.4, date(2024, 1, 2))
    )
    lost = "BRK-TEST-20240103-L"  # sent, but it never reached the broker
    with create_engine(with_driver(live.database_url, "psycopg")).begin() as conn:
        conn.execute(
            text("""INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side, quantity,
                        entry, stop, take_profit, risk_dollars, status, reason)
                    VALUES (:ref, 'TEST:2024-01-03:long', '2024-01-03', 'TEST', 'long', 50,
                        101, 99, 105, 100, 'sent', 'test')"""),
            {"ref": lost},
        )
    result = run(live, ["journal"], DAYS[0], DAYS[1])
    assert result.success
    found = table(live, EXCEPTIONS)
    # the stray bracket filled at the open on the 3rd and took its profit on the 4th
    assert found[["session", "kind", "ref"]].astype(str).values.tolist() == [
        ["2024-01-03", "fill_without_plan", stray],
        ["2024-01-04", "fill_without_plan", stray],
        ["2024-01-04", "plan_without_fills", lost],
    ]
    assert "BUY 10 TEST @ 100.5000 on 2024-01-03" in found["detail"][0]
    assert "SELL 10 TEST @ 102.4000 on 2024-01-04" in found["detail"][1]
    assert "the broker has no order" in found["detail"][2]
    assert run_totals(result, "journal")["exceptions"] == 3
    assert list(table(live, JOURNAL)["trade_id"]) == [REF]  # the stray fills are no trade of ours
    run(live, ["journal"], DAYS[1])  # a re-run reports the same, once
    pd.testing.assert_frame_equal(found, table(live, EXCEPTIONS))


# --- real bars -----------------------------------------------------------------------------------

SIGNAL = date(2023, 11, 1)
SPREAD = "BRK-{t}-20231101-L-SPRD"


def _plan_real_trades(settings) -> list[str]:
    """Brackets on twelve bundled tickers (longs and shorts alternately, entry at the signal
    close, stop 4% and take-profit 6% away), one call spread, all sent to the simulated broker."""
    engine = create_engine(with_driver(settings.database_url, "psycopg"))
    with engine.begin() as conn:
        closes = conn.execute(
            text(
                "SELECT ticker, close FROM market_bars WHERE session = :s ORDER BY ticker LIMIT 12"
            ),
            {"s": SIGNAL},
        ).all()
    broker = build_resources(settings)["broker"].build()
    refs = []
    with engine.begin() as conn:
        for i, (ticker, close) in enumerate(closes):
            side = "long" if i % 2 == 0 else "short"
            sign = 1 if side == "long" else -1
            entry = round(close, 2)
            stop, take = round(entry * (1 - sign * 0.04), 2), round(entry * (1 + sign * 0.06), 2)
            quantity = int(5_000 // entry)
            ref = f"BRK-{ticker}-20231101-{side[0].upper()}"
            conn.execute(
                text("""INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side,
                            quantity, entry, stop, take_profit, risk_dollars, tier, confidence,
                            status, reason)
                        VALUES (:ref, :sid, :s, :t, :side, :q, :e, :stop, :tp, :risk, 'GOOD',
                            0.6, 'sent', 'test')"""),
                dict(
                    ref=ref,
                    sid=f"{ticker}:{SIGNAL}:{side}",
                    s=SIGNAL,
                    t=ticker,
                    side=side,
                    q=quantity,
                    e=entry,
                    stop=stop,
                    tp=take,
                    risk=quantity * abs(entry - stop),
                ),
            )
            refs.append(ref)
        ticker, close = closes[0]
        strike = float(round(close))
        width = float(max(1, round(close * 0.1)))
        spread = SpreadOrder(
            SPREAD.format(t=ticker),
            ticker,
            "C",
            date(2023, 12, 15),
            strike,
            strike + width,
            2,
            round(width * 0.6, 2),
            round(close * 1.08, 2),
            SIGNAL,
        )
        conn.execute(
            text("""INSERT INTO option_spreads (order_ref, signal_id, session, ticker, side,
                        option_right, expiry, long_strike, short_strike, net_debit, width,
                        contracts, max_loss, max_gain, ev, confidence, close_trigger, status,
                        reason, mode, sent_at)
                    VALUES (:ref, :sid, :s, :t, 'long', 'C', :x, :k1, :k2, :d, :w, 2, :loss,
                        :gain, 0.1, 0.6, :trig, 'sent', 'test', 'paper', now())"""),
            dict(
                ref=spread.order_ref,
                sid=f"{ticker}:{SIGNAL}:long",
                s=SIGNAL,
                t=ticker,
                x=spread.expiry,
                k1=strike,
                k2=strike + width,
                d=spread.limit_debit,
                w=width,
                loss=spread.limit_debit * 200,
                gain=(width - spread.limit_debit) * 200,
                trig=spread.close_trigger,
            ),
        )
    for ref in refs:
        row = table(settings, f"SELECT * FROM trade_plan WHERE order_ref = '{ref}'").iloc[0]
        placed = broker.place_bracket(
            BracketOrder(
                ref,
                row.ticker,
                row.side,
                int(row.quantity),
                row.entry,
                row.stop,
                row.take_profit,
                SIGNAL,
            )
        )
        assert placed.status == "submitted", placed
    assert broker.place_spread(spread).status == "submitted"
    engine.dispose()
    return [*refs, spread.order_ref]


def test_on_real_bars_the_journal_is_the_simulated_brokers_cash_to_the_cent(settings):
    run_assets(settings, ["market_bars"], "2023-09-01", "2024-01-31")
    refs = _plan_real_trades(settings)
    result = run(settings, ["journal"], "2023-11-02", "2024-01-31")
    assert result.success
    journal = table(settings, JOURNAL).set_index("trade_id")
    cash = table(
        settings,
        """SELECT order_ref, sum(cash_change) AS cash, count(*) AS fills FROM (
               SELECT order_ref, cash_change FROM sim_fills
               UNION ALL SELECT order_ref, cash_change FROM sim_spread_fills) f
           GROUP BY order_ref""",
    ).set_index("order_ref")
    assert set(journal.index) == set(cash.index) and set(journal.index) <= set(refs)
    assert len(journal) >= 8 and (journal["status"] == "closed").all()
    assert set(journal["book"]) == {"primary", "option_spread"}
    for ref, trade in journal.iterrows():
        assert round(trade.gross_pnl, 2) == round(cash.loc[ref, "cash"], 2), ref
    account = table(settings, "SELECT cash, starting_cash FROM sim_account").iloc[0]
    assert round(journal["gross_pnl"].sum(), 2) == round(account.cash - account.starting_cash, 2)
    assert round(run_totals(result, "journal")["gross_pnl"], 2) == round(
        account.cash - account.starting_cash, 2
    )
    stocks = journal[journal["book"] == "primary"]
    sign = stocks["side"].map({"long": 1, "short": -1})
    by_hand = (
        sign
        * (stocks["exit_price"] - stocks["entry_price"])
        / (stocks["entry_price"] - stocks["initial_stop"]).abs()
    )
    pd.testing.assert_series_equal(stocks["r_gross"], by_hand, check_names=False)
    assert set(stocks["exit_reason"]) <= {"target", "stop", "expiry"}
    [spread] = journal[journal["book"] == "option_spread"].itertuples()
    assert spread.quantity == 200 and spread.initial_risk == pytest.approx(spread.entry_price * 200)
    assert spread.exit_reason in {"target", "settlement"}
    unfilled = set(refs) - set(journal.index)  # entries never reached: expired, nothing missing
    expired = table(settings, "SELECT order_ref FROM sim_orders WHERE status = 'expired'")
    assert unfilled == set(expired["order_ref"])
    assert table(settings, EXCEPTIONS).empty


def test_every_book_is_planned_with_its_ref_quantity_parent_and_deadline(database_url):
    """The plans the journal matches fills to: a sent primary, its applied add-on, both legs of
    a sent fade (the OCA group is the fade's ref) and a sent spread (in shares); plans not sent,
    and a dry-run add-on, are none."""
    seed_hand_built(database_url, BARS, [PLAN])
    with create_engine(with_driver(database_url, "psycopg")).begin() as conn:
        conn.execute(
            text(f"""
            INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side, quantity, entry,
                stop, take_profit, risk_dollars, status, reason)
            VALUES ('BRK-TEST-20240103-L', 'TEST:2024-01-03:long', '2024-01-03', 'TEST', 'long',
                10, 100, 96, 104, 40, 'approved', 'not sent');
            INSERT INTO stop_updates (order_ref, session, action, old_stop, new_stop,
                old_quantity, new_quantity, old_take_profit, new_take_profit, price, reason,
                dry_run, status)
            VALUES ({REF!r}, '2024-01-05', 'add_on', 100, 100, 100, 300, 104, 104, 103, 't',
                    false, 'applied'),
                   ('BRK-TEST-20240103-L', '2024-01-05', 'add_on', 96, 96, 10, 20, 104, 104,
                    103, 't', true, 'dry_run');
            INSERT INTO opposing_orders (order_ref, signal_id, session, signal_session, ticker,
                side, confidence, alert_level, alert_quantity, limit_level, limit_quantity, stop,
                take_profit, risk_dollars, valid_sessions, status, reason, sent_at)
            VALUES ('OPP-TEST-20240102-S', 'TEST:2024-01-02:long', '2024-01-04', '2024-01-02',
                'TEST', 'short', 0.42, 101.0, 50, 102.5, 60, 104.5, 96, 175, 2, 'sent', 't',
                now());
            INSERT INTO option_spreads (order_ref, signal_id, session, ticker, side,
                option_right, expiry, long_strike, short_strike, net_debit, width, contracts,
                max_loss, max_gain, ev, confidence, close_trigger, status, reason, mode, sent_at)
            VALUES ('{REF}-SPRD', 'TEST:2024-01-02:long', '2024-01-02', 'TEST', 'long', 'C',
                '2024-02-16', 100, 105, 2.15, 5, 3, 645, 855, 0.3, 0.61, 104, 'sent', 't',
                'paper', now());
            """)
        )
        frame = pd.read_sql(query("journal.plans"), conn, params={"multiplier": 100})
    plans = {p.trade_id: p for p in planned_trades(frame, valid_sessions=1)}
    assert sorted(plans) == [
        REF,
        f"{REF}-ADD",
        f"{REF}-SPRD",
        "OPP-TEST-20240102-S-ALT",
        "OPP-TEST-20240102-S-LIM",
    ]
    add_on, spread = plans[f"{REF}-ADD"], plans[f"{REF}-SPRD"]
    assert (add_on.book, add_on.parent_ref, add_on.quantity, add_on.initial_stop) == (
        "add_on",
        REF,
        200,
        100.0,
    )
    assert add_on.entry_deadline == date(2024, 1, 8) and add_on.tier == "GOOD"
    assert (spread.book, spread.quantity, spread.parent_ref, spread.initial_stop) == (
        "option_spread",
        300,
        REF,
        None,
    )
    alert, limit = plans["OPP-TEST-20240102-S-ALT"], plans["OPP-TEST-20240102-S-LIM"]
    assert (alert.quantity, limit.quantity, alert.side, alert.initial_stop) == (
        50,
        60,
        "short",
        104.5,
    )
    assert alert.oca_group == limit.oca_group == alert.parent_ref == "OPP-TEST-20240102-S"
    assert alert.entry_deadline == date(2024, 1, 8)  # two sessions after the 4th
    assert alert.confidence == 0.42 and plans[REF].entry_deadline == date(2024, 1, 3)

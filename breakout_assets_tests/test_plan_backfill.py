"""A backfill of `trade_plan` sizes each session against the account as it stood then (14.6).

The story, on hand-built bars and the real simulated broker (Postgres): an account of $100k
buys GROW, which runs up until its take-profit lifts equity about six-fold. Along the way three
sessions are planned live, each right after its close (the broker brought up to that close),
one plan is approved and sent, another approved only, a working entry and a moved stop are in
the account. Afterwards the whole range is backfilled as ONE Dagster run: every session must be
sized exactly as it was live (the account then, not today's equity), decided plans must stay as
they are and count against their session's caps, and the open-risk cap (6%) must hold per
session. A broker without account history (IBKR) refuses such a backfill and changes nothing.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import create_engine, text

from breakout_assets.core.planning import order_ref
from breakout_assets.partitions import nyse_sessions
from breakout_assets.resources.broker.base import BracketOrder
from breakout_assets.resources.broker.simulated import SimulatedBroker
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.settings import load_settings
from breakout_assets_tests.helpers import read_table, run_assets, run_totals

DAYS = nyse_sessions(date(2024, 1, 2), date(2024, 2, 16))  # 33 sessions
S1, S2, S3, LIVE = DAYS[2], DAYS[8], DAYS[25], DAYS[-1]  # planned sessions; LIVE is the newest
SIGNAL_TICKERS = ("AAA", "BBB", "CCC", "DDD")  # equal EV: planned in this order
GROW_SHARES, GROW_TP = 100, 5000.0
PLANS = "SELECT * FROM trade_plan ORDER BY order_ref"


def _grow_close(k: int) -> float:
    """GROW: 100 until DAYS[2], then +300 a session (its take-profit trades on DAYS[19])."""
    return 100.0 + 300.0 * max(k - 2, 0)


def _bars() -> list[dict]:
    rows = []
    for k, day in enumerate(DAYS):
        close = _grow_close(k)
        prev = _grow_close(k - 1) if k else close
        rows.append(
            dict(
                ticker="GROW",
                session=day,
                open=prev,
                high=close + 1,
                low=min(prev, close) - 0.5,
                close=close,
            )
        )
        for ticker in SIGNAL_TICKERS:  # flat: a limit at 50 fills, the stop and target never
            rows.append(dict(ticker=ticker, session=day, open=50, high=51, low=49.5, close=50))
        rows.append(dict(ticker="WWW", session=day, open=100, high=101, low=99.5, close=100))
    return rows


def _seed(url: str) -> None:
    """Bars of every ticker, and four ULTRA PREMIUM long signals on each planned session
    (entry 50, stop 40: R = 10; target 100: R:R 5; confidence 0.6: EV 2.6 R)."""
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO market_bars (ticker, session, open, high, low, close,
                             volume) VALUES (:ticker, :session, :open, :high, :low, :close,
                             1000000)"""),
            _bars(),
        )
        for session in (S1, S2, S3, LIVE):
            for ticker in SIGNAL_TICKERS:
                signal_id = f"{ticker}:{session}:long"
                conn.execute(
                    text("""
                    INSERT INTO breakout_signals (signal_id, ticker, session, side, rally_start,
                        rally_end, consol_start, consol_end, rally_high, rally_low, move_height,
                        entry, stop, stop_rule, atr, atr_window, target_50, target_75,
                        target_100, booked_target, adjusted_entry, risk, reward_risk)
                    VALUES (:id, :ticker, :session, 'long', '2023-10-02', '2023-10-20',
                        '2023-10-23', '2023-12-29', 49, 30, 19, 50, 40, 'atr', 5, 30, 60, 65,
                        70, 100, false, 10, 5)"""),
                    {"id": signal_id, "ticker": ticker, "session": session},
                )
                conn.execute(
                    text("""
                    INSERT INTO signal_scores (signal_id, session, side, experiment_id,
                        confidence, expected_value, tier, decision, reason, regime,
                        gross_expected_value, cost_r)
                    VALUES (:id, :session, 'long', 'test', 0.6, 2.6, 'ULTRA PREMIUM', 'trade',
                        'EV 2.6', '{}', 2.6, 0)"""),
                    {"id": signal_id, "session": session},
                )
    engine.dispose()


def _execute(url: str, sql: str, **params) -> None:
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.begin() as conn:
        conn.execute(text(sql), params)
    engine.dispose()


def _ref(ticker: str, session: date) -> str:
    return order_ref(ticker, session, "long")


@pytest.fixture
def history(database_url):
    """The live story. Returns (settings, live snapshots per planned session, plans as sized
    live); the simulated account has processed every session by the end."""
    settings = load_settings(database_url=database_url)
    _seed(database_url)
    broker = SimulatedBroker(create_engine(with_driver(database_url, "psycopg")))
    broker.place_bracket(
        BracketOrder(
            "GROW-1", "GROW", "long", GROW_SHARES, 100.0, 99.0, GROW_TP, DAYS[0], valid_sessions=1
        )
    )
    snapshots, planned = {}, []
    for k, day in enumerate(DAYS[1:], start=1):
        broker.process_session(day)  # the account after this session's close
        if k == 6:  # a stop moved after the close of DAYS[6]; an entry that keeps working
            broker.modify_stop("GROW-1", 150.0)
            broker.place_bracket(
                BracketOrder("WWW-1", "WWW", "long", 100, 80.0, 70.0, 120.0, day, valid_sessions=5)
            )
        if day not in (S1, S2, S3, LIVE):
            continue
        snapshots[day] = broker.account()
        run_assets(settings, ["trade_plan"], str(day))  # the live day: one partition
        planned.append(
            read_table(database_url, f"SELECT * FROM trade_plan WHERE session = '{day}'")
        )
        first = _ref(SIGNAL_TICKERS[0], day)
        if day == S1:  # approved and sent: a bracket at the broker, working from DAYS[3]
            plan = planned[-1].set_index("order_ref").loc[first]
            broker.place_bracket(
                BracketOrder(
                    first,
                    plan.ticker,
                    "long",
                    int(plan.quantity),
                    plan.entry,
                    plan.stop,
                    plan.take_profit,
                    day,
                )
            )
            _execute(
                database_url,
                "UPDATE trade_plan SET status = 'sent', decided_by = 'test',"
                " decided_at = now() WHERE order_ref = :ref",
                ref=first,
            )
        if day == S2:  # approved, not sent (dry-run)
            _execute(
                database_url,
                "UPDATE trade_plan SET status = 'approved', decided_by = "
                "'test', decided_at = now() WHERE order_ref = :ref",
                ref=first,
            )
    live = read_table(database_url, PLANS)
    return settings, snapshots, live


def test_a_backfill_sizes_each_session_against_the_account_then(history):
    settings, snapshots, live = history
    url = settings.database_url
    equity = {day: s.equity for day, s in snapshots.items()}
    assert equity[S1] == pytest.approx(100_000.0)  # GROW bought at 100, still at 100
    assert equity[S3] > 5.5 * equity[S1]  # GROW's take-profit: today's equity is ~6x
    sized = live.set_index("order_ref")
    assert sized.loc[_ref("AAA", S1), "quantity"] == 250  # 2.5% of $100k over R = 10
    assert sized.loc[_ref("AAA", S1), "status"] == "sent"
    assert sized.loc[_ref("AAA", S2), "status"] == "approved"

    result = run_assets(settings, ["trade_plan"], str(S1), str(LIVE))  # ONE run, every session
    after = read_table(url, PLANS).set_index("order_ref")

    # every plan is sized exactly as on its live day, decided ones untouched
    assert sorted(after.index) == sorted(sized.index)
    for column in ("quantity", "risk_dollars", "status", "reason"):
        assert after[column].to_dict() == sized[column].to_dict(), column
    assert (after.loc[after["status"] == "pending_approval", "quantity"] > 0).any()
    # the open-risk cap holds per session, against that session's equity and open risk
    planned = after[after["status"].isin(["pending_approval", "approved", "sent"])]
    for day, snapshot in snapshots.items():
        risk = planned.loc[planned["session"] == day, "risk_dollars"].sum()
        assert snapshot.open_risk + risk <= 0.06 * snapshot.equity + 1e-6, day
        assert risk > 0, day
    # the cap binds on the first session: AAA and BBB whole, CCC cut, DDD nothing
    first = after[after["session"] == S1].sort_values("ticker")
    assert list(first["quantity"]) == [250, 250, 90, 0]  # 6% - GROW's $100 - 2 x $2,500
    assert "max_open_risk" in first["reason"].iloc[2] and first["status"].iloc[3] == "skipped"

    totals = run_totals(result, "trade_plan")  # a range: the totals are the run's observation
    assert totals["sessions_sized_live"] == 1  # LIVE: the account has reached it
    assert totals["sessions_sized_as_of_then"] == len(DAYS[2:-1])
    assert totals["equity_then_min"] == pytest.approx(equity[S1], abs=0.01)


def test_the_account_history_matches_what_the_broker_said_then(history):
    from breakout_assets.resources.account_history import simulated_accounts_as_of
    from breakout_assets.resources.postgres import PostgresResource

    settings, snapshots, _ = history
    postgres = PostgresResource(database_url=settings.database_url, local_data_dir="unused")
    with postgres.transaction() as conn:
        then = simulated_accounts_as_of(conn, sorted(snapshots))
    # S2 holds every kind of state: a position bought at S1's plan, GROW with its moved stop,
    # WWW's entry still working (reserved cash, risk to its stop)
    assert (
        snapshots[S2].open_positions == 2
        and snapshots[S2].buying_power < snapshots[S2].excess_liquidity
    )
    for day, snapshot in snapshots.items():
        rebuilt = then[day]
        for field in ("equity", "buying_power", "excess_liquidity", "open_risk"):
            assert getattr(rebuilt, field) == pytest.approx(getattr(snapshot, field), abs=1e-6), (
                day,
                field,
            )
        assert rebuilt.open_positions == snapshot.open_positions, day


def test_a_broker_without_history_refuses_a_backfill_and_changes_nothing(history):
    settings, _, live = history
    ibkr = settings.model_copy(update={"broker": "ibkr", "ibkr_account": "DU000000"})
    before = read_table(settings.database_url, PLANS)
    result = run_assets(ibkr, ["trade_plan"], str(S1), str(S3), raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    message = str(error.cause or error)
    assert "BREAKOUT_BROKER=ibkr keeps no account history" in message
    assert "before the broker's current session" in message  # IBKR's: the wall clock's
    assert f"({S1} to {S3})" in message
    assert read_table(settings.database_url, PLANS).equals(before)


def test_decided_plans_count_once_against_their_session():
    """An approved plan is in no broker account yet: it counts everywhere. A sent one is at the
    broker, so the live account already holds it; an account from history predates it."""
    from breakout_assets.core.planning import (
        Exposure,
        KeptPlan,
        ScoredSignal,
        plan_sessions,
    )
    from breakout_assets.core.sizing import Account, SizingConfig

    day = S1
    account = Account(
        equity=100_000.0,
        buying_power=100_000.0,
        open_risk=0.0,
        open_positions=0,
        excess_liquidity=100_000.0,
    )
    signals = [
        ScoredSignal(
            f"{t}:{day}:long",
            t,
            day,
            "long",
            50.0,
            40.0,
            100.0,
            5.0,
            0.6,
            2.6,
            "ULTRA PREMIUM",
            "trade",
            "EV 2.6",
        )
        for t in ("EEE", "FFF")
    ]
    kept = [
        KeptPlan(day, "approved", Exposure(5_000.0, 25_000.0)),
        KeptPlan(day, "sent", Exposure(500.0, 2_500.0)),
        KeptPlan(day, "rejected", Exposure(9_000.0, 9_000.0)),
    ]
    live = plan_sessions([day], signals, kept, {}, account, SizingConfig())
    then = plan_sessions([day], signals, kept, {day: account}, None, SizingConfig())
    assert [p.quantity for p in live] == [100, 0]  # 6% x 100k - 5,000 approved = 1,000
    assert [p.quantity for p in then] == [50, 0]  # ... - 500 sent = 500
    assert all("max_open_risk" in p.reason for p in live + then)

"""Promotion of the options book (issue 11): `breakout options status | promote | rollback` and
the live gate the sending asset calls, on real Postgres.

Closed paper spreads are written straight into the simulated broker's combo tables (how they
get there is test_simulated_spreads.py): a spread bought at 2.00 and sold at 3.00 is +0.5R, one
expired worthless is -1R.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from breakout_assets.cli import main
from breakout_assets.options_admin import (
    OptionsPromotionError,
    live_allowed,
    paper_figures,
    promote,
    require_live_promotion,
    rollback,
)
from breakout_assets.resources.local_postgres import with_driver

INSERT_ORDER = text(
    "INSERT INTO sim_spread_orders (order_ref, seq, ticker, option_right, expiry, long_strike, "
    "short_strike, contracts, limit_debit, close_trigger, signal_session, valid_sessions, "
    "status, broker_order_ids) VALUES (:ref, nextval('sim_order_seq'), 'AAA', 'C', "
    "'2024-06-21', 100, 110, 2, :debit, 110, '2024-03-01', 1, :status, ARRAY['x', 'y'])"
)
INSERT_FILL = text(
    "INSERT INTO sim_spread_fills (order_ref, leg, session, price, contracts, spot, vol, "
    "cash_change) VALUES (:ref, :leg, :session, :price, 2, 100, 0.3, :cash)"
)


@pytest.fixture
def engine(database_url):
    engine = create_engine(with_driver(database_url, "psycopg"))
    yield engine
    engine.dispose()


def add_spreads(engine, *exits: float, debit: float = 2.0, open_too: bool = False) -> None:
    """One closed paper spread per exit price (entered at `debit`), plus one still held."""
    with engine.begin() as conn:
        start = conn.execute(text("SELECT count(*) FROM sim_spread_orders")).scalar_one()
        for i, price in enumerate(exits, start):
            ref = f"SPR-{i}"
            conn.execute(INSERT_ORDER, {"ref": ref, "debit": debit, "status": "closed"})
            conn.execute(
                INSERT_FILL,
                dict(ref=ref, leg="entry", session=date(2024, 3, 4), price=debit, cash=-400.0),
            )
            conn.execute(
                INSERT_FILL,
                dict(
                    ref=ref,
                    leg="condition" if price else "expiry",
                    session=date(2024, 3, 5) + timedelta(days=i),
                    price=price,
                    cash=price * 200,
                ),
            )
        if open_too:  # a held spread is not part of the forward test
            conn.execute(INSERT_ORDER, {"ref": "HELD", "debit": debit, "status": "filled"})
            conn.execute(
                INSERT_FILL,
                dict(ref="HELD", leg="entry", session=date(2024, 3, 4), price=debit, cash=-400.0),
            )


def promotions(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT action, decided_by, figures FROM options_promotions ORDER BY id")
            )
        ]


def test_too_few_closed_spreads_are_refused_and_nothing_is_recorded(engine):
    add_spreads(engine, 3.0, 4.0, open_too=True)
    with engine.begin() as conn:
        assert paper_figures(conn).closed == 2
        with pytest.raises(OptionsPromotionError, match=r"2 closed paper spread\(s\), 3 needed"):
            promote(conn, "alice", min_closed=3)
    assert promotions(engine) == []


def test_negative_expectancy_is_refused(engine):
    add_spreads(engine, 3.0, 0.0, 0.0, 2.5)  # +0.5, -1, -1, +0.25: mean -0.3125R
    with engine.begin() as conn:
        figures = paper_figures(conn)
        assert figures.closed == 4 and figures.expectancy_r == pytest.approx(-0.3125)
        assert figures.win_rate == 0.5
        with pytest.raises(OptionsPromotionError, match=r"expectancy -0\.312R, positive needed"):
            promote(conn, "alice", min_closed=3)
    assert promotions(engine) == []


def test_promotion_passes_and_records_who_when_and_the_figures(engine):
    add_spreads(engine, 3.0, 0.0, 4.0)  # +0.5, -1, +1: mean +1/6 R
    with engine.begin() as conn:
        assert not live_allowed(conn)
        row = promote(conn, "alice", min_closed=3)
    assert row["action"] == "promote" and row["decided_by"] == "alice"
    assert row["decided_at"] is not None
    figures = row["figures"]
    assert figures["closed"] == 3 and figures["min_closed_for_promotion"] == 3
    assert figures["expectancy_r"] == pytest.approx(1 / 6)
    assert figures["win_rate"] == pytest.approx(2 / 3)
    assert figures["last_exit"] == "2024-03-07"
    with engine.begin() as conn:
        assert live_allowed(conn)
        require_live_promotion(conn, "live")  # passes: promoted
        with pytest.raises(OptionsPromotionError, match="already promoted"):
            promote(conn, "bob", min_closed=3)
    assert [p[:2] for p in promotions(engine)] == [("promote", "alice")]


def test_rollback_returns_to_paper_with_a_record(engine):
    add_spreads(engine, 3.0, 3.0)
    with engine.begin() as conn:
        with pytest.raises(OptionsPromotionError, match="not promoted"):
            rollback(conn, "bob")
        promote(conn, "alice", min_closed=2)
        row = rollback(conn, "bob")
        assert row["action"] == "rollback" and row["figures"]["closed"] == 2
        assert not live_allowed(conn)
        require_live_promotion(conn, "paper")  # paper needs nothing
        with pytest.raises(OptionsPromotionError, match="rolled back to paper by bob") as err:
            require_live_promotion(conn, "live")
    assert "`breakout options promote`" in str(err.value)
    assert [p[:2] for p in promotions(engine)] == [("promote", "alice"), ("rollback", "bob")]


def test_live_without_a_promotion_record_is_refused_naming_the_command(engine):
    with engine.begin() as conn:
        require_live_promotion(conn, "paper")
        require_live_promotion(conn, "off")
        with pytest.raises(OptionsPromotionError) as err:
            require_live_promotion(conn, "live")
    message = str(err.value)
    assert "no promotion record" in message and "Run `breakout options promote`" in message


def test_cli_status_promote_rollback(engine, database_url, monkeypatch):
    monkeypatch.setenv("USER", "carol")
    env = {
        "BREAKOUT_DATABASE_URL": database_url,
        "BREAKOUT_OPTIONS__MIN_CLOSED_FOR_PROMOTION": "2",
        "BREAKOUT_OPTIONS__MODE": "live",
    }
    cli = CliRunner(env=env)
    add_spreads(engine, 3.0)
    status = cli.invoke(main, ["options", "status"])
    assert status.exit_code == 0, status.output
    assert "mode: live" in status.output and "LIVE REFUSED" in status.output
    assert "1 closed spread(s) (need 2)" in status.output and "promotable: no" in status.output
    refused = cli.invoke(main, ["options", "promote"])
    assert refused.exit_code == 1 and "1 closed paper spread(s), 2 needed" in refused.output
    add_spreads(engine, 2.5)
    promoted = cli.invoke(main, ["options", "promote"])
    assert promoted.exit_code == 0, promoted.output
    assert "promoted by carol" in promoted.output and "expectancy +0.375R" in promoted.output
    assert "promotion: promote by carol" in cli.invoke(main, ["options", "status"]).output
    back = cli.invoke(main, ["options", "rollback", "--by", "dave"])
    assert back.exit_code == 0 and "back to paper" in back.output
    assert [p[:2] for p in promotions(engine)] == [("promote", "carol"), ("rollback", "dave")]
    assert "LIVE REFUSED" in cli.invoke(main, ["options", "status"]).output

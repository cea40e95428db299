"""`breakout approve|reject` and the `approve_trades` job decide option spreads (issue 11) the
same way, in the same call, as trade plans: only pending ones, recording who and when."""

from __future__ import annotations

from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from breakout_assets.approvals import approve_trades, decide
from breakout_assets.cli import main
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.resources.postgres import PostgresResource

SESSION, OTHER = date(2024, 3, 1), date(2024, 3, 4)
INSERT_SPREAD = text(
    "INSERT INTO option_spreads (order_ref, signal_id, session, ticker, side, option_right, "
    "expiry, long_strike, short_strike, net_debit, width, contracts, max_loss, max_gain, ev, "
    "confidence, close_trigger, status, reason, mode) VALUES (:ref, :ref, :session, 'AAA', "
    ":side, :right, '2024-04-19', :long, :short, 2.5, 10, 4, 1000, 3000, 0.5, 0.6, :trigger, "
    ":status, 'planned', 'paper')"
)
INSERT_SKIP = text(
    "INSERT INTO option_spreads (order_ref, signal_id, session, ticker, side, status, reason, "
    "mode) VALUES (:ref, :ref, :session, 'BBB', 'long', 'skipped', 'EV <= 0', 'paper')"
)
INSERT_PLAN = text(
    "INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side, quantity, entry, stop, "
    "take_profit, risk_dollars, status, reason) VALUES (:ref, :ref, :session, 'AAA', 'long', "
    "10, 100, 96, 104, 40, 'pending_approval', 'planned')"
)


@pytest.fixture
def engine(database_url):
    engine = create_engine(with_driver(database_url, "psycopg"))
    with engine.begin() as conn:
        for ref, session, side in (
            ("SPR-L", SESSION, "long"),
            ("SPR-S", SESSION, "short"),
            ("SPR-NEXT", OTHER, "long"),
        ):
            long_, short, right, trigger = (
                (100, 110, "C", 110) if side == "long" else (100, 90, "P", 90)
            )
            conn.execute(
                INSERT_SPREAD,
                dict(
                    ref=ref,
                    session=session,
                    side=side,
                    right=right,
                    long=long_,
                    short=short,
                    trigger=trigger,
                    status="pending_approval",
                ),
            )
        conn.execute(INSERT_SKIP, {"ref": "SPR-SKIP", "session": SESSION})
        conn.execute(INSERT_PLAN, {"ref": "PLAN-1", "session": SESSION})
    yield engine
    engine.dispose()


def spreads(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT order_ref, status, decided_by, decided_at FROM option_spreads")
        )
        return {r.order_ref: (r.status, r.decided_by, r.decided_at is not None) for r in rows}


def test_cli_approves_and_rejects_spreads_like_plans(engine, database_url):
    cli = CliRunner(env={"BREAKOUT_DATABASE_URL": database_url})
    ok = cli.invoke(main, ["approve", str(SESSION), "--ref", "SPR-L", "--by", "alice"])
    assert ok.exit_code == 0, ok.output
    assert "approved 1 plan(s) of 2024-03-01: SPR-L" in ok.output
    twice = cli.invoke(main, ["reject", str(SESSION), "--ref", "SPR-L"])
    assert twice.exit_code != 0 and "already decided" in twice.output
    skipped = cli.invoke(main, ["approve", str(SESSION), "--ref", "SPR-SKIP"])
    assert skipped.exit_code != 0 and "not pending approval" in skipped.output
    # --all decides the session's trade plans and spreads together, and no other session's
    rest = cli.invoke(main, ["reject", str(SESSION), "--all", "--by", "bob"])
    assert rest.exit_code == 0, rest.output
    assert "rejected 2 plan(s)" in rest.output and {"PLAN-1", "SPR-S"} <= set(
        rest.output.strip().split(": ")[-1].split(", ")
    )
    assert spreads(engine) == {
        "SPR-L": ("approved", "alice (cli)", True),
        "SPR-S": ("rejected", "bob (cli)", True),
        "SPR-NEXT": ("pending_approval", None, False),
        "SPR-SKIP": ("skipped", None, False),
    }


def test_decide_and_the_approval_job_cover_spreads(engine, database_url):
    postgres = PostgresResource(database_url=database_url, local_data_dir="unused")
    assert sorted(decide(postgres, SESSION, True, "test", ["SPR-S", "PLAN-1"])) == [
        "PLAN-1",
        "SPR-S",
    ]
    result = approve_trades.execute_in_process(
        resources={"postgres": postgres},
        run_config={
            "ops": {
                "decide_trade_plans": {
                    "config": {
                        "session": str(OTHER),
                        "approve": False,
                        "all_plans": True,
                        "decided_by": "carol",
                    }
                }
            }
        },
    )
    assert result.success
    decided = spreads(engine)
    assert decided["SPR-S"] == ("approved", "test", True)
    assert decided["SPR-NEXT"][0] == "rejected"
    assert decided["SPR-NEXT"][1].startswith("carol (dagster run ")


def test_the_table_refuses_an_unsized_or_inverted_spread(engine):
    from sqlalchemy.exc import IntegrityError

    bad = [
        dict(long=100, short=110, right="C", trigger=110, status="pending_approval", side="short"),
        dict(long=110, short=100, right="C", trigger=110, status="pending_approval", side="long"),
    ]
    for i, row in enumerate(bad):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(INSERT_SPREAD, dict(ref=f"BAD-{i}", session=SESSION, **row))
    with pytest.raises(IntegrityError), engine.begin() as conn:  # debit >= width
        conn.execute(
            text(
                "INSERT INTO option_spreads (order_ref, signal_id, session, ticker, side, "
                "option_right, expiry, long_strike, short_strike, net_debit, width, contracts, "
                "max_loss, max_gain, close_trigger, status, reason, mode) VALUES ('BAD-D', "
                "'BAD-D', '2024-03-01', 'AAA', 'long', 'C', '2024-04-19', 100, 105, 5, 5, 1, "
                "500, 0, 105, 'pending_approval', 'x', 'paper')"
            )
        )
    with pytest.raises(IntegrityError), engine.begin() as conn:  # no contracts, not a skip
        conn.execute(
            text(
                "INSERT INTO option_spreads (order_ref, signal_id, session, ticker, side, status, "
                "reason, mode) VALUES ('BAD-N', 'BAD-N', '2024-03-01', 'AAA', 'long', "
                "'pending_approval', 'x', 'paper')"
            )
        )

"""The operator dashboard's logic through Streamlit's AppTest, against the test's real Postgres.

Each page is run from the real entry script (`app.py`, with its `st.navigation`) over a desk
seeded with SQL (`seed_desk`): journal trades, open positions with a moved stop, plans awaiting
approval, a model with live outcomes, drift verdicts and a real Dagster run. Approve and reject
go through the same `approvals.decide` as `breakout approve`, so the rows they leave are compared
with the CLI's; the kill switch writes and removes its file only once the confirmation is ticked.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from streamlit.testing.v1 import AppTest

from breakout_assets import approvals
from breakout_assets.cli import main as cli
from breakout_assets.dashboard.desk import Desk
from breakout_assets.dashboard.figures import live_vs_held_out
from breakout_assets.dashboard.server import APP, streamlit_command
from breakout_assets.dashboard.ui import OPERATOR_KEY
from breakout_assets.definitions import build_resources
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.runtime import DAGSTER_URL_VAR
from breakout_assets_tests.helpers import read_table

PENDING_SESSION = date(2024, 3, 8)
STARTING_EQUITY = 100_000.0
# Net P&L of the four closed trades, in order of exit: the equity curve's steps.
CLOSED_NET = [798.0, -202.0, -91.0, 98.0]
LONG_MODEL = "long-20240101T000000"
PAGES = ["equity", "positions", "approvals", "kill_switch", "models", "drift", "runs"]


def _journal_rows() -> list[dict]:
    base = {
        "parent_ref": None,
        "signal_id": None,
        "exit_session": None,
        "exit_price": None,
        "gross_pnl": None,
        "net_pnl": None,
        "r_gross": None,
        "r_net": None,
        "exit_reason": None,
        "status": "closed",
        "confidence": 0.62,
        "tier": "B",
        "initial_risk": None,
        "initial_stop": None,
        "fees": 2.0,
    }
    closed = [
        ("BRK-AAPL-20240102-L", "primary", "AAPL", "long", 100, "2024-01-03", 100.0,
         "2024-01-10", 108.0, 96.0, 400.0, 2.0, 800.0, "target"),
        ("BRK-MSFT-20240104-S", "primary", "MSFT", "short", 50, "2024-01-05", 200.0,
         "2024-01-12", 204.0, 204.0, 200.0, 2.0, -200.0, "stop"),
        ("OPP-NVDA-20240112-L", "opposing", "NVDA", "long", 30, "2024-01-15", 50.0,
         "2024-01-18", 47.0, 47.0, 90.0, 1.0, -90.0, "stop"),
        ("BRK-TSLA-20240119-L", "primary", "TSLA", "long", 10, "2024-01-22", 250.0,
         "2024-02-01", 260.0, 240.0, 100.0, 2.0, 100.0, "trail"),
    ]  # fmt: skip
    rows = []
    for (
        ref,
        book,
        ticker,
        side,
        qty,
        entry_s,
        entry,
        exit_s,
        exit_p,
        stop,
        risk,
        fees,
        gross,
        why,
    ) in closed:
        rows.append(
            base
            | {
                "trade_id": ref,
                "session": exit_s,
                "book": book,
                "ticker": ticker,
                "side": side,
                "quantity": qty,
                "entry_session": entry_s,
                "entry_price": entry,
                "exit_session": exit_s,
                "exit_price": exit_p,
                "initial_stop": stop,
                "initial_risk": risk,
                "fees": fees,
                "gross_pnl": gross,
                "net_pnl": gross - fees,
                "r_gross": gross / risk,
                "r_net": (gross - fees) / risk,
                "exit_reason": why,
            }
        )
    opened = [
        ("BRK-AMZN-20240301-L", "primary", None, "AMZN", "long", 40, "2024-03-04", 150.0, 144.0),
        ("BRK-AMZN-20240301-L-ADD", "add_on", "BRK-AMZN-20240301-L", "AMZN", "long", 20,
         "2024-03-06", 153.0, 144.0),
        ("OPP-META-20240301-S", "opposing", None, "META", "short", 15, "2024-03-07", 480.0, None),
        # two call-spread contracts (200 shares) at a $3.00 debit: $600 at risk, no stop
        ("SPR-AMZN-20240301-L", "option_spread", "BRK-AMZN-20240301-L", "AMZN", "long", 200,
         "2024-03-05", 3.0, None),
    ]  # fmt: skip
    for ref, book, parent, ticker, side, qty, entry_s, entry, stop in opened:
        rows.append(
            base
            | {
                "trade_id": ref,
                "session": entry_s,
                "book": book,
                "parent_ref": parent,
                "ticker": ticker,
                "side": side,
                "quantity": qty,
                "entry_session": entry_s,
                "entry_price": entry,
                "initial_stop": stop,
                "initial_risk": 600.0 if book == "option_spread" else None,
                "fees": 1.0,
                "status": "open",
            }
        )
    return rows


def _calibration(rates: list[float | None], counts: list[int]) -> list[dict]:
    return [
        {
            "bin": b,
            "lower": b / 10,
            "upper": (b + 1) / 10,
            "count": counts[b],
            "mean_predicted": None if rates[b] is None else b / 10 + 0.05,
            "observed_rate": rates[b],
        }
        for b in range(10)
    ]


def seed_desk(url: str, model_store: Path) -> None:
    """A desk an operator would recognise: four closed trades, three open positions (one stop
    moved to breakeven), four plans pending on 2024-03-08 (two brackets, a fade, a spread), a
    long model serving with 20 live outcomes, and the drift watch's verdicts."""
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.begin() as conn:
        for row in _journal_rows():
            conn.execute(
                text(f"INSERT INTO journal ({', '.join(row)}, broker, source) "
                     f"VALUES ({', '.join(':' + k for k in row)}, 'simulated', 'simulated')"),
                row,
            )  # fmt: skip
        conn.execute(
            text("""
            INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side, quantity, entry,
                stop, take_profit, risk_dollars, tier, confidence, expected_value, status, reason,
                decided_by, decided_at) VALUES
            ('BRK-AMZN-20240301-L', 'AMZN:2024-03-01:long', '2024-03-01', 'AMZN', 'long', 40,
             150, 144, 162, 240, 'B', 0.61, 0.4, 'sent', 'sized', 'ops (cli)', now()),
            ('BRK-GOOG-20240308-L', 'GOOG:2024-03-08:long', '2024-03-08', 'GOOG', 'long', 70,
             140, 135, 150, 350, 'A', 0.66, 0.52, 'pending_approval', 'sized', NULL, NULL),
            ('BRK-NFLX-20240308-S', 'NFLX:2024-03-08:short', '2024-03-08', 'NFLX', 'short', 12,
             600, 620, 560, 240, 'C', 0.57, 0.21, 'pending_approval', 'sized', NULL, NULL),
            ('BRK-ORCL-20240308-L', 'ORCL:2024-03-08:long', '2024-03-08', 'ORCL', 'long', 30,
             120, 116, 128, 120, 'B', 0.6, 0.3, 'pending_approval', 'sized', NULL, NULL)
            """)
        )
        conn.execute(
            text("""
            INSERT INTO opposing_orders (order_ref, signal_id, session, signal_session, ticker,
                side, confidence, alert_level, alert_quantity, limit_level, limit_quantity, stop,
                take_profit, risk_dollars, valid_sessions, status, reason, sent_at) VALUES
            ('OPP-META-20240301-S', 'META:2024-03-01:long', '2024-03-06', '2024-03-01', 'META',
             'short', 0.41, 480, 15, NULL, NULL, 490, 455, 150, 5, 'sent', 'armed', now()),
            ('OPP-AMD-20240305-S', 'AMD:2024-03-05:long', '2024-03-08', '2024-03-05', 'AMD',
             'short', 0.44, 180, 20, 184, 10, 188, 170, 240, 5, 'pending_approval', 'armed',
             NULL)
            """)
        )
        conn.execute(
            text("""
            INSERT INTO option_spreads (order_ref, signal_id, session, ticker, side,
                option_right, expiry, long_strike, short_strike, net_debit, width, contracts,
                max_loss, max_gain, ev, confidence, close_trigger, status, reason, mode) VALUES
            ('SPR-GOOG-20240308-L', 'GOOG:2024-03-08:long', '2024-03-08', 'GOOG', 'long', 'C',
             '2024-04-19', 140, 150, 3.0, 10, 2, 600, 1400, 1.2, 0.66, 150, 'pending_approval',
             'sized', 'paper')
            """)
        )
        conn.execute(
            text("""
            INSERT INTO stop_updates (order_ref, session, action, old_stop, new_stop,
                old_quantity, new_quantity, reason, dry_run, status) VALUES
            ('BRK-AMZN-20240301-L', '2024-03-05', 'breakeven', 144, 150, 40, 40, '+0.5R', false,
             'applied'),
            ('BRK-AMZN-20240301-L', '2024-03-07', 'trail', 150, 152, 60, 60, 'trail', false,
             'halted')
            """)
        )
        conn.execute(
            text("""
            INSERT INTO market_bars (ticker, session, open, high, low, close, volume) VALUES
            ('AMZN', '2024-03-07', 154, 157, 153, 155, 1000000),
            ('AMZN', '2024-03-08', 155, 158, 154, 156, 1000000),
            ('META', '2024-03-08', 475, 478, 468, 470, 1000000)
            """)
        )
        conn.execute(
            text("""
            INSERT INTO model_experiments (experiment_id, side, created_at, params, features,
                train_range, test_range, split, metrics, artifact_path, model_sha256, promoted,
                promotion)
            VALUES (:id, 'long', '2024-01-01T00:00:00Z', '{}', '["rally_pct", "atr_14"]',
                '[2018-01-02,2022-12-30]', '[2023-01-03,2023-12-29]', '{"split": "time"}',
                CAST(:metrics AS jsonb), :artifact, 'abc', true,
                '{"passed": true, "checks": []}')
            """),
            {
                "id": LONG_MODEL,
                "artifact": str(model_store / "long" / LONG_MODEL),
                "metrics": json.dumps(
                    {
                        "metrics": {"roc_auc": 0.611, "ece": 0.031, "brier": 0.22,
                                    "accuracy": 0.58, "precision": 0.55, "rows": 812},
                        "calibration": _calibration(
                            [None] * 5 + [0.52, 0.64, 0.71, None, None],
                            [0] * 5 + [200, 150, 60, 0, 0],
                        ),
                    }
                ),
            },
        )  # fmt: skip
        # live: 10 scored at 0.55 (3 won), 10 at 0.65 (4 won): the first bin runs 22 points
        # under its held-out win rate
        for i in range(20):
            signal_id = f"L{i:02d}:2024-01-02:long"
            conn.execute(
                text("""
                INSERT INTO breakout_signals (signal_id, ticker, session, side, rally_start,
                    rally_end, consol_start, consol_end, rally_high, rally_low, move_height,
                    entry, stop, stop_rule, atr, atr_window, target_50, target_75, target_100,
                    booked_target, adjusted_entry, risk, reward_risk)
                VALUES (:id, :ticker, '2024-01-02', 'long', '2023-11-01', '2023-11-20',
                    '2023-11-21', '2024-01-01', 99, 91, 8, 100, 96, 'atr', 2, 30, 104, 106,
                    108, 104, false, 4, 1)"""),
                {"id": signal_id, "ticker": f"L{i:02d}"},
            )
            conn.execute(
                text("""
                INSERT INTO signal_scores (signal_id, session, side, experiment_id, confidence,
                    expected_value, tier, decision, reason, regime)
                VALUES (:id, '2024-01-02', 'long', :model, :conf, 0.2, 'B', 'trade', 'gate',
                    '{}')"""),
                {"id": signal_id, "model": LONG_MODEL, "conf": 0.55 if i < 10 else 0.65},
            )
            won = (i < 3) or (10 <= i < 14)
            conn.execute(
                text("""
                INSERT INTO signal_outcomes (signal_id, session, status, entry_session,
                    entry_price, exit_session, exit_price, r_multiple, mfe_r, mae_r, bars_held,
                    hit_target_50, hit_target_75, hit_target_100, as_of)
                VALUES (:id, '2024-01-02', :status, '2024-01-03', 100, '2024-01-10', :exit,
                    :r, 1, -1, 5, :won, :won, :won, '2024-01-10')"""),
                {
                    "id": signal_id,
                    "status": "win" if won else "loss",
                    "exit": 104 if won else 96,
                    "r": 1.0 if won else -1.0,
                    "won": won,
                },
            )
        conn.execute(
            text("""
            INSERT INTO model_drift (session, side, experiment_id, live_outcomes, live_ece,
                calibration_gap, calibration, psi, max_psi, drifted, reasons) VALUES
            ('2024-03-08', 'long', :model, 20, 0.16, 0.22, '[]',
             '{"rally_pct": 0.31, "atr_14": 0.05}', 0.31, true,
             '{"calibration gap 0.22 > 0.15", "PSI rally_pct 0.31 > 0.25"}'),
            ('2024-03-07', 'long', :model, 19, 0.08, 0.10, '[]', '{"rally_pct": 0.12}', 0.12,
             false, '{}'),
            ('2024-03-08', 'short', 'short-20240101T000000', 4, NULL, NULL, '[]',
             '{"rally_pct": 0.02}', 0.02, false, '{}')
            """),
            {"model": LONG_MODEL},
        )
        conn.execute(
            text("""
            INSERT INTO retrain_requests (session, sides, reasons, run_key) VALUES
            ('2024-03-08', '{long}', '{"calibration gap 0.22 > 0.15"}', 'drift-2024-03-08')
            """)
        )
    engine.dispose()
    model_store.mkdir(parents=True, exist_ok=True)
    (model_store / "ACTIVE_MODELS.json").write_text(
        json.dumps(
            {
                "long": {
                    "experiment_id": LONG_MODEL,
                    "artifact_path": str(model_store / "long" / LONG_MODEL),
                    "promoted_at": "2024-01-01T00:00:00+00:00",
                    "reason": "passed promotion rules",
                    "history": [],
                }
            }
        )
    )


@pytest.fixture
def desk_env(settings, database_url, monkeypatch, tmp_path, dagster_instance) -> dict[str, str]:
    """The environment `breakout dashboard` gives the app: the test's database, its own kill
    switch and model store, and the test's Dagster instance."""
    env = {
        "BREAKOUT_DATABASE_URL": database_url,
        "BREAKOUT_KILL_SWITCH_PATH": str(tmp_path / "KILL_SWITCH"),
        "BREAKOUT_MODEL_STORE_DIR": str(settings.model_store_dir),
        "BREAKOUT_DAGSTER_UI_URL": "http://127.0.0.1:3999",
        "DAGSTER_HOME": dagster_instance.root_directory,
        # the suite clears BREAKOUT_* in each test; the instance knows its storage
        DAGSTER_URL_VAR: dagster_instance.run_storage.postgres_url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seed_desk(database_url, settings.model_store_dir)
    return env


def _page(path: str | None = None) -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=90).run()
    assert not app.exception, app.exception
    if path:
        app.switch_page(path).run()
        assert not app.exception, app.exception
    return app


def _operator(app: AppTest, name: str) -> None:
    app.sidebar.text_input(key=OPERATOR_KEY).input(name).run()


def _metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def _plan(url: str, ref: str) -> dict:
    frame = read_table(
        url,
        "SELECT order_ref, status, decided_by, decided_at FROM trade_plan "
        f"WHERE order_ref = '{ref}' UNION ALL "
        "SELECT order_ref, status, decided_by, decided_at FROM opposing_orders "
        f"WHERE order_ref = '{ref}' UNION ALL "
        "SELECT order_ref, status, decided_by, decided_at FROM option_spreads "
        f"WHERE order_ref = '{ref}'",
    )
    assert len(frame) == 1, ref
    return frame.iloc[0].to_dict()


def test_the_command_binds_to_localhost_only():
    command = streamlit_command(8599)
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.port") + 1] == "8599"
    assert command[command.index("--server.headless") + 1] == "true"
    assert command[command.index("--browser.gatherUsageStats") + 1] == "false"
    assert command[command.index("run") + 1] == str(APP)


def test_journal_page_shows_trades_and_filters(desk_env):
    app = _page()  # the default page
    assert app.title[0].value == "Journal"
    assert _metrics(app) == {
        "Trades": "8",
        "Open": "4",
        "Closed": "4",
        "Win rate": "50.0%",  # R > 0, as the daily report counts
        "Net P&L (closed)": f"${sum(CLOSED_NET):,.2f}",
        "Expectancy (net R)": "+0.24R",  # (1.995 - 1.01 - 1.0111 + 0.98) / 4
    }
    assert set(app.dataframe[0].value["trade_id"]) >= {"BRK-AAPL-20240102-L", "OPP-META-20240301-S"}

    app.multiselect(key="journal_books").select("opposing").run()
    shown = app.dataframe[0].value
    assert sorted(shown["trade_id"]) == ["OPP-META-20240301-S", "OPP-NVDA-20240112-L"]
    app.multiselect(key="journal_statuses").select("closed").run()
    assert list(app.dataframe[0].value["trade_id"]) == ["OPP-NVDA-20240112-L"]
    assert _metrics(app)["Net P&L (closed)"] == "-$91.00"

    app.multiselect(key="journal_books").unselect("opposing").run()
    app.text_input(key="journal_ticker").input("aapl").run()
    assert list(app.dataframe[0].value["trade_id"]) == ["BRK-AAPL-20240102-L"]
    app.date_input[0].set_value(date(2024, 1, 11)).run()  # from: after AAPL's exit
    assert app.dataframe[0].value.empty
    assert not app.exception


def test_equity_page_curve_and_drawdown(desk_env):
    app = _page("views/equity.py")
    equity = STARTING_EQUITY + sum(CLOSED_NET)
    peak = STARTING_EQUITY + CLOSED_NET[0]
    trough = STARTING_EQUITY + sum(CLOSED_NET[:3])
    assert _metrics(app) == {
        "Starting equity": "$100,000.00",
        "Equity (realised)": f"${equity:,.2f}",
        "Return": f"{equity / STARTING_EQUITY - 1:.1%}",
        "Max drawdown": f"{trough / peak - 1:.1%}",
        "Current drawdown": f"{equity / peak - 1:.1%}",
    }
    curve = app.dataframe[0].value
    assert list(curve["equity"])[::-1] == pytest.approx(
        [STARTING_EQUITY + sum(CLOSED_NET[: i + 1]) for i in range(4)]
    )
    assert curve["drawdown"].min() == pytest.approx(trough - peak)
    assert "-$293.00" in app.caption[0].value


def test_positions_page_shows_the_stop_in_force(desk_env):
    app = _page("views/positions.py")
    positions = app.dataframe[0].value.set_index("trade_id")
    # the breakeven the broker accepted counts; the halted trail does not
    assert positions.loc["BRK-AMZN-20240301-L", "stop"] == 150
    assert positions.loc["BRK-AMZN-20240301-L", "stop_action"] == "breakeven"
    assert positions.loc["BRK-AMZN-20240301-L-ADD", "stop"] == 150  # its primary's stop
    assert positions.loc["BRK-AMZN-20240301-L", "take_profit"] == 162
    assert positions.loc["OPP-META-20240301-S", "stop"] == 490  # the fade's planned stop
    assert positions.loc["OPP-META-20240301-S", "last_close"] == 470
    # AMZN 40 x (156 - 150) + 20 x (156 - 153); META short 15 x (480 - 470)
    assert _metrics(app)["Unrealised P&L (stocks)"] == f"${40 * 6 + 20 * 3 + 15 * 10:,.2f}"
    # at the stops: AMZN 0 and 20 x -3, META 15 x -10, the spread its $600 debit
    assert _metrics(app)["P&L if every stop is hit"] == "-$810.00"
    assert _metrics(app)["Open positions"] == "4"
    # the spread neither takes its primary's stop nor prices itself off the underlying
    spread = positions.loc["SPR-AMZN-20240301-L"]
    assert pd.isna(spread["stop"]) and pd.isna(spread["stop_action"])
    assert pd.isna(spread["unrealised_pnl"]) and spread["pnl_at_stop"] == -600


def test_approve_and_reject_record_what_the_cli_records(desk_env, database_url):
    app = _page("views/approvals.py")
    queue = app.dataframe[0].value
    assert sorted(queue["order_ref"]) == [
        "BRK-GOOG-20240308-L",
        "BRK-NFLX-20240308-S",
        "BRK-ORCL-20240308-L",
        "OPP-AMD-20240305-S",
        "SPR-GOOG-20240308-L",
    ]
    assert "5 plan(s) pending approval" in app.caption[0].value

    # no operator name: nothing is decided
    app.button(key="approve-BRK-GOOG-20240308-L").click().run()
    assert "enter your name" in app.error[0].value
    assert _plan(database_url, "BRK-GOOG-20240308-L")["status"] == "pending_approval"

    _operator(app, "alice")
    app.button(key="approve-BRK-GOOG-20240308-L").click().run()
    assert "approved 1 plan(s) of 2024-03-08: BRK-GOOG-20240308-L" in app.success[0].value
    app.button(key="reject-OPP-AMD-20240305-S").click().run()
    app.button(key="approve-SPR-GOOG-20240308-L").click().run()
    assert not app.exception

    # the CLI decides the twin plan: same call, same columns; only where it came from differs
    result = CliRunner().invoke(
        cli, ["approve", "2024-03-08", "--ref", "BRK-ORCL-20240308-L", "--by", "alice"]
    )
    assert result.exit_code == 0, result.output
    by_dashboard = _plan(database_url, "BRK-GOOG-20240308-L")
    by_cli = _plan(database_url, "BRK-ORCL-20240308-L")
    assert by_dashboard["status"] == by_cli["status"] == "approved"
    assert by_dashboard["decided_by"] == "alice (dashboard)"
    assert by_cli["decided_by"] == "alice (cli)"
    assert by_dashboard["decided_at"] is not None and by_cli["decided_at"] is not None
    assert _plan(database_url, "OPP-AMD-20240305-S")["status"] == "rejected"
    assert _plan(database_url, "OPP-AMD-20240305-S")["decided_by"] == "alice (dashboard)"
    assert _plan(database_url, "SPR-GOOG-20240308-L")["status"] == "approved"

    # the queue now holds what is left; the decisions list who decided
    app.run()
    assert list(app.dataframe[0].value["order_ref"]) == ["BRK-NFLX-20240308-S"]
    decisions = app.dataframe[-1].value
    assert set(decisions["decided_by"]) >= {"alice (dashboard)", "alice (cli)"}

    # "reject all" needs its confirmation
    app.button(key="reject-all-2024-03-08").click().run()
    assert _plan(database_url, "BRK-NFLX-20240308-S")["status"] == "pending_approval"
    app.checkbox(key="confirm-all-2024-03-08").check().run()
    app.button(key="reject-all-2024-03-08").click().run()
    assert _plan(database_url, "BRK-NFLX-20240308-S")["status"] == "rejected"
    assert "Nothing awaits approval." in [s.value for s in app.success]


def test_a_plan_decided_elsewhere_is_refused_not_redecided(desk_env, database_url):
    app = _page("views/approvals.py")
    _operator(app, "alice")
    # the CLI rejects it while the page still shows it pending
    approvals.decide(
        build_resources(_settings_of(desk_env))["postgres"],
        PENDING_SESSION,
        False,
        "bob (cli)",
        ["BRK-GOOG-20240308-L"],
    )
    app.button(key="approve-BRK-GOOG-20240308-L").click().run()
    assert "not pending approval" in app.error[0].value
    plan = _plan(database_url, "BRK-GOOG-20240308-L")
    assert (plan["status"], plan["decided_by"]) == ("rejected", "bob (cli)")


def _settings_of(env: dict[str, str]):
    from breakout_assets.settings import load_settings

    return load_settings(database_url=env["BREAKOUT_DATABASE_URL"])


def test_kill_switch_needs_the_confirmation(desk_env):
    path = Path(desk_env["BREAKOUT_KILL_SWITCH_PATH"])
    app = _page("views/kill_switch.py")
    assert "OFF" in app.success[0].value
    _operator(app, "alice")
    app.text_input(key="kill-switch-reason").input("broker outage").run()

    app.button(key="kill-switch-on").click().run()
    assert "tick the confirmation first" in app.error[0].value
    assert not path.exists()

    app.checkbox(key="kill-switch-confirm-on").check().run()
    app.button(key="kill-switch-on").click().run()
    assert path.exists()
    recorded = json.loads(path.read_text())
    assert (recorded["reason"], recorded["by"]) == ("broker outage", "alice (dashboard)")
    assert "ON since" in app.error[0].value  # the page now shows the switch on
    # as `breakout kill-switch status` reads it
    status = CliRunner().invoke(cli, ["kill-switch", "status"])
    assert "ON since" in status.output and "broker outage" in status.output

    app.button(key="kill-switch-off").click().run()
    assert "tick the confirmation first" in app.error[0].value
    assert path.exists()
    app.checkbox(key="kill-switch-confirm-off").check().run()
    app.button(key="kill-switch-off").click().run()
    assert not path.exists()
    assert "kill switch off" in app.success[0].value


def test_model_cards_show_live_against_held_out_calibration(desk_env):
    app = _page("views/models.py")
    assert app.multiselect(key="model_cards").value == [LONG_MODEL]
    assert any("SERVING" in s.value for s in app.subheader)
    metrics = _metrics(app)
    assert metrics["held-out roc_auc"] == "0.611"
    assert metrics["held-out rows"] == "812"
    calibration = app.dataframe[0].value.set_index("lower")
    assert calibration.loc[0.5, "live_n"] == 10
    assert calibration.loc[0.5, "live_win_rate"] == pytest.approx(0.3)
    assert calibration.loc[0.5, "held_out_win_rate"] == pytest.approx(0.52)
    assert calibration.loc[0.5, "gap"] == pytest.approx(-0.22)
    assert calibration.loc[0.6, "live_win_rate"] == pytest.approx(0.4)
    assert any("20 live outcomes final" in m.value for m in app.markdown)
    runs = app.dataframe[1].value
    assert list(runs["experiment_id"]) == [LONG_MODEL] and bool(runs["serving"].iloc[0])


def test_live_wins_follow_the_models_own_label():
    held_out = [{"bin": 6, "lower": 0.6, "upper": 0.7, "count": 50, "mean_predicted": 0.65,
                 "observed_rate": 0.6}]  # fmt: skip
    live = pd.DataFrame(
        {
            "confidence": [0.62, 0.64, 0.66, 0.68],
            "status": ["win", "expired", "expired", "loss"],
            "r_multiple": [1.0, 0.4, -0.2, -1.0],
        }
    )
    booked = live_vs_held_out(held_out, live, "booked_target").set_index("bin").loc[6]
    profitable = live_vs_held_out(held_out, live, "profitable").set_index("bin").loc[6]
    assert (booked["live_n"], booked["live_win_rate"]) == (4, 0.25)
    assert profitable["live_win_rate"] == 0.5  # the expiry closed above its entry counts
    assert booked["gap"] == pytest.approx(0.25 - 0.6)
    assert booked["held_out_n"] == 50


def test_drift_page_shows_each_sides_latest_verdict(desk_env):
    app = _page("views/drift.py")
    headers = [s.value for s in app.subheader]
    assert "long: DRIFTED on 2024-03-08" in headers
    assert "short: no drift on 2024-03-08" in headers
    assert any("PSI rally_pct 0.31 > 0.25" in c.value for c in app.caption)
    history = app.dataframe[0].value
    assert len(history) == 3
    requests = app.dataframe[1].value
    assert list(requests["run_key"]) == ["drift-2024-03-08"]


def test_runs_page_links_runs_into_the_dagster_ui(desk_env, database_url, dagster_instance):
    result = approvals.approve_trades.execute_in_process(
        run_config={
            "ops": {
                "decide_trade_plans": {
                    "config": {
                        "session": "2024-03-08",
                        "refs": ["BRK-NFLX-20240308-S"],
                        "decided_by": "carol",
                    }
                }
            }
        },
        resources={"postgres": build_resources(_settings_of(desk_env))["postgres"]},
        instance=dagster_instance,
    )
    assert result.success
    app = _page("views/runs.py")
    link = f"http://127.0.0.1:3999/runs/{result.run_id}"
    table = app.markdown[-1].value
    assert f"[{result.run_id[:8]}]({link})" in table
    assert "approve_trades" in table and "SUCCESS" in table
    assert int(_metrics(app)["Succeeded"]) >= 1


def test_empty_desk_says_what_fills_each_page(settings, database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("BREAKOUT_DATABASE_URL", database_url)
    monkeypatch.setenv("BREAKOUT_KILL_SWITCH_PATH", str(tmp_path / "KILL_SWITCH"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    expected = {
        None: "No trade in the journal yet",
        "views/equity.py": "No closed trade",
        "views/positions.py": "No open position",
        "views/models.py": "No training run recorded yet",
        "views/drift.py": "No drift verdict yet",
        "views/runs.py": "DAGSTER_HOME is not set",
    }
    for page, message in expected.items():
        app = _page(page)
        assert message in app.info[0].value, page
    assert "Nothing awaits approval." in _page("views/approvals.py").success[0].value


def test_loading_every_page_changes_nothing(desk_env, database_url):
    tables = ["journal", "trade_plan", "opposing_orders", "option_spreads", "stop_updates",
              "model_experiments", "model_drift", "retrain_requests", "halt_events"]  # fmt: skip
    snapshot = "SELECT " + ", ".join(
        f"(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t) "
        f"AS {table}"
        for table in tables
    )
    before = read_table(database_url, snapshot).iloc[0].to_dict()
    for page in [None, *(f"views/{name}.py" for name in PAGES)]:
        _page(page)
    assert read_table(database_url, snapshot).iloc[0].to_dict() == before
    assert not Path(desk_env["BREAKOUT_KILL_SWITCH_PATH"]).exists()


def test_page_reads_cannot_write(desk_env):
    desk = Desk.from_environment()
    with pytest.raises(DBAPIError, match="read-only transaction"), desk.reading() as conn:
        conn.execute(text("UPDATE trade_plan SET status = 'approved'"))


def test_a_wrong_setting_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("BREAKOUT_SMTP_PORT", "not-a-port")
    app = AppTest.from_file(str(APP), default_timeout=90).run()
    assert "Cannot open the desk" in app.error[0].value
    assert "BREAKOUT_SMTP_PORT" in app.error[0].value
    assert not app.exception


def test_an_unreachable_database_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("BREAKOUT_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/nowhere")
    app = AppTest.from_file(str(APP), default_timeout=90).run()
    assert "Cannot open the desk" in app.error[0].value
    assert "BREAKOUT_DATABASE_URL" in app.error[0].value
    assert not app.exception

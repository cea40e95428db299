"""daily_report through real Dagster runs on the test Postgres, emailed to a real SMTP server on
127.0.0.1 (aiosmtpd): every section renders (with rows, and empty), the email arrives once, a
re-run sends nothing, a refused connection is recorded and the run still succeeds, a later run
retries, and the SMTP password appears nowhere.

The journal rows are inserted by hand (the journal asset writes the same table): the trades'
P&L and R below are the fixed figures the report must show.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from breakout_assets.definitions import build_resources
from breakout_assets.reporting import summary
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.resources.mailer import PASSWORD_VARIABLE
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import SAMPLE_DIR
from breakout_assets_tests.helpers import read_table, run_assets
from breakout_assets_tests.local_smtp import HOST, free_port, self_signed_cert, smtp_server

SESSION = "2024-03-05"
QUIET = "2024-03-06"
EXPERIMENT = "long-20240101-test"
PASSWORD = "pw-Never-Shown-42"
SECTIONS = (
    "Signals and decisions",
    "Plans awaiting approval",
    "Orders",
    "Fills",
    "Open positions",
    "Closed trades",
    "P&amp;L and performance to date",
    "Against the serving model&#39;s held-out expectation",
    "Equity curve",
    "Live calibration",
)
EMPTY = (
    "no signals scored this session",
    "no orders for this session",
    "no fills this session",
    "no closed trades this session",
)


def _signal(conn, signal_id: str, ticker: str, session: str, side: str = "long") -> None:
    conn.execute(
        text("""
        INSERT INTO breakout_signals (signal_id, ticker, session, side, rally_start, rally_end,
            consol_start, consol_end, rally_high, rally_low, move_height, entry, stop, stop_rule,
            atr, atr_window, target_50, target_75, target_100, booked_target, adjusted_entry,
            risk, reward_risk)
        VALUES (:id, :ticker, :session, :side, '2023-11-01', '2023-11-20', '2023-11-21',
            '2023-12-29', 99, 91, 8, 100, 96, 'atr', 2, 30, 104, 106, 108, 104, false, 4, 1)"""),
        {"id": signal_id, "ticker": ticker, "session": session, "side": side},
    )


def _score(conn, signal_id: str, session: str, confidence: float, decision: str) -> None:
    conn.execute(
        text("""
        INSERT INTO signal_scores (signal_id, session, side, experiment_id, confidence,
            expected_value, tier, decision, reason, regime)
        VALUES (:id, :session, 'long', :experiment, :confidence, :ev, :tier, :decision,
            'test', '{}')"""),
        {
            "id": signal_id,
            "session": session,
            "experiment": EXPERIMENT,
            "confidence": confidence,
            "ev": 2 * confidence - 1,
            "tier": "A" if decision == "trade" else None,
            "decision": decision,
        },
    )


def _outcome(conn, signal_id: str, session: str, status: str, r: float) -> None:
    conn.execute(
        text("""
        INSERT INTO signal_outcomes (signal_id, session, status, entry_session, entry_price,
            exit_session, exit_price, r_multiple, bars_held, hit_target_50, hit_target_75,
            hit_target_100, as_of)
        VALUES (:id, :session, :status, '2024-02-02', 100, '2024-02-09', :exit, :r, 5,
            false, false, false, '2024-02-09')"""),
        {"id": signal_id, "session": session, "status": status, "exit": 100 + 4 * r, "r": r},
    )


def _journal(conn, trade_id: str, **row) -> None:
    values = {
        "trade_id": trade_id,
        "book": "primary",
        "parent_ref": None,
        "signal_id": None,
        "side": "long",
        "quantity": 100,
        "entry_time": None,
        "exit_session": None,
        "exit_time": None,
        "exit_price": None,
        "initial_stop": 96.0,
        "initial_risk": 400.0,
        "fees": 2.0,
        "gross_pnl": None,
        "net_pnl": None,
        "r_gross": None,
        "r_net": None,
        "confidence": 0.6,
        "tier": "A",
        "exit_reason": None,
        "status": "open",
        "broker": "simulated",
        "source": "simulated",
        **row,
    }
    columns = ", ".join(values)
    conn.execute(text(f"INSERT INTO journal ({columns}) VALUES (:{', :'.join(values)})"), values)


def seed(url: str, model_store: Path) -> None:
    """One busy session (SESSION) and its history; QUIET has nothing of its own."""
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.begin() as conn:
        # the session's signals: a trade, a skip, an opposing-book candidate
        for sid, ticker, conf, decision in (
            ("AAA:2024-03-05:long", "AAA", 0.64, "trade"),
            ("BBB:2024-03-05:long", "BBB", 0.52, "skip"),
            ("CCC:2024-03-05:long", "CCC", 0.31, "opposing"),
        ):
            _signal(conn, sid, ticker, SESSION)
            _score(conn, sid, SESSION, conf, decision)
        # history: scored signals with final outcomes (live calibration)
        for i, (conf, status, r) in enumerate(
            [(0.62, "win", 1.0), (0.66, "loss", -1.0), (0.68, "win", 1.0), (0.35, "loss", -1.0)]
        ):
            sid = f"H{i}:2024-02-01:long"
            _signal(conn, sid, f"H{i}", "2024-02-01")
            _score(conn, sid, "2024-02-01", conf, "trade")
            _outcome(conn, sid, "2024-02-01", status, r)
        conn.execute(
            text("""
            INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side, quantity, entry,
                stop, take_profit, risk_dollars, tier, confidence, expected_value, status, reason)
            VALUES ('BRK-AAA-20240305-L', 'AAA:2024-03-05:long', :s, 'AAA', 'long', 125, 100,
                    96, 104, 500, 'A', 0.64, 0.28, 'pending_approval', 'tier A'),
                   ('BRK-OLD-20240304-L', 'OLD:2024-03-04:long', '2024-03-04', 'OLD', 'long',
                    50, 50, 48, 54, 100, 'B', 0.58, 0.16, 'sent', 'tier B')"""),
            {"s": SESSION},
        )
        conn.execute(
            text("""
            INSERT INTO opposing_orders (order_ref, signal_id, session, signal_session, ticker,
                side, confidence, alert_level, alert_quantity, limit_level, limit_quantity, stop,
                take_profit, risk_dollars, valid_sessions, status, reason)
            VALUES ('OPP-CCC-20240305-S', 'CCC:2024-03-05:long', :s, :s, 'CCC', 'short', 0.31,
                    95, 40, 97, 20, 104, 92, 320, 8, 'pending_approval', 'fade')"""),
            {"s": SESSION},
        )
        conn.execute(
            text("""
            INSERT INTO option_spreads (order_ref, signal_id, session, ticker, side,
                option_right, expiry, long_strike, short_strike, net_debit, width, contracts,
                max_loss, max_gain, ev, confidence, close_trigger, status, reason, mode)
            VALUES ('OPT-AAA-20240305-L', 'AAA:2024-03-05:long', :s, 'AAA', 'long', 'C',
                    '2024-04-19', 100, 105, 2.1, 5, 2, 420, 580, 0.4, 0.64, 104,
                    'pending_approval', 'spread', 'paper')"""),
            {"s": SESSION},
        )
        conn.execute(
            text("""
            INSERT INTO broker_orders (order_ref, session, broker, dry_run, status, sent_at,
                bracket)
            VALUES ('BRK-SENT-20240305-L', :s, 'simulated', false, 'submitted',
                    '2024-03-05 14:35+00', '{}')"""),
            {"s": SESSION},
        )
        # trades: closed earlier (+2R), closed on the session (-1R), still open (stop moved)
        _journal(
            conn,
            "BRK-WIN-20240201-L",
            session="2024-02-09",
            ticker="WIN",
            entry_session="2024-02-02",
            entry_price=100.0,
            exit_session="2024-02-09",
            exit_price=108.0,
            gross_pnl=800.0,
            net_pnl=798.0,
            r_gross=2.0,
            r_net=1.995,
            exit_reason="target",
            status="closed",
        )
        _journal(
            conn,
            "BRK-LOSS-20240301-L",
            session=SESSION,
            ticker="LOSS",
            entry_session="2024-03-04",
            entry_price=50.0,
            initial_stop=48.0,
            initial_risk=200.0,
            exit_session=SESSION,
            exit_price=48.0,
            gross_pnl=-200.0,
            net_pnl=-202.0,
            r_gross=-1.0,
            r_net=-1.01,
            exit_reason="stop",
            status="closed",
        )
        _journal(
            conn,
            "BRK-OPEN-20240301-L",
            session=SESSION,
            ticker="OPEN",
            entry_session=SESSION,
            entry_time="2024-03-05 14:40+00",
            entry_price=80.0,
            initial_stop=76.0,
        )
        _journal(  # its add-on moves with it: the primary's stop update is the add-on's
            conn,
            "BRK-OPEN-20240301-L-ADD",
            session=SESSION,
            book="add_on",
            parent_ref="BRK-OPEN-20240301-L",
            ticker="OPEN",
            quantity=50,
            entry_session=SESSION,
            entry_price=82.5,
            initial_stop=76.0,
        )
        conn.execute(
            text("""
            INSERT INTO trade_plan (order_ref, signal_id, session, ticker, side, quantity, entry,
                stop, take_profit, risk_dollars, tier, confidence, expected_value, status, reason)
            VALUES ('BRK-OPEN-20240301-L', 'OPEN:2024-03-01:long', '2024-03-01', 'OPEN', 'long',
                    100, 80, 76, 88.75, 400, 'A', 0.6, 0.2, 'sent', 'tier A')"""),
        )
        conn.execute(
            text("""
            INSERT INTO stop_updates (order_ref, session, action, old_stop, new_stop,
                old_quantity, new_quantity, reason, dry_run, status)
            VALUES ('BRK-OPEN-20240301-L', :s, 'breakeven', 76, 80.25, 100, 100, 'test',
                    false, 'applied')"""),
            {"s": SESSION},
        )
        conn.execute(
            text("""
            INSERT INTO model_experiments (experiment_id, side, created_at, params, features,
                train_range, test_range, split, metrics, artifact_path, model_sha256, promoted,
                promotion)
            VALUES (:e, 'long', now(), '{}', '[]', '[2018-01-01,2022-01-01)',
                    '[2022-01-01,2024-01-01)', '{}', :metrics, 'long/x/model.ubj', 'x', true,
                    '{}')"""),
            {
                "e": EXPERIMENT,
                "metrics": json.dumps(
                    {
                        "calibration": [
                            {"bin": b, "observed_rate": b / 10 + 0.05} for b in range(10)
                        ],
                        "expectancy": [
                            {
                                "strategy": "scanner only",
                                "gate": None,
                                "trades": 900,
                                "win_rate": 0.41,
                                "expectancy_r": 0.05,
                                "expectancy_net_r": 0.01,
                            },
                            {
                                "strategy": "scanner + ML",
                                "gate": 0.5,
                                "trades": 300,
                                "win_rate": 0.52,
                                "expectancy_r": 0.31,
                                "expectancy_net_r": 0.27,
                            },
                            {
                                "strategy": "scanner + ML",
                                "gate": 0.55,
                                "trades": 200,
                                "win_rate": 0.55,
                                "expectancy_r": 0.4,
                                "expectancy_net_r": 0.36,
                            },
                        ],
                    }
                ),
            },
        )
    engine.dispose()
    model_store.mkdir(parents=True, exist_ok=True)
    (model_store / "ACTIVE_MODELS.json").write_text(
        json.dumps({"long": {"experiment_id": EXPERIMENT, "artifact_path": "long/x/model.ubj"}})
    )


@pytest.fixture
def report_settings(database_url: str, tmp_path: Path):
    def make(**smtp):
        return load_settings(
            database_url=database_url,
            files_dir=SAMPLE_DIR,
            dagster_home=tmp_path / "dagster_home",
            reports_dir=tmp_path / "reports",
            model_store_dir=tmp_path / "model_store",
            **smtp,
        )

    seed(database_url, tmp_path / "model_store")
    return make


def run_report(settings, session: str = SESSION):
    result = run_assets(settings, ["daily_report"], session, resources=build_resources(settings))
    assert result.success
    [event] = result.asset_materializations_for_node("daily_report")
    return result, {key: value.value for key, value in event.metadata.items()}


def deliveries(url: str):
    return read_table(url, "SELECT * FROM report_deliveries ORDER BY session")


def test_report_renders_every_section_and_is_emailed_once(report_settings, database_url):
    with smtp_server() as (inbox, port):
        settings = report_settings(
            smtp_host=HOST, smtp_port=port, smtp_security="none", smtp_to=("ops@example.test",)
        )
        _, metadata = run_report(settings)
        path = Path(metadata["path"])
        assert path == settings.reports_dir / SESSION / "report.html"
        html = path.read_text()
        for title in SECTIONS:
            assert title in html, title
        # the day's rows: signals, every book's pending plan, the order, fills, positions
        for expected in (
            "AAA:2024-03-05:long",
            "opposing",
            "BRK-AAA-20240305-L",
            "OPP-CCC-20240305-S",
            "OPT-AAA-20240305-L",
            "BRK-SENT-20240305-L",
            "BRK-LOSS-20240301-L",
        ):
            assert expected in html, expected
        assert "BRK-OLD-20240304-L" not in html  # sent, not awaiting approval
        # the open position and its add-on: the moved stop (not 76) and the plan's target
        open_rows = html[html.index('id="open"') : html.index('id="closed"')]
        assert open_rows.count("80.25") == 2 and open_rows.count("88.75") == 2
        assert "76.00" not in open_rows
        # P&L: today -202.00 (-1.01R); to date 798 - 202 = 596.00, win rate 50%,
        # expectancy net (1.995 - 1.01) / 2 = +0.49R; held-out at the 0.50 gate +0.27R
        assert "-$202.00" in html and "-1.01R" in html
        assert "$596.00" in html and "50.0%" in html and "+0.49R" in html
        assert "+0.27R" in html
        # live calibration: 4 final outcomes, 0.6-0.7 bucket 2 wins of 3
        assert "66.7%" in html
        for png in ("equity.png", "calibration.png"):
            assert (path.parent / png).read_bytes().startswith(b"\x89PNG")
        assert metadata["email"] == "sent"
        assert metadata["closed_today"] == 1 and metadata["open_positions"] == 2
        assert metadata["pending_plans"] == 3
        assert metadata["net_pnl_to_date"] == pytest.approx(596.0)
        assert "Open positions" in metadata["preview"]

        [received] = inbox.messages
        assert received.rcpt_tos == ["ops@example.test"]
        message = received.message
        assert SESSION in message["Subject"] and "3 awaiting approval" in message["Subject"]
        body = message.get_body(("html",)).get_content()
        assert "cid:equity" in body and "cid:calibration" in body
        assert "BRK-LOSS-20240301-L" in body
        images = {part["Content-ID"]: part.get_content() for part in message.iter_attachments()}
        assert set(images) == {"<equity>", "<calibration>"}
        assert all(png.startswith(b"\x89PNG") for png in images.values())

        # re-running the session rewrites the report and sends nothing
        _, again = run_report(settings)
        assert again["email"] == "already_sent"
        assert len(inbox.messages) == 1
    [row] = deliveries(database_url).itertuples()
    assert (row.status, row.attempts, list(row.recipients)) == ("sent", 1, ["ops@example.test"])


def test_a_quiet_session_renders_every_section_empty(report_settings):
    _, metadata = run_report(report_settings(), QUIET)
    html = Path(metadata["path"]).read_text()
    for title in SECTIONS:
        assert title in html, title
    for sentence in EMPTY:
        assert sentence in html, sentence
    assert "BRK-OPEN-20240301-L" in html  # still open on the next session
    assert metadata["email"] == "not_configured"
    assert metadata["closed_today"] == 0


def test_refused_connection_is_recorded_the_run_succeeds_and_a_later_run_retries(
    report_settings, database_url
):
    port = free_port()  # nothing listens there yet
    settings = report_settings(
        smtp_host=HOST, smtp_port=port, smtp_security="none", smtp_to=("ops@example.test",)
    )
    result, metadata = run_report(settings)
    assert metadata["email"] == "failed"
    assert "ConnectionRefusedError" in metadata["email_error"]
    assert Path(metadata["path"]).exists()
    warnings = [
        e.message
        for e in helpers.DEFAULT_INSTANCE.all_logs(result.run_id)
        if e.level == 30 and "email failed" in e.message
    ]
    assert len(warnings) == 1 and "ConnectionRefusedError" in warnings[0]
    [row] = deliveries(database_url).itertuples()
    assert (row.status, row.attempts) == ("failed", 1)
    assert "ConnectionRefusedError" in row.error

    with smtp_server(port=port) as (inbox, _):
        _, retried = run_report(settings)
    assert retried["email"] == "sent" and len(inbox.messages) == 1
    [row] = deliveries(database_url).itertuples()
    assert (row.status, row.attempts, row.error) == ("sent", 2, None)


def test_the_password_appears_nowhere(
    report_settings, database_url, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    """A login the server refuses: the failure is recorded, and the password is in none of
    report_deliveries, the materialisation's metadata, the run's logs or the report."""
    cert = self_signed_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    with smtp_server("starttls", cert, login=("breakout", "the-right-one")) as (inbox, port):
        settings = report_settings(
            smtp_host=HOST,
            smtp_port=port,
            smtp_security="starttls",
            smtp_user="breakout",
            smtp_to=("ops@example.test",),
        )
        assert settings.smtp_password is not None  # read from the environment
        result, metadata = run_report(settings)
    assert set(inbox.logins) == {("breakout", PASSWORD)}  # it was really tried (per mechanism)
    assert metadata["email"] == "failed" and "SMTPAuthenticationError" in metadata["email_error"]
    assert inbox.messages == []
    table = deliveries(database_url).to_json(date_format="iso")
    logs = [str(e) for e in helpers.DEFAULT_INSTANCE.all_logs(result.run_id)]
    for where in (table, str(metadata), *logs, Path(metadata["path"]).read_text()):
        assert PASSWORD not in where
    assert date.fromisoformat(SESSION) in set(deliveries(database_url)["session"])


def test_a_backfill_writes_every_report_and_emails_only_its_newest_session(
    report_settings, database_url
):
    with smtp_server() as (inbox, port):
        settings = report_settings(
            smtp_host=HOST, smtp_port=port, smtp_security="none", smtp_to=("ops@example.test",)
        )
        result = run_assets(
            settings, ["daily_report"], "2024-03-04", QUIET, resources=build_resources(settings)
        )
    assert result.success
    for session in ("2024-03-04", SESSION, QUIET):
        assert (settings.reports_dir / session / "report.html").exists()
    [received] = inbox.messages
    assert QUIET in received.message["Subject"]
    assert list(deliveries(database_url)["session"].astype(str)) == [QUIET]
    by_session = {
        event.partition: event.metadata["email"].value
        for event in result.asset_materializations_for_node("daily_report")
    }
    assert by_session == {"2024-03-04": "backfill", SESSION: "backfill", QUIET: "sent"}


def test_equity_curve_and_drawdown_by_hand() -> None:
    closed = pd.DataFrame(
        {
            "exit_session": [
                date(2024, 1, 2),
                date(2024, 1, 2),
                date(2024, 1, 3),
                date(2024, 1, 4),
            ],
            "net_pnl": [100.0, -50.0, -200.0, 300.0],
        }
    )
    curve = summary.equity_curve(closed, 1000.0)
    assert curve["equity"].tolist() == [1050.0, 850.0, 1150.0]
    assert curve["drawdown"].tolist() == [0.0, -200.0, 0.0]
    # a loss on the first day is a drawdown from the starting equity
    first_loss = summary.equity_curve(closed.iloc[2:], 1000.0)
    assert first_loss["drawdown"].tolist() == [-200.0, 0.0]
    assert summary.equity_curve(closed.iloc[:0], 1000.0).empty


def test_held_out_expectation_at_the_serving_gate() -> None:
    expectancy = [
        {"strategy": "scanner only", "gate": None, "expectancy_net_r": 0.01},
        {"strategy": "scanner + ML", "gate": 0.5, "expectancy_net_r": 0.2},
        {"strategy": "scanner + ML", "gate": 0.55, "expectancy_net_r": 0.3},
        {"strategy": "scanner + ML", "gate": 0.6, "expectancy_net_r": 0.4},
    ]
    cards = pd.DataFrame(
        [
            {
                "experiment_id": "e",
                "side": "long",
                "metrics": {"expectancy": expectancy},
                "test_start": date(2022, 1, 1),
                "test_end": date(2024, 1, 1),
            }
        ]
    )
    assert summary.held_out_expectation(cards, 0.57)["expectancy_net_r"].tolist() == [0.3]
    assert summary.held_out_expectation(cards, 0.6)["gate"].tolist() == [0.6]
    # below every tabulated gate: the scanner-only baseline
    assert summary.held_out_expectation(cards, 0.4)["expectancy_net_r"].tolist() == [0.01]


def test_performance_counts_a_trade_without_risk_in_dollars_not_in_r() -> None:
    closed = pd.DataFrame(
        {
            "book": ["primary", "primary", "opposing"],
            "r_gross": [2.0, -1.0, None],
            "r_net": [1.9, -1.1, None],
            "gross_pnl": [800.0, -400.0, 50.0],
            "fees": [4.0, 4.0, 2.0],
            "net_pnl": [796.0, -404.0, 48.0],
        }
    )
    table = summary.performance(closed).set_index("book")
    assert table.loc["all books", "trades"] == 3 and table.loc["all books", "wins"] == 2
    assert table.loc["all books", "net_pnl"] == pytest.approx(440.0)
    assert table.loc["all books", "expectancy_net_r"] == pytest.approx(0.4)
    assert table.loc["primary", "win_rate"] == pytest.approx(0.5)
    assert table.loc["opposing", "trades"] == 1 and np.isnan(table.loc["opposing", "win_rate"])

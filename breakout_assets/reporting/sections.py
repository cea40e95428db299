"""The report's sections in reading order: what each shows, its columns and formats, and what
it says when it has no rows."""

from __future__ import annotations

import pandas as pd

from breakout_assets.reporting.data import SessionRows
from breakout_assets.reporting.render import (
    Column,
    Section,
    integer,
    money,
    percent,
    price,
    r_multiple,
    ratio,
)

_BOOK = Column("book", "book")
_TICKER = Column("ticker", "ticker")
_SIDE = Column("side", "side")


def report_sections(
    rows: SessionRows,
    today: pd.DataFrame,
    performance: pd.DataFrame,
    primary: pd.DataFrame,
    held_out: pd.DataFrame,
    curve: pd.DataFrame,
    calibration: pd.DataFrame,
) -> tuple[Section, ...]:
    filled_buckets = calibration[calibration["count"] > 0] if not calibration.empty else calibration
    gap = _calibration_note(filled_buckets)
    expectation_note = _expectation_note(primary, held_out)
    return (
        Section(
            "signals",
            "Signals and decisions",
            [
                Column("signal_id", "signal"),
                _TICKER,
                _SIDE,
                Column("confidence", "confidence", ratio),
                Column("expected_value", "EV", r_multiple),
                Column("tier", "tier"),
                Column("decision", "decision"),
                Column("entry", "entry", price),
                Column("stop", "stop", price),
                Column("target", "target", price),
                Column("reason", "reason"),
            ],
            rows.signals,
            "no signals scored this session",
        ),
        Section(
            "pending",
            "Plans awaiting approval",
            [
                _BOOK,
                Column("order_ref", "order ref"),
                Column("session", "session"),
                _TICKER,
                _SIDE,
                Column("quantity", "shares / contracts", integer),
                Column("entry", "entry / debit", price),
                Column("stop", "stop", price),
                Column("target", "target / close trigger", price),
                Column("risk_dollars", "risk $", money),
                Column("confidence", "confidence", ratio),
            ],
            rows.pending_plans,
            "no plans awaiting approval",
            note="Decide with `breakout approve` / `breakout reject` (or the dashboard).",
        ),
        Section(
            "orders",
            "Orders",
            [
                _BOOK,
                Column("order_ref", "order ref"),
                Column("broker", "broker"),
                Column("dry_run", "dry run"),
                Column("status", "status"),
                Column("sent_at", "sent at"),
                Column("error", "error"),
            ],
            rows.orders,
            "no orders for this session",
        ),
        Section(
            "fills",
            "Fills",
            [
                Column("trade_id", "trade"),
                _BOOK,
                _TICKER,
                _SIDE,
                Column("fill", "fill"),
                Column("filled_at", "time"),
                Column("price", "price", price),
                Column("quantity", "quantity", integer),
                Column("exit_reason", "exit reason"),
            ],
            rows.fills,
            "no fills this session",
        ),
        Section(
            "open",
            "Open positions",
            [
                Column("trade_id", "trade"),
                _BOOK,
                _TICKER,
                _SIDE,
                Column("quantity", "quantity", integer),
                Column("entry_session", "entered"),
                Column("entry_price", "entry", price),
                Column("stop", "stop", price),
                Column("target", "target", price),
                Column("initial_risk", "risk $", money),
            ],
            rows.open_positions,
            "no open positions",
            note="Stop and target in force for the next session (after this close's management).",
        ),
        Section(
            "closed",
            "Closed trades",
            [
                Column("trade_id", "trade"),
                _BOOK,
                _TICKER,
                _SIDE,
                Column("quantity", "quantity", integer),
                Column("entry_price", "entry", price),
                Column("exit_price", "exit", price),
                Column("exit_reason", "exit"),
                Column("fees", "fees $", money),
                Column("net_pnl", "net P&L $", money),
                Column("r_gross", "R gross", r_multiple),
                Column("r_net", "R net", r_multiple),
            ],
            today,
            "no closed trades this session",
        ),
        Section(
            "pnl",
            "P&L and performance to date",
            [
                _BOOK,
                Column("trades", "trades", integer),
                Column("win_rate", "win rate", percent),
                Column("expectancy_r", "expectancy", r_multiple),
                Column("expectancy_net_r", "expectancy net", r_multiple),
                Column("sum_net_r", "sum R net", r_multiple),
                Column("gross_pnl", "gross $", money),
                Column("fees", "fees $", money),
                Column("net_pnl", "net $", money),
            ],
            performance[performance["trades"] > 0],
            "no closed trades to date",
        ),
        Section(
            "expectation",
            "Against the serving model's held-out expectation",
            [
                _SIDE,
                Column("experiment_id", "model"),
                Column("test_range", "held-out range"),
                Column("gate", "gate", ratio),
                Column("trades", "trades", integer),
                Column("win_rate", "win rate", percent),
                Column("expectancy_r", "expectancy", r_multiple),
                Column("expectancy_net_r", "expectancy net", r_multiple),
            ],
            held_out,
            "no serving model: nothing to compare with",
            note=expectation_note,
        ),
        Section(
            "equity",
            "Equity curve",
            [
                Column("session", "session"),
                Column("net_pnl", "day net $", money),
                Column("equity", "equity $", money),
                Column("drawdown", "drawdown $", money),
            ],
            curve.tail(10),
            "no closed trades yet",
            note="Realised: closed trades' net P&L by exit session (last 10 shown).",
            image="equity",
        ),
        Section(
            "calibration",
            "Live calibration",
            [
                _SIDE,
                Column("lower", "from", ratio),
                Column("upper", "to", ratio),
                Column("count", "signals", integer),
                Column("mean_predicted", "mean confidence", ratio),
                Column("observed_rate", "live win rate", percent),
                Column("held_out_rate", "held-out win rate", percent),
            ],
            filled_buckets,
            "no scored signal has a final outcome yet",
            note=gap,
            image="calibration",
        ),
    )


def _expectation_note(primary: pd.DataFrame, held_out: pd.DataFrame) -> str | None:
    if primary.empty or held_out.empty:
        return None
    live = primary.iloc[0]
    expected = held_out["expectancy_net_r"].dropna()
    if expected.empty or pd.isna(live["expectancy_net_r"]):
        return None
    return (
        f"Primary book: {int(live['trades'])} closed trade(s) at "
        f"{r_multiple(live['expectancy_net_r'])} net a trade; held-out "
        + ", ".join(
            f"{row.side} {r_multiple(row.expectancy_net_r)}"
            for row in held_out.dropna(subset=["expectancy_net_r"]).itertuples()
        )
        + "."
    )


def _calibration_note(filled: pd.DataFrame) -> str | None:
    if filled.empty:
        return None
    gaps = (filled["observed_rate"] - filled["held_out_rate"]).abs().dropna()
    if gaps.empty:
        return f"{int(filled['count'].sum())} scored signal(s) with final outcomes."
    return (
        f"{int(filled['count'].sum())} scored signal(s) with final outcomes; largest gap "
        f"between live and held-out win rate in a bucket: {percent(gaps.max())}."
    )

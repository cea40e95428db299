"""One session's report: its sections, plots, headline figures, and the files on disk.

Every section is always present: one with no rows says so ("no closed trades"), so a quiet
day's report reads as quiet, not as broken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from breakout_assets.reporting import summary
from breakout_assets.reporting.data import SessionRows
from breakout_assets.reporting.figures import calibration_png, equity_png
from breakout_assets.reporting.render import (
    Column,
    Section,
    dollars,
    integer,
    money,
    percent,
    price,
    r_multiple,
    ratio,
    render_html,
)
from breakout_assets.resources.mailer import InlineImage

REPORT_FILE = "report.html"
PLOTS = {"equity": "equity.png", "calibration": "calibration.png"}


@dataclass(frozen=True)
class ReportOptions:
    """What the report reads besides the rows: the serving gate and label (the yardsticks of
    the held-out figures), the broker's starting equity when known, where Dagster is."""

    confidence_gate: float
    label: str
    starting_equity: float | None
    broker: str
    dry_run: bool
    dagster_url: str | None = None


@dataclass(frozen=True)
class DailyReport:
    session: str
    sections: tuple[Section, ...]
    headline: tuple[tuple[str, str], ...]
    figures: dict[str, float | int]
    plots: dict[str, bytes]  # plot name -> PNG
    context: dict

    def html(self, image_src: dict[str, str]) -> str:
        return render_html(self.context, image_src)

    @property
    def file_html(self) -> str:
        return self.html(dict(PLOTS))

    @property
    def email_html(self) -> str:
        return self.html({name: f"cid:{name}" for name in PLOTS})

    @property
    def images(self) -> tuple[InlineImage, ...]:
        return tuple(InlineImage(name, PLOTS[name], png) for name, png in self.plots.items())

    def markdown(self) -> str:
        """The asset's metadata preview: headline, then each section's row count."""
        lines = [f"**Breakout daily report {self.session}**", ""]
        lines += [f"- {label}: {value}" for label, value in self.headline]
        lines += ["", "| section | rows |", "|---|---:|"]
        lines += [f"| {s.title} | {s.count} |" for s in self.sections if not s.image]
        return "\n".join(lines)

    def text(self, path: Path | None = None) -> str:
        """The email's plain-text part (and what a terminal mail reader shows)."""
        lines = [f"Breakout daily report {self.session}", ""]
        lines += [f"{label}: {value}" for label, value in self.headline]
        lines += [""] + [f"{s.title}: {s.count} row(s)" for s in self.sections if not s.image]
        if path is not None:
            lines += ["", f"Report: {path}"]
        return "\n".join(lines) + "\n"


def _finite(value) -> float:
    return float(value) if value is not None and not pd.isna(value) else math.nan


def _shown(value: float, fmt) -> str:
    return "—" if math.isnan(value) else fmt(value)


def build_report(rows: SessionRows, options: ReportOptions) -> DailyReport:
    session = rows.session.isoformat()
    today = rows.closed_today
    performance = summary.performance(rows.closed_trades)
    primary = performance[performance["book"] == "primary"]
    held_out = summary.held_out_expectation(rows.experiments, options.confidence_gate)
    curve = summary.equity_curve(rows.closed_trades, options.starting_equity)
    calibration = summary.live_calibration(rows.scored_outcomes, rows.experiments, options.label)
    to_date = performance.iloc[0]
    figures = {
        "signals": len(rows.signals),
        "trades_decided": int((rows.signals.get("decision") == "trade").sum())
        if not rows.signals.empty
        else 0,
        "pending_plans": len(rows.pending_plans),
        "orders": len(rows.orders),
        "fills": len(rows.fills),
        "open_positions": len(rows.open_positions),
        "closed_today": len(today),
        "day_net_pnl": float(today["net_pnl"].sum()),
        "day_net_r": float(today["r_net"].sum()),
        "closed_to_date": int(to_date["trades"]),
        "net_pnl_to_date": float(to_date["net_pnl"]),
        "win_rate_to_date": _finite(to_date["win_rate"]),
        "expectancy_net_r_to_date": _finite(to_date["expectancy_net_r"]),
        "live_scored_outcomes": len(rows.scored_outcomes),
    }
    headline = (
        ("Day net P&L", dollars(figures["day_net_pnl"])),
        ("Day R (net)", r_multiple(figures["day_net_r"])),
        ("Closed today", str(figures["closed_today"])),
        ("Open positions", str(figures["open_positions"])),
        ("Awaiting approval", str(figures["pending_plans"])),
        ("Net P&L to date", dollars(figures["net_pnl_to_date"])),
        ("Win rate to date", _shown(figures["win_rate_to_date"], percent)),
        ("Expectancy to date", _shown(figures["expectancy_net_r_to_date"], r_multiple)),
    )
    sections = _sections(rows, today, performance, primary, held_out, curve, calibration)
    plots = {
        "equity": equity_png(curve, session),
        "calibration": calibration_png(calibration, session),
    }
    context = {
        "session": session,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "broker": options.broker,
        "dry_run": options.dry_run,
        "dagster_url": options.dagster_url,
        "headline": headline,
        "sections": sections,
    }
    return DailyReport(session, sections, headline, figures, plots, context)


_BOOK = Column("book", "book")
_TICKER = Column("ticker", "ticker")
_SIDE = Column("side", "side")


def _sections(rows, today, performance, primary, held_out, curve, calibration):
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


def write_report(report: DailyReport, reports_dir: Path) -> Path:
    """reports/<session>/report.html and its PNGs, each written whole (temp file, rename)."""
    folder = reports_dir / report.session
    folder.mkdir(parents=True, exist_ok=True)
    for name, png in report.plots.items():
        _replace(folder / PLOTS[name], png)
    path = folder / REPORT_FILE
    _replace(path, report.file_html.encode())
    return path


def _replace(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)

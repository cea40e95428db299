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
from breakout_assets.reporting.render import Section, dollars, percent, r_multiple, render_html
from breakout_assets.reporting.sections import report_sections
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
    sections = report_sections(rows, today, performance, primary, held_out, curve, calibration)
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

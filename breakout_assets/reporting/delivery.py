"""The report's email, sent once per session: `report_deliveries` remembers what was sent.

The session's row is locked while it is decided, so two overlapping runs of one session send
one email. A 'sent' row makes every later run send nothing; 'failed' or 'not_configured' is
tried again by the next run. A mail failure is recorded, never raised: email reports trading,
it does not gate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from breakout_assets.reporting.daily import DailyReport
from breakout_assets.reporting.render import dollars
from breakout_assets.resources.mailer import Mailer, compose
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query


@dataclass(frozen=True)
class Delivery:
    """What this run did about the session's email: 'sent', 'failed', 'not_configured', or
    'already_sent' (an earlier run sent it: nothing was sent now)."""

    status: str
    recipients: tuple[str, ...]
    attempts: int
    error: str | None = None

    @property
    def needs_attention(self) -> bool:
        return self.status == "failed"


def subject(report: DailyReport) -> str:
    figures = report.figures
    return (
        f"Breakout {report.session}: day net {dollars(figures['day_net_pnl'])}, "
        f"{figures['closed_today']} closed, {figures['open_positions']} open, "
        f"{figures['pending_plans']} awaiting approval"
    )


def deliver_once(
    postgres: PostgresResource, mailer: Mailer, report: DailyReport, path: Path
) -> Delivery:
    session = date.fromisoformat(report.session)
    with postgres.transaction() as conn:
        conn.execute(query("report.lock_delivery"), {"session": session})
        previous = conn.execute(query("report.delivery"), {"session": session}).mappings().first()
        if previous is not None and previous["status"] == "sent":
            return Delivery("already_sent", tuple(previous["recipients"]), previous["attempts"])
        message = compose(subject(report), report.text(path), report.email_html, report.images)
        result = mailer.send(message)
        attempts = conn.execute(
            query("report.record_delivery"),
            {
                "session": session,
                "report_path": str(path),
                "status": result.status,
                "recipients": list(result.recipients),
                "error": result.error,
            },
        ).scalar_one()
    return Delivery(result.status, result.recipients, attempts, result.error)

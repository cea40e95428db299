"""The options book's promotion: `breakout options status | promote | rollback` (issue 11).

The overlay runs in paper (the simulated broker) until a forward test promotes it. `promote`
passes only when the paper book has at least `min_closed` closed spreads (setting
BREAKOUT_OPTIONS__MIN_CLOSED_FOR_PROMOTION) with a positive expectancy: the mean R of the closed
spreads in debit units, (exit - debit) / debit, so a spread expired worthless is -1R. Each
decision is a row of `options_promotions` (who, when, the figures it saw); `rollback` returns
the book to paper with a row too. The latest row decides: `live_allowed` is True only after a
promote that no rollback followed, and `require_live_promotion` is what the asset that sends
spreads calls before it sends anything with BREAKOUT_OPTIONS__MODE=live.

The forward test reads the simulated broker's combos (`sim_spread_*`): with an IBKR paper
account there is no closed spread here to count, so such a book cannot be promoted from it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection

from breakout_assets.resources.sql import query

PROMOTE_COMMAND = "breakout options promote"


class OptionsPromotionError(RuntimeError):
    """A promotion refused (the shortfall named), or live mode without a promotion record."""


@dataclass(frozen=True)
class PaperFigures:
    """The paper forward test: closed spreads and their R in debit units."""

    closed: int
    expectancy_r: float | None  # mean R; None without a closed spread
    win_rate: float | None  # share of closed spreads with R > 0
    total_r: float
    first_exit: str | None
    last_exit: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def paper_figures(conn: Connection) -> PaperFigures:
    rows = conn.execute(query("options.closed_paper_spreads")).mappings().all()
    rs = [float(r["r"]) for r in rows]
    n = len(rs)
    return PaperFigures(
        closed=n,
        expectancy_r=sum(rs) / n if n else None,
        win_rate=sum(r > 0 for r in rs) / n if n else None,
        total_r=sum(rs),
        first_exit=str(rows[0]["exit_session"]) if rows else None,
        last_exit=str(rows[-1]["exit_session"]) if rows else None,
    )


def shortfalls(figures: PaperFigures, min_closed: int) -> list[str]:
    """What keeps the paper book from promotion (empty: it qualifies)."""
    missing = []
    if figures.closed < min_closed:
        missing.append(
            f"{figures.closed} closed paper spread(s), {min_closed} needed "
            "(BREAKOUT_OPTIONS__MIN_CLOSED_FOR_PROMOTION)"
        )
    if figures.expectancy_r is None or not figures.expectancy_r > 0:
        shown = "none" if figures.expectancy_r is None else f"{figures.expectancy_r:+.3f}R"
        missing.append(f"expectancy {shown}, positive needed")
    return missing


def latest_decision(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(query("options.latest_promotion")).mappings().first()
    return dict(row) if row is not None else None


def live_allowed(conn: Connection) -> bool:
    """The options book may trade live: its latest record is a promotion."""
    latest = latest_decision(conn)
    return latest is not None and latest["action"] == "promote"


def require_live_promotion(conn: Connection, mode: str) -> None:
    """Refuse live spreads without a promotion record (paper and off pass through)."""
    if mode != "live" or live_allowed(conn):
        return
    latest = latest_decision(conn)
    why = (
        "has no promotion record"
        if latest is None
        else f"was rolled back to paper by {latest['decided_by']} at {latest['decided_at']}"
    )
    raise OptionsPromotionError(
        f"BREAKOUT_OPTIONS__MODE=live but the options book {why}: no live spread is sent. "
        f"Run `{PROMOTE_COMMAND}` once the paper forward test qualifies "
        "(see `breakout options status`), or set BREAKOUT_OPTIONS__MODE=paper."
    )


def operator(by: str | None = None) -> str:
    """Who decides: --by, else the OS user."""
    return by or os.environ.get("USER") or os.environ.get("USERNAME") or "operator"


def _record(conn: Connection, action: str, decided_by: str, figures: dict) -> dict[str, Any]:
    row = (
        conn.execute(
            query("options.record_promotion"),
            {"action": action, "decided_by": decided_by, "figures": json.dumps(figures)},
        )
        .mappings()
        .one()
    )
    return dict(row)


def promote(
    conn: Connection, decided_by: str, min_closed: int, mode: str = "paper"
) -> dict[str, Any]:
    """Record a promotion when the paper forward test qualifies; refuse naming the shortfall."""
    conn.execute(query("options.lock_promotions"))
    latest = latest_decision(conn)
    if latest is not None and latest["action"] == "promote":
        raise OptionsPromotionError(
            f"the options book is already promoted (by {latest['decided_by']} at "
            f"{latest['decided_at']}); `breakout options rollback` first to decide again"
        )
    figures = paper_figures(conn)
    missing = shortfalls(figures, min_closed)
    if missing:
        raise OptionsPromotionError(
            "the options book stays in paper: " + "; ".join(missing) + " (nothing recorded)"
        )
    return _record(
        conn,
        "promote",
        decided_by,
        {**figures.as_dict(), "min_closed_for_promotion": min_closed, "mode": mode},
    )


def rollback(conn: Connection, decided_by: str, mode: str = "paper") -> dict[str, Any]:
    """Return the options book to paper (recorded with the figures of the moment)."""
    conn.execute(query("options.lock_promotions"))
    if not live_allowed(conn):
        raise OptionsPromotionError("the options book is not promoted: nothing to roll back")
    return _record(conn, "rollback", decided_by, {**paper_figures(conn).as_dict(), "mode": mode})


def status(conn: Connection, mode: str, min_closed: int) -> dict[str, Any]:
    figures = paper_figures(conn)
    return {
        "mode": mode,
        "live_allowed": live_allowed(conn),
        "latest": latest_decision(conn),
        "figures": figures,
        "min_closed": min_closed,
        "shortfalls": shortfalls(figures, min_closed),
    }


def _r(value: float | None, fmt: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, fmt)


def format_status(report: dict[str, Any]) -> str:
    f: PaperFigures = report["figures"]
    latest = report["latest"]
    lines = [f"mode: {report['mode']} (BREAKOUT_OPTIONS__MODE)"]
    if latest is None:
        lines.append("promotion: none recorded (paper)")
    else:
        lines.append(
            f"promotion: {latest['action']} by {latest['decided_by']} at {latest['decided_at']}"
        )
    if report["mode"] == "live" and not report["live_allowed"]:
        lines.append(f"LIVE REFUSED: no promotion in force; run `{PROMOTE_COMMAND}`")
    lines.append(
        f"paper forward test: {f.closed} closed spread(s) (need {report['min_closed']}), "
        f"expectancy {_r(f.expectancy_r, '+.3f')}R, win rate {_r(f.win_rate, '.1%')}, "
        f"total {f.total_r:+.2f}R"
        + (f", exits {f.first_exit} .. {f.last_exit}" if f.first_exit else "")
    )
    lines.append(
        "promotable: yes"
        if not report["shortfalls"]
        else "promotable: no (" + "; ".join(report["shortfalls"]) + ")"
    )
    return "\n".join(lines)

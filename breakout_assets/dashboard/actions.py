"""The dashboard's only writes, each behind a button: approvals through the same
`approvals.decide` (and the same records) as `breakout approve|reject`, and the kill-switch
file as `breakout kill-switch on|off`. Nothing here sends an order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from breakout_assets.approvals import decide
from breakout_assets.dashboard.desk import Desk
from breakout_assets.resources.kill_switch import KillSwitch, KillSwitchError


class OperatorError(ValueError):
    """A decision the dashboard refuses before touching anything; the message says why."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def decided_by(operator: str) -> str:
    """Who decided, as the CLI writes it (`<name> (cli)`): the dashboard says where it was."""
    name = " ".join(operator.split())
    if not name:
        raise OperatorError("enter your name (Operator, in the sidebar) before deciding")
    return f"{name} (dashboard)"


def decide_plans(
    desk: Desk, session: date, approve: bool, operator: str, refs: list[str] | None
) -> Outcome:
    """Approve or reject pending plans of one session (`refs` None: all of them)."""
    verb = "approved" if approve else "rejected"
    try:
        decided = decide(desk.postgres, session, approve, decided_by(operator), refs)
    except ValueError as exc:  # OperatorError too; decide names plans no longer pending
        return Outcome(False, str(exc))
    return Outcome(True, f"{verb} {len(decided)} plan(s) of {session}: {', '.join(decided)}")


def engage_kill_switch(desk: Desk, operator: str, reason: str, confirmed: bool) -> Outcome:
    if not confirmed:
        return Outcome(False, "tick the confirmation first: nothing was changed")
    try:
        switch = KillSwitch(desk.settings.kill_switch_path)
        switch.engage(reason.strip() or "dashboard", by=decided_by(operator))
    except (OperatorError, KillSwitchError) as exc:
        return Outcome(False, str(exc))
    return Outcome(True, f"KILL SWITCH ON: {switch.path} (no order will be sent)")


def release_kill_switch(desk: Desk, confirmed: bool) -> Outcome:
    if not confirmed:
        return Outcome(False, "tick the confirmation first: nothing was changed")
    try:
        released = KillSwitch(desk.settings.kill_switch_path).release()
    except KillSwitchError as exc:
        return Outcome(False, str(exc))
    return Outcome(True, "kill switch off" if released else "kill switch was already off")

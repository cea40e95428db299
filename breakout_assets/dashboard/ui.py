"""What every page shares: the desk (or one clear error), the operator's name, the kill-switch
banner and the messages an action leaves for the next page run."""

from __future__ import annotations

import os

import streamlit as st

from breakout_assets.dashboard.actions import Outcome
from breakout_assets.dashboard.desk import Desk
from breakout_assets.resources.kill_switch import KillSwitch
from breakout_assets.resources.local_postgres import redact
from breakout_assets.resources.postgres import DatabaseUnreachable
from breakout_assets.settings import SettingsError

OPERATOR_KEY = "operator"
_REMEMBERED = "operator_remembered"  # a widget's own state does not survive a page change
_MESSAGES = "dashboard_messages"


def page() -> Desk:
    """Every page starts here: the desk, and the sidebar with who is deciding."""
    found = desk()
    sidebar(found)
    return found


def desk() -> Desk:
    """The desk, or an error naming what to fix (a setting, an unreachable database)."""
    try:
        found = Desk.from_environment()
        found.postgres.url  # noqa: B018 - reach the server now: one clear error, not one per read
    except (SettingsError, DatabaseUnreachable) as exc:
        st.error(f"Cannot open the desk: {exc}")
        st.stop()
    return found


def operator() -> str:
    return str(st.session_state.get(OPERATOR_KEY, ""))


def _remember_operator() -> None:
    st.session_state[_REMEMBERED] = st.session_state[OPERATOR_KEY]


def sidebar(found: Desk) -> None:
    if _REMEMBERED in st.session_state:
        st.session_state[OPERATOR_KEY] = st.session_state[_REMEMBERED]
    st.sidebar.text_input(
        "Operator",
        key=OPERATOR_KEY,
        on_change=_remember_operator,
        placeholder=os.environ.get("USER", "your name"),
        help="Recorded as who decided, e.g. 'alice (dashboard)' (the CLI writes 'alice (cli)').",
    )
    settings = found.settings
    st.sidebar.caption(
        f"Database: {redact(found.postgres.url)}  \n"
        f"Broker: {settings.broker} · dry run: {'on' if settings.dry_run else 'OFF'} · "
        f"auto-approve: {'ON' if settings.auto_approve else 'off'}"
    )
    switch = KillSwitch(settings.kill_switch_path)
    if switch.engaged():
        st.sidebar.error(f"KILL SWITCH ON: {switch.details().get('reason', '')}")
    else:
        st.sidebar.success("Kill switch off")


def leave_message(outcome: Outcome) -> None:
    st.session_state.setdefault(_MESSAGES, []).append(outcome)


def show_messages() -> None:
    for outcome in st.session_state.pop(_MESSAGES, []):
        (st.success if outcome.ok else st.error)(outcome.message)


def money(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"

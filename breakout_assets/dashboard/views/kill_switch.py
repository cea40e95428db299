"""The kill switch (`BREAKOUT_KILL_SWITCH_PATH`): engaging writes the file, which stops every
order at once; releasing removes it. Both need the confirmation ticked, as in an emergency the
wrong click must not be the one that counts."""

import streamlit as st

from breakout_assets.dashboard import actions, ui
from breakout_assets.dashboard.desk import Desk
from breakout_assets.resources.kill_switch import KillSwitch

CONFIRM_ON = "kill-switch-confirm-on"
CONFIRM_OFF = "kill-switch-confirm-off"
REASON = "kill-switch-reason"


def _engage(desk: Desk) -> None:
    ui.leave_message(
        actions.engage_kill_switch(
            desk,
            ui.operator(),
            str(st.session_state.get(REASON, "")),
            bool(st.session_state.get(CONFIRM_ON)),
        )
    )


def _release(desk: Desk) -> None:
    ui.leave_message(actions.release_kill_switch(desk, bool(st.session_state.get(CONFIRM_OFF))))


desk = ui.page()
st.title("Kill switch")
ui.show_messages()
switch = KillSwitch(desk.settings.kill_switch_path)
if switch.engaged():
    details = switch.details()
    st.error(
        f"ON since {details.get('at', '?')} by {details.get('by', '?')}: "
        f"{details.get('reason', '')}. No order is sent and broker runs are cancelled."
    )
    st.caption(f"File: {switch.path}")
    st.checkbox("I confirm: resume order activity", key=CONFIRM_OFF)
    st.button("Release kill switch", key="kill-switch-off", on_click=_release, args=(desk,))
else:
    st.success("OFF: orders flow as the settings allow.")
    st.caption(
        f"Engaging writes {switch.path}; `breakout kill-switch off` or this page removes it."
    )
    st.text_input("Reason", key=REASON, placeholder="why trading must stop")
    st.checkbox("I confirm: halt all order activity now", key=CONFIRM_ON)
    st.button(
        "Engage kill switch", key="kill-switch-on", type="primary", on_click=_engage, args=(desk,)
    )

"""The approval queue: pending brackets, fades and option spreads, approved or rejected through
`approvals.decide`, the same call and records as `breakout approve|reject`, with the operator's
name as who decided. A decision is a button click; loading the page decides nothing."""

from datetime import date

import streamlit as st

from breakout_assets.dashboard import actions, ui
from breakout_assets.dashboard import desk as reads
from breakout_assets.dashboard.desk import Desk


def _decide(desk: Desk, session: date, approve: bool, refs: list[str] | None) -> None:
    ui.leave_message(actions.decide_plans(desk, session, approve, ui.operator(), refs))


def _decide_all(desk: Desk, session: date, approve: bool) -> None:
    if not st.session_state.get(f"confirm-all-{session}"):
        ui.leave_message(actions.Outcome(False, "tick the confirmation first: nothing was decided"))
        return
    _decide(desk, session, approve, None)


desk = ui.page()
st.title("Approval queue")
ui.show_messages()
if not ui.operator().strip():
    st.warning("Enter your name as Operator in the sidebar: every decision records who made it.")
pending = reads.pending_plans(desk)
st.caption(
    f"{len(pending)} plan(s) pending approval. Approving only marks a plan approved: the "
    "`broker_orders`, `opposing_orders` and `option_orders` runs send what is approved "
    f"(dry run: {'on' if desk.settings.dry_run else 'OFF'})."
)
for session, plans in pending.groupby("session", sort=True):
    st.subheader(f"Session {session}: {len(plans)} pending")
    st.dataframe(plans.drop(columns=["session"]), hide_index=True)
    for plan in plans.itertuples():
        label, approve, reject = st.columns([6, 1, 1])
        label.markdown(
            f"`{plan.order_ref}` · {plan.kind} · {plan.ticker} {plan.side} "
            f"{plan.quantity} @ {plan.price:.2f} · risk {ui.money(plan.risk_dollars)}"
        )
        approve.button(
            "Approve",
            key=f"approve-{plan.order_ref}",
            on_click=_decide,
            args=(desk, session, True, [plan.order_ref]),
        )
        reject.button(
            "Reject",
            key=f"reject-{plan.order_ref}",
            on_click=_decide,
            args=(desk, session, False, [plan.order_ref]),
        )
    confirm, approve_all, reject_all = st.columns([6, 1, 1])
    confirm.checkbox(
        f"Decide all {len(plans)} plans of {session} at once", key=f"confirm-all-{session}"
    )
    approve_all.button(
        "Approve all",
        key=f"approve-all-{session}",
        on_click=_decide_all,
        args=(desk, session, True),
    )
    reject_all.button(
        "Reject all",
        key=f"reject-all-{session}",
        on_click=_decide_all,
        args=(desk, session, False),
    )
if pending.empty:
    st.success("Nothing awaits approval.")

st.subheader("Recent decisions")
st.dataframe(reads.recent_decisions(desk), hide_index=True)

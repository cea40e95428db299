"""Open positions with the stop in force (the latest stop the broker accepted, else the entry
stop), the take-profit, and what each stands to make or lose at the last close and at its stop."""

import streamlit as st

from breakout_assets.dashboard import desk as reads
from breakout_assets.dashboard import ui
from breakout_assets.dashboard.figures import position_risk

desk = ui.page()
st.title("Open positions")
positions = reads.open_positions(desk)
if positions.empty:
    st.info("No open position in the journal.")
    st.stop()
positions = position_risk(positions)
cells = st.columns(4)
cells[0].metric("Open positions", len(positions))
cells[1].metric("Unrealised P&L (stocks)", ui.money(float(positions["unrealised_pnl"].sum())))
cells[2].metric("P&L if every stop is hit", ui.money(float(positions["pnl_at_stop"].sum())))
cells[3].metric("Stops moved", int(positions["stop_action"].notna().sum()))
st.caption(
    "Stop in force: the latest stop_updates action the broker accepted for the position (or its "
    "primary, for an add-on), else the stop it was entered with. Last close: the latest bar held "
    "(an option spread's is its underlying's; at its stop a spread loses its debit)."
)
st.dataframe(
    positions[
        [
            "trade_id",
            "book",
            "ticker",
            "side",
            "quantity",
            "entry_session",
            "entry_price",
            "initial_stop",
            "stop",
            "stop_action",
            "stop_session",
            "take_profit",
            "last_close",
            "last_session",
            "unrealised_pnl",
            "pnl_at_stop",
            "confidence",
            "tier",
        ]
    ],
    hide_index=True,
    column_config={
        "unrealised_pnl": st.column_config.NumberColumn(format="$%.2f"),
        "pnl_at_stop": st.column_config.NumberColumn(format="$%.2f"),
    },
)

"""Equity curve and drawdown: the starting equity plus closed trades' net P&L, session by
session of exit (realised only: open positions are on their own page)."""

import altair as alt
import streamlit as st

from breakout_assets.dashboard import desk as reads
from breakout_assets.dashboard import ui
from breakout_assets.dashboard.figures import equity_curve

desk = ui.page()
st.title("Equity & drawdown")
start = desk.settings.simulated_starting_equity
closed = reads.closed_pnl_by_session(desk)
if closed.empty:
    st.info("No closed trade in the journal yet: the curve starts at the first exit.")
    st.stop()
curve = equity_curve(closed, start)
now = curve.iloc[-1]
worst = curve.loc[curve["drawdown_pct"].idxmin()]
cells = st.columns(5)
cells[0].metric("Starting equity", ui.money(start))
cells[1].metric("Equity (realised)", ui.money(float(now["equity"])))
cells[2].metric("Return", ui.fraction(float(now["equity"]) / start - 1))
cells[3].metric("Max drawdown", ui.fraction(float(worst["drawdown_pct"])))
cells[4].metric("Current drawdown", ui.fraction(float(now["drawdown_pct"])))
st.caption(
    f"{int(closed['trades'].sum())} closed trades over {len(curve)} sessions of exit; "
    f"max drawdown {ui.money(float(worst['drawdown']))} on {worst['session']}. Starting equity: "
    + (
        "the simulated broker's starting cash (BREAKOUT_SIMULATED_STARTING_EQUITY)."
        if desk.settings.broker == "simulated"
        else "BREAKOUT_SIMULATED_STARTING_EQUITY (set it to the IBKR account's equity at the "
        "journal's start); the dashboard never connects to the broker."
    )
)
dates = alt.X("session:T", title=None)
st.subheader("Equity")
st.altair_chart(
    alt.Chart(curve.melt("session", ["equity", "peak"], var_name="series"))
    .mark_line(point=len(curve) < 60)
    .encode(
        x=dates,
        y=alt.Y("value:Q", title="dollars", scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", title=None),
    ),
)
st.subheader("Drawdown from peak")
st.altair_chart(
    alt.Chart(curve)
    .mark_area(opacity=0.6, color="#d62728", interpolate="step-after")
    .encode(x=dates, y=alt.Y("drawdown_pct:Q", title="drawdown", axis=alt.Axis(format="%"))),
)
st.dataframe(curve.iloc[::-1], hide_index=True)

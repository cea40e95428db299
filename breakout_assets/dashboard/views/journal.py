"""Journal: one row per trade (the `journal` asset), filtered by session, book, side, status,
exit and ticker, with the filtered trades' win rate, net P&L and expectancy."""

import streamlit as st

from breakout_assets.dashboard import desk as reads
from breakout_assets.dashboard import ui
from breakout_assets.dashboard.figures import journal_summary

BOOKS = ["primary", "add_on", "opposing", "option_spread"]
EXIT_REASONS = ["target", "stop", "breakeven", "trail", "expiry", "manual", "settlement"]

desk = ui.page()
st.title("Journal")
bounds = reads.journal_bounds(desk)
if bounds is None:
    st.info("No trade in the journal yet: the `journal` asset writes one row per trade.")
    st.stop()
first, last, total = bounds

dates, books, sides, statuses = st.columns([2, 2, 1, 1])
chosen_first = dates.date_input("From session", first, min_value=first, max_value=last)
chosen_last = dates.date_input("To session", last, min_value=first, max_value=last)
chosen_books = books.multiselect("Book", BOOKS, key="journal_books")
chosen_reasons = books.multiselect("Exit", EXIT_REASONS, key="journal_exits")
chosen_sides = sides.multiselect("Side", ["long", "short"], key="journal_sides")
chosen_statuses = statuses.multiselect("Status", ["open", "closed"], key="journal_statuses")
ticker = sides.text_input("Ticker", key="journal_ticker")
if chosen_first > chosen_last:
    st.error("'From session' is after 'To session'.")
    st.stop()

trades = reads.journal(
    desk,
    reads.JournalFilter(
        first=chosen_first,
        last=chosen_last,
        books=chosen_books,
        sides=chosen_sides,
        statuses=chosen_statuses,
        exit_reasons=chosen_reasons,
        ticker=ticker,
    ),
)
summary = journal_summary(trades)
cells = st.columns(6)
cells[0].metric("Trades", summary.trades)
cells[1].metric("Open", summary.open)
cells[2].metric("Closed", summary.closed)
cells[3].metric("Win rate", ui.fraction(summary.win_rate))
cells[4].metric("Net P&L (closed)", ui.money(summary.net_pnl))
cells[5].metric(
    "Expectancy (net R)", "n/a" if summary.mean_r_net is None else f"{summary.mean_r_net:+.2f}R"
)
st.caption(
    f"{summary.trades} of {total} trades, sessions {chosen_first} to {chosen_last} "
    f"(a trade's session is its latest fill); fees {ui.money(summary.fees)}"
)
st.dataframe(
    trades,
    hide_index=True,
    column_config={
        "entry_price": st.column_config.NumberColumn(format="%.2f"),
        "exit_price": st.column_config.NumberColumn(format="%.2f"),
        "gross_pnl": st.column_config.NumberColumn(format="$%.2f"),
        "net_pnl": st.column_config.NumberColumn(format="$%.2f"),
        "fees": st.column_config.NumberColumn(format="$%.2f"),
        "r_gross": st.column_config.NumberColumn(format="%.2f"),
        "r_net": st.column_config.NumberColumn(format="%.2f"),
        "confidence": st.column_config.NumberColumn(format="%.3f"),
    },
)

"""Entry script of the operator dashboard: `breakout dashboard` runs it with `streamlit run`
bound to 127.0.0.1. Every page only reads; decisions happen on button clicks."""

import streamlit as st

st.set_page_config(
    page_title="Breakout desk", page_icon=":chart_with_upwards_trend:", layout="wide"
)

st.navigation(
    [
        st.Page("views/journal.py", title="Journal", default=True),  # served at /
        st.Page("views/equity.py", title="Equity & drawdown", url_path="equity"),
        st.Page("views/positions.py", title="Open positions", url_path="positions"),
        st.Page("views/approvals.py", title="Approval queue", url_path="approvals"),
        st.Page("views/kill_switch.py", title="Kill switch", url_path="kill_switch"),
        st.Page("views/models.py", title="Model cards", url_path="models"),
        st.Page("views/drift.py", title="Drift", url_path="drift"),
        st.Page("views/runs.py", title="Recent runs", url_path="runs"),
    ]
).run()

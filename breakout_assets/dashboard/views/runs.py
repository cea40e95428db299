"""Recent runs of the project's Dagster instance, each linked into the Dagster UI
(`BREAKOUT_DAGSTER_UI_URL`/runs/<run id>), where it can be inspected or re-executed."""

import os

import pandas as pd
import streamlit as st
from dagster import DagsterInstance

from breakout_assets.dashboard import desk as reads
from breakout_assets.dashboard import ui


@st.cache_resource(show_spinner=False)
def _instance(home: str, storage_url: str | None) -> DagsterInstance:
    """One instance per home and storage (they key the cache); Dagster reads both from the
    environment."""
    return DagsterInstance.get()


def _when(moment) -> str:
    return "" if pd.isna(moment) else f"{moment:%Y-%m-%d %H:%M:%S}"


desk = ui.page()
st.title("Recent runs")
if not reads.dagster_configured():
    st.info(
        "DAGSTER_HOME is not set: start the dashboard with `breakout dashboard` (or "
        "`make dashboard`), which points it at the project's Dagster instance."
    )
    st.stop()
runs = reads.recent_runs(
    _instance(os.environ["DAGSTER_HOME"], os.environ.get("BREAKOUT_DAGSTER_PG_URL")), desk.settings
)
if runs.empty:
    st.info("No run recorded in the Dagster instance yet.")
    st.stop()
counts = runs["status"].value_counts()
cells = st.columns(4)
cells[0].metric("Runs shown", len(runs))
cells[1].metric("Succeeded", int(counts.get("SUCCESS", 0)))
cells[2].metric("Failed", int(counts.get("FAILURE", 0)))
cells[3].metric("In progress", int(counts.get("STARTED", 0) + counts.get("STARTING", 0)))
st.caption(f"Links open {desk.settings.dagster_ui_url} (`make ui` starts it).")
lines = [
    "| run | job | status | partition | started (UTC) | ended (UTC) |",
    "|---|---|---|---|---|---|",
]
for run in runs.itertuples():
    lines.append(
        f"| [{run.run_id[:8]}]({run.link}) | {run.job} | {run.status} | {run.partition or ''} "
        f"| {_when(run.started)} | {_when(run.ended)} |"
    )
st.markdown("\n".join(lines))

"""Drift status: the drift watch's latest verdict per side against its thresholds
(`BREAKOUT_DRIFT__*`), the features that moved most, its history and the retrains it asked for."""

import pandas as pd
import streamlit as st

from breakout_assets.dashboard import desk as reads
from breakout_assets.dashboard import ui

desk = ui.page()
limits = desk.settings.drift
st.title("Drift")
latest = reads.drift_latest(desk)
if latest.empty:
    st.info("No drift verdict yet: the `model_drift` asset writes one per session and side.")
    st.stop()
st.caption(
    f"Drift when live ECE > {limits.max_ece:.2f}, a confidence bucket's |live - held-out| win "
    f"rate > {limits.max_calibration_gap:.2f} (buckets of {limits.min_bucket_outcomes}+ "
    f"outcomes, {limits.min_outcomes}+ in all), or a feature's PSI > {limits.max_psi:.2f}."
)
for verdict in latest.itertuples():
    st.subheader(
        f"{verdict.side}: {'DRIFTED' if verdict.drifted else 'no drift'} on {verdict.session}"
    )
    cells = st.columns(4)
    cells[0].metric("Live outcomes", verdict.live_outcomes)
    cells[1].metric("Live ECE", "n/a" if pd.isna(verdict.live_ece) else f"{verdict.live_ece:.3f}")
    cells[2].metric(
        "Calibration gap",
        "n/a" if pd.isna(verdict.calibration_gap) else f"{verdict.calibration_gap:.3f}",
    )
    cells[3].metric("Max PSI", "n/a" if pd.isna(verdict.max_psi) else f"{verdict.max_psi:.3f}")
    st.caption(
        f"model {verdict.experiment_id}"
        + (f"; reasons: {'; '.join(verdict.reasons)}" if len(verdict.reasons) else "")
    )
    psi = pd.Series(verdict.psi, dtype=float).sort_values(ascending=False).head(15)
    if len(psi):
        st.bar_chart(psi.rename("PSI"))

st.subheader("History")
st.dataframe(reads.drift_history(desk), hide_index=True)
st.subheader("Retrain requests")
requests = reads.retrain_requests(desk)
if requests.empty:
    st.caption("None: the drift sensor has not asked for a retrain.")
else:
    st.dataframe(requests, hide_index=True)

"""Model cards: each serving model (and any run chosen) with its held-out metrics, its
promotion verdict and its calibration live vs held-out: the confidences it gave signals whose
outcomes are now final, bin by bin against the held-out reliability table it was promoted on."""

import pandas as pd
import streamlit as st

from breakout_assets.dashboard import desk as reads
from breakout_assets.dashboard import ui
from breakout_assets.dashboard.figures import live_vs_held_out

METRICS = ["roc_auc", "ece", "brier", "accuracy", "precision", "rows"]

desk = ui.page()
st.title("Model cards")
cards = reads.experiment_cards(desk)
if cards.empty:
    st.info("No training run recorded yet: materialise long_model / short_model.")
    st.stop()
serving = cards.loc[cards["serving"], "experiment_id"].tolist()
latest = cards.groupby("side")["experiment_id"].first().tolist()  # newest first per side
chosen = st.multiselect(
    "Cards", cards["experiment_id"].tolist(), default=serving or latest, key="model_cards"
)
for experiment_id in chosen:
    card = cards.set_index("experiment_id").loc[experiment_id]
    metrics = card["metrics"] or {}
    st.subheader(f"{card['side']} · {experiment_id}" + (" · SERVING" if card["serving"] else ""))
    st.caption(
        f"trained {card['created_at']:%Y-%m-%d %H:%M}; held out {card['test_first']} to "
        f"{card['test_last']}; promotion rules "
        + ("passed" if card["passed_rules"] == "true" else "FAILED")
    )
    cells = st.columns(len(METRICS))
    for cell, name in zip(cells, METRICS, strict=True):
        value = metrics.get(name)
        cell.metric(
            f"held-out {name}",
            "n/a" if value is None else (f"{value:,}" if name == "rows" else f"{value:.3f}"),
        )
    live = reads.live_scores(desk, experiment_id)
    table = live_vs_held_out(card["calibration"] or [], live, card["label"])
    st.markdown(
        f"**Calibration live vs held-out**: {len(live)} live outcomes final, "
        f"{int(table['held_out_n'].fillna(0).sum())} held-out rows; a win is "
        + ("a booked target" if card["label"] == "booked_target" else "a trade closed above entry")
    )
    chart = table.assign(confidence=(table["lower"] + table["upper"]) / 2).set_index("confidence")
    left, right = st.columns([1, 1])
    left.line_chart(chart[["held_out_win_rate", "live_win_rate", "held_out_predicted"]])
    right.dataframe(
        table[
            ["lower", "upper", "held_out_n", "held_out_win_rate", "live_n", "live_win_rate", "gap"]
        ],
        hide_index=True,
    )

st.subheader("Every training run")
held_out = pd.json_normalize([m or {} for m in cards["metrics"]])
st.dataframe(
    pd.concat(
        [
            cards[["experiment_id", "serving", "side", "created_at", "passed_rules"]],
            held_out[[m for m in METRICS if m in held_out]],
        ],
        axis=1,
    ),
    hide_index=True,
)

"""The report's plots as PNG bytes (Agg on a Figure pyplot never sees: safe in a run process)."""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def equity_png(curve: pd.DataFrame, session: str) -> bytes:
    """Realised equity by exit session, its drawdown shaded beneath."""
    figure = Figure(figsize=(8, 4), dpi=DPI)
    ax = figure.add_subplot()
    if curve.empty:
        _empty(ax, "no closed trades yet")
    else:
        sessions = pd.to_datetime(curve["session"])
        ax.plot(
            sessions,
            curve["equity"],
            drawstyle="steps-post",
            marker="o",
            color="tab:blue",
            label="equity",
        )
        ax.fill_between(
            sessions,
            curve["equity"],
            curve["equity"] - curve["drawdown"],
            step="post",
            color="tab:red",
            alpha=0.25,
            label="drawdown",
        )
        ax.set_ylabel("$")
        ax.legend(loc="upper left")
        figure.autofmt_xdate()
    ax.set_title(f"Realised equity to {session}")
    figure.tight_layout()
    return _png(figure)


def calibration_png(table: pd.DataFrame, session: str) -> bytes:
    """Live win rate per confidence bucket (markers sized by signals) against the held-out
    curve of the serving model, per side, and the diagonal of perfect calibration."""
    figure = Figure(figsize=(6, 5), dpi=DPI)
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle=":", color="black", label="perfect")
    filled = table[table["count"] > 0] if not table.empty else table
    for side, colour in (("long", "tab:green"), ("short", "tab:red")):
        rows = table[table["side"] == side] if not table.empty else table
        held = rows.dropna(subset=["held_out_rate"]) if not rows.empty else rows
        if not held.empty:
            centres = (held["lower"] + held["upper"]) / 2
            ax.plot(
                centres, held["held_out_rate"], color=colour, alpha=0.6, label=f"{side} held-out"
            )
        live = filled[filled["side"] == side] if not filled.empty else filled
        if not live.empty:
            ax.scatter(
                live["mean_predicted"],
                live["observed_rate"],
                s=20 + 4 * live["count"],
                color=colour,
                edgecolor="black",
                label=f"{side} live",
            )
    if filled.empty:
        ax.text(0.5, 0.9, "no final outcomes of scored signals yet", ha="center", color="gray")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="win rate")
    ax.set_title(f"Live calibration to {session}")
    ax.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    return _png(figure)

"""The report's figures from the rows the session left behind: P&L, performance to date against
the serving model's held-out expectation, the equity curve and live calibration.

Pure pandas: the rows come in as frames (reporting.data), so every figure can be checked by
hand on a few fixed trades.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from breakout_assets.core.outcomes import trade_stats
from breakout_assets.ml.evaluation import calibration_table

CALIBRATION_BINS = 10
ALL_BOOKS = "all books"


def _stats_row(label: str, trades: pd.DataFrame) -> dict:
    # a trade without a known risk has no R: it counts in dollars, not in R
    with_r = trades.dropna(subset=["r_gross"])
    net = with_r["r_net"].fillna(with_r["r_gross"]).to_numpy(float)
    stats = trade_stats(with_r["r_gross"].to_numpy(float), net)
    return {
        "book": label,
        "trades": len(trades),
        "wins": int((trades["net_pnl"] > 0).sum()),
        "win_rate": stats["win_rate"],
        "expectancy_r": stats["expectancy_r"],
        "expectancy_net_r": stats["expectancy_net_r"],
        "sum_net_r": stats["sum_net_r"],
        "gross_pnl": float(trades["gross_pnl"].sum()),
        "fees": float(trades["fees"].sum()),
        "net_pnl": float(trades["net_pnl"].sum()),
    }


def performance(closed: pd.DataFrame) -> pd.DataFrame:
    """Closed trades' figures, all books together then book by book (win rate and
    expectancy in R, P&L in dollars). No trade: one 'all books' row of zero trades."""
    rows = [_stats_row(ALL_BOOKS, closed)]
    rows += [_stats_row(str(book), group) for book, group in closed.groupby("book", sort=True)]
    return pd.DataFrame(rows)


def equity_curve(closed: pd.DataFrame, starting_equity: float | None) -> pd.DataFrame:
    """Realised equity by exit session: the day's net P&L, its running sum, equity (the
    running sum on top of the starting equity when it is known) and drawdown from the peak."""
    columns = ["session", "net_pnl", "cumulative_pnl", "equity", "drawdown"]
    if closed.empty:
        return pd.DataFrame(columns=columns)
    daily = closed.groupby("exit_session", sort=True)["net_pnl"].sum().rename("net_pnl")
    curve = daily.reset_index().rename(columns={"exit_session": "session"})
    curve["cumulative_pnl"] = curve["net_pnl"].cumsum()
    curve["equity"] = curve["cumulative_pnl"] + (starting_equity or 0.0)
    peak = np.maximum.accumulate(np.r_[starting_equity or 0.0, curve["equity"].to_numpy()])[1:]
    curve["drawdown"] = curve["equity"] - peak
    return curve[columns]


def _gate_row(expectancy: list[Mapping], gate: float) -> Mapping | None:
    """The held-out expectancy at the serving gate: the highest tabulated gate not above it
    (the scanner-only row when the gate is below every tabulated one)."""
    gated = [
        row
        for row in expectancy
        if row.get("gate") is not None
        and not math.isnan(row["gate"])
        and row["gate"] <= gate + 1e-9
    ]
    if gated:
        return max(gated, key=lambda row: row["gate"])
    return next((row for row in expectancy if row.get("strategy") == "scanner only"), None)


def held_out_expectation(experiments: pd.DataFrame, gate: float) -> pd.DataFrame:
    """Per serving model: its held-out trades, win rate and expectancy at the serving gate,
    the yardstick the live figures are read against."""
    rows = []
    for card in experiments.itertuples():
        row = _gate_row(card.metrics.get("expectancy", []), gate) or {}
        rows.append(
            {
                "side": card.side,
                "experiment_id": card.experiment_id,
                "test_range": f"{card.test_start} to {card.test_end}",
                "gate": row.get("gate"),
                "trades": row.get("trades"),
                "win_rate": row.get("win_rate"),
                "expectancy_r": row.get("expectancy_r"),
                "expectancy_net_r": row.get("expectancy_net_r"),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "side",
            "experiment_id",
            "test_range",
            "gate",
            "trades",
            "win_rate",
            "expectancy_r",
            "expectancy_net_r",
        ],
    )


def is_win(outcomes: pd.DataFrame, label: str) -> pd.Series:
    """The training label: 'booked_target' wins hit the booked target, 'profitable' ones
    closed above their entry (TrainingConfig.label)."""
    if label == "booked_target":
        return outcomes["status"] == "win"
    return outcomes["r_multiple"] > 0


def live_calibration(scored: pd.DataFrame, experiments: pd.DataFrame, label: str) -> pd.DataFrame:
    """Per side and confidence bucket: scored signals whose outcome is final, their mean
    confidence and realised win rate, next to the serving model's held-out win rate."""
    held = {
        card.side: pd.DataFrame(card.metrics.get("calibration", []))
        for card in experiments.itertuples()
    }
    frames = []
    for side in sorted(set(scored["side"]) | set(held)):
        rows = scored[scored["side"] == side]
        table = calibration_table(
            is_win(rows, label).astype(int), rows["confidence"], bins=CALIBRATION_BINS
        )
        reference = held.get(side)
        table["held_out_rate"] = (
            reference.set_index("bin")["observed_rate"].reindex(table["bin"]).to_numpy(float)
            if reference is not None and not reference.empty
            else math.nan
        )
        table.insert(0, "side", side)
        frames.append(table)
    columns = [
        "side",
        "bin",
        "lower",
        "upper",
        "count",
        "mean_predicted",
        "observed_rate",
        "held_out_rate",
    ]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]

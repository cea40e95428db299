"""Pure figures the dashboard shows: the equity curve with its drawdown, the journal's summary,
what an open position stands to make or lose, and live calibration next to the held-out one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from breakout_assets.ml.evaluation import calibration_table
from breakout_assets.reporting import summary


def equity_curve(closed_pnl: pd.DataFrame, starting_equity: float) -> pd.DataFrame:
    """The daily report's realised equity curve (`reporting.summary.equity_curve`, from
    `session`, `net_pnl` rows) with its running peak and the drawdown as a fraction of it."""
    curve = summary.equity_curve(
        closed_pnl.rename(columns={"session": "exit_session"}), starting_equity
    )
    curve["peak"] = curve["equity"] - curve["drawdown"]
    curve["drawdown_pct"] = curve["drawdown"] / curve["peak"]
    return curve.reset_index(drop=True)


@dataclass(frozen=True)
class JournalSummary:
    trades: int
    open: int
    closed: int
    win_rate: float | None  # closed trades with R > 0, as the report and the backtests count
    net_pnl: float
    fees: float
    mean_r_net: float | None  # expectancy in R after costs, over closed trades with a known risk


def journal_summary(journal: pd.DataFrame) -> JournalSummary:
    """The journal's figures, counted as the daily report counts them
    (`reporting.summary.performance`, all books together)."""
    closed = journal[journal["status"] == "closed"]
    figures = summary.performance(closed).iloc[0]
    return JournalSummary(
        trades=len(journal),
        open=int((journal["status"] == "open").sum()),
        closed=len(closed),
        win_rate=_known(figures["win_rate"]),
        net_pnl=float(closed["net_pnl"].sum()),
        fees=float(journal["fees"].sum()),
        mean_r_net=_known(figures["expectancy_net_r"]),
    )


def _known(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def position_risk(positions: pd.DataFrame) -> pd.DataFrame:
    """Adds, per open position, the unrealised P&L at the last close and the P&L if the stop in
    force is hit (negative: still at risk; positive: a profit the stop has locked in). An option
    spread has neither a price of its own here nor a stop: at worst it loses its debit."""
    frame = positions.copy()
    direction = np.where(frame["side"] == "long", 1.0, -1.0)
    quantity = frame["quantity"].astype(float)
    spread = (frame["book"] == "option_spread").to_numpy()
    frame["unrealised_pnl"] = np.where(
        spread, np.nan, (frame["last_close"] - frame["entry_price"]) * quantity * direction
    )
    frame["pnl_at_stop"] = np.where(
        spread,
        -frame["initial_risk"].astype(float),
        (frame["stop"] - frame["entry_price"]) * quantity * direction,
    )
    return frame


def live_vs_held_out(held_out: list[dict], live_outcomes: pd.DataFrame, label: str) -> pd.DataFrame:
    """The held-out reliability table of a model next to its live one, bin by bin (the same
    equal-width bins as `ml.evaluation.calibration_table`); a live win is one by the label the
    model was trained on (`reporting.summary.is_win`)."""
    held = pd.DataFrame(
        held_out, columns=["bin", "lower", "upper", "count", "mean_predicted", "observed_rate"]
    )
    live = calibration_table(
        summary.is_win(live_outcomes, label).astype(int).to_numpy(),
        live_outcomes["confidence"].to_numpy(float),
    )
    bins = len(live)
    if len(held) and len(held) != bins:
        # a card written with another bin count: re-key it by its bounds
        held = held.assign(bin=(held["lower"] * bins).round().astype(int))
    table = live[["bin", "lower", "upper"]].merge(
        held[["bin", "count", "mean_predicted", "observed_rate"]].rename(
            columns={
                "count": "held_out_n",
                "mean_predicted": "held_out_predicted",
                "observed_rate": "held_out_win_rate",
            }
        ),
        on="bin",
        how="left",
    )
    table["live_n"] = live["count"].to_numpy()
    table["live_predicted"] = live["mean_predicted"].to_numpy()
    table["live_win_rate"] = live["observed_rate"].to_numpy()
    table["gap"] = table["live_win_rate"] - table["held_out_win_rate"]
    return table

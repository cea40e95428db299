"""Held-out evaluation of a trade classifier: metrics, calibration, expectancy, importance, plots.

Pure functions of numpy arrays, one entry per held-out trade: `y` the label (1 = the booked
target was hit first), `p` the model's win probability and `r` the realised outcome in R. The
question they answer is the one promotion asks: does gating the scanner's trades on `p` improve
expectancy, and can `p` be read as a probability (it sizes trades through EV)? `p` is the
calibrated confidence serving uses; the booster's raw output is evaluated beside it (`raw_*`
metrics, `raw_calibration`) to show what calibration changed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
import xgboost as xgb
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from breakout_assets.core.outcomes import trade_stats

GATES = (0.50, 0.55, 0.60, 0.65)
SWEEP_GATES = tuple(np.round(np.arange(0.30, 0.81, 0.05), 2).tolist())
DPI = 100
_LOG_LOSS_EPS = 1e-15


def _probabilities(p: ArrayLike) -> np.ndarray:
    """`p` as a 1-D float array; a value outside [0, 1] (or NaN) is a model bug, so it raises."""
    p = np.asarray(p, dtype=float)
    if p.ndim != 1 or not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("p must be a 1-D array of probabilities in [0, 1]")
    return p


def _aligned(values: ArrayLike, p: np.ndarray, name: str) -> np.ndarray:
    """`values` as finite floats, one per trade of `p`: a NaN outcome would silently skew sums."""
    values = np.asarray(values, dtype=float)
    if values.shape != p.shape or not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite and as long as p")
    return values


def classification_metrics(y: ArrayLike, p: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, ROC-AUC, precision, recall, F1 (predicting a win where p >= threshold, the same
    rule as the trade gate), Brier and log loss, plus the row and positive counts behind them.

    Never raises on a degenerate held-out set, so a run is still recorded: ROC-AUC is NaN when `y`
    holds a single class (it is undefined), and precision is 0 when nothing is predicted a win.
    """
    p = _probabilities(p)
    y = _aligned(y, p, "y")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must hold 0/1 labels")
    y = y.astype(int)
    predicted = (p >= threshold).astype(int)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "roc_auc": float(roc_auc_score(y, p)) if np.unique(y).size == 2 else math.nan,
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y, p, pos_label=1)),
        "log_loss": float(log_loss(y, np.clip(p, _LOG_LOSS_EPS, 1 - _LOG_LOSS_EPS), labels=[0, 1])),
        "rows": int(y.size),
        "positives": int(y.sum()),
    }


def calibration_table(y: ArrayLike, p: ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed win rate in equal-width bins [lower, upper) over [0, 1].

    Every bin is listed, an empty one with count 0 and NaN means, so tables of different runs
    (and live vs held-out) line up row by row; p == 1.0 falls in the last bin.
    """
    p = _probabilities(p)
    y = _aligned(y, p, "y")
    index = np.minimum(np.floor(p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        in_bin = index == b
        count = int(in_bin.sum())
        rows.append(
            {
                "bin": b,
                "lower": b / bins,
                "upper": (b + 1) / bins,
                "count": count,
                "mean_predicted": float(p[in_bin].mean()) if count else math.nan,
                "observed_rate": float(y[in_bin].mean()) if count else math.nan,
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(y: ArrayLike, p: ArrayLike, bins: int = 10) -> float:
    """Mean |mean predicted - observed win rate| over the `calibration_table` bins, weighted by
    each bin's share of the rows (equal-width bins); NaN when there are no rows.

    In probability points: 0.05 means confidences are off by five points on average, which
    moves EV = conf x R:R - (1 - conf) by 0.05 x (R:R + 1) R."""
    table = calibration_table(y, p, bins)
    filled = table[table["count"] > 0]
    if filled.empty:
        return math.nan
    gap = (filled["mean_predicted"] - filled["observed_rate"]).abs()
    return float((gap * filled["count"]).sum() / filled["count"].sum())


def _trade_row(strategy: str, gate: float, r: np.ndarray, net: np.ndarray | None) -> dict[str, Any]:
    stats = trade_stats(r, net)
    del stats["wins"]
    return {"strategy": strategy, "gate": gate, **stats}


def expectancy_table(
    p: ArrayLike, r: ArrayLike, gates: Sequence[float] = GATES, net_r: ArrayLike | None = None
) -> pd.DataFrame:
    """Expectancy in R of taking every scanner trade vs only those the model scores p >= gate.

    The first row ("scanner only", gate NaN) is the baseline the model must beat; a win is r > 0.
    A gate that keeps no trade has 0 trades, NaN win rate and expectancy, and sum_r 0.
    `r` is the gross R; `net_r`, the same trades after costs (core.costs), gives
    `expectancy_net_r` and `sum_net_r` (NaN when it is not given).
    """
    p = _probabilities(p)
    r = _aligned(r, p, "r")
    net = None if net_r is None else _aligned(net_r, p, "net_r")
    rows = [_trade_row("scanner only", math.nan, r, net)]
    rows += [
        _trade_row(
            "scanner + ML", float(gate), r[p >= gate], None if net is None else net[p >= gate]
        )
        for gate in gates
    ]
    return pd.DataFrame(rows)


def gain_importance(
    booster_or_scores: xgb.Booster | Mapping[str, float], features: Sequence[str]
) -> pd.DataFrame:
    """Gain per feature, largest first, listing every feature the model was given.

    A Booster's gain scores omit features no split used; those are exactly the candidates for
    elimination, so they appear with gain 0 (ties keep the order of `features`).
    """
    scores = (
        booster_or_scores.get_score(importance_type="gain")
        if isinstance(booster_or_scores, xgb.Booster)
        else dict(booster_or_scores)
    )
    unknown = sorted(set(scores) - set(features))
    if unknown:
        raise ValueError(f"scores for features not in the feature list: {unknown}")
    frame = pd.DataFrame(
        {
            "feature": list(features),
            "gain": [float(cast(float, scores.get(name, 0.0))) for name in features],
        }
    )
    return frame.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)


def _png(figure: Figure) -> bytes:
    """PNG bytes rendered by Agg on a Figure pyplot never sees (freed with its last reference)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def plot_calibration(
    table: pd.DataFrame, title: str = "Calibration (held-out)", raw: pd.DataFrame | None = None
) -> bytes:
    """Reliability curve of a `calibration_table` against the diagonal, with counts per bin;
    `raw`, the table of the uncalibrated output, is drawn beside it for comparison."""
    figure = Figure(figsize=(6, 5), dpi=DPI)
    ax = figure.add_subplot()
    counts = ax.twinx()
    counts.bar(
        (table["lower"] + table["upper"]) / 2,
        table["count"],
        width=table["upper"] - table["lower"],
        color="tab:gray",
        alpha=0.3,
    )
    counts.set_ylabel("trades")
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    filled = table[table["count"] > 0]
    ax.plot([0, 1], [0, 1], linestyle="--", color="black", label="perfectly calibrated")
    if raw is not None:
        shown = raw[raw["count"] > 0]
        ax.plot(
            shown["mean_predicted"],
            shown["observed_rate"],
            marker="x",
            linestyle=":",
            color="tab:red",
            label="raw (uncalibrated)",
        )
    ax.plot(
        filled["mean_predicted"],
        filled["observed_rate"],
        marker="o",
        label="model" if raw is None else "calibrated",
    )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="mean predicted win probability",
        ylabel="observed win rate",
        title=title,
    )
    ax.legend(loc="upper left")
    return _png(figure)


def plot_importance(
    importance: pd.DataFrame, top: int = 20, title: str = "Feature importance (gain)"
) -> bytes:
    """Horizontal gain bars of the `top` features of a `gain_importance` frame, largest on top."""
    shown = importance.head(top).iloc[::-1]
    figure = Figure(figsize=(7, max(2.0, 0.3 * len(shown) + 1.0)), dpi=DPI)
    ax = figure.add_subplot()
    ax.barh(shown["feature"], shown["gain"], color="tab:blue")
    ax.set(xlabel="gain", title=title)
    figure.tight_layout()
    return _png(figure)


def plot_gate_sweep(
    p: ArrayLike,
    r: ArrayLike,
    gates: Sequence[float] = SWEEP_GATES,
    title: str = "Expectancy by confidence gate",
    net_r: ArrayLike | None = None,
) -> bytes:
    """Expectancy in R and trade count as the gate rises, against the scanner-only expectancy;
    with `net_r`, the expectancy after costs too."""
    table = expectancy_table(p, r, gates, net_r=net_r)
    baseline, gated = table.iloc[0], table.iloc[1:]
    figure = Figure(figsize=(7, 5), dpi=DPI)
    ax = figure.add_subplot()
    trades = ax.twinx()
    trades.plot(gated["gate"], gated["trades"], color="tab:gray", marker=".", label="trades")
    trades.set_ylabel("trades")
    gross = " (gross)" if net_r is not None else ""
    ax.plot(gated["gate"], gated["expectancy_r"], marker="o", label=f"scanner + ML{gross}")
    ax.axhline(
        baseline["expectancy_r"], linestyle="--", color="black", label=f"scanner only{gross}"
    )
    if net_r is not None:
        ax.plot(
            gated["gate"],
            gated["expectancy_net_r"],
            marker="o",
            color="tab:orange",
            label="scanner + ML (net)",
        )
        ax.axhline(
            baseline["expectancy_net_r"],
            linestyle=":",
            color="tab:orange",
            label="scanner only (net)",
        )
    ax.set(xlabel="gate (p >=)", ylabel="expectancy (R)", title=title)
    ax.legend(loc="upper left")
    return _png(figure)


def bar_chart_png(labels: Sequence[str], values: Sequence[float], ylabel: str, title: str) -> bytes:
    """One bar per variant (a backtest's expectancy per rule set, for example)."""
    figure = Figure(figsize=(7, 4), dpi=DPI)
    ax = figure.add_subplot()
    ax.bar(range(len(values)), values, color=["tab:green" if v >= 0 else "tab:red" for v in values])
    ax.set_xticks(range(len(labels)), labels, rotation=15, ha="right")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set(ylabel=ylabel, title=title)
    figure.tight_layout()
    return _png(figure)


def _json_value(value: Any) -> Any:
    """Native Python for a jsonb column: numpy scalars unboxed, NaN and infinities as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): _json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")
    ]


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Everything one held-out evaluation reports, kept together for the experiment record."""

    metrics: dict[str, float]
    calibration: pd.DataFrame
    expectancy: pd.DataFrame
    importance: pd.DataFrame
    raw_calibration: pd.DataFrame | None = None  # reliability of the uncalibrated output

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (NaN -> None, tables as lists of records) for a jsonb column."""
        record = {
            "metrics": {k: _json_value(v) for k, v in self.metrics.items()},
            "calibration": _json_records(self.calibration),
            "expectancy": _json_records(self.expectancy),
            "importance": _json_records(self.importance),
        }
        if self.raw_calibration is not None:
            record["raw_calibration"] = _json_records(self.raw_calibration)
        return record


def evaluate(
    y: ArrayLike,
    p: ArrayLike,
    r: ArrayLike,
    importance: pd.DataFrame,
    gates: Sequence[float] = GATES,
    raw_p: ArrayLike | None = None,
    net_r: ArrayLike | None = None,
) -> Evaluation:
    """The single held-out evaluation of a refit model; `importance` is its `gain_importance`.

    `p` is the confidence serving uses (calibrated); `raw_p`, when given, the booster's raw
    output for the same rows: its ECE, Brier and log loss are reported as `raw_*` metrics and
    its reliability table as `raw_calibration`, next to the calibrated ones. `net_r`, the
    trades' R after costs, adds net expectancy columns to the expectancy table."""
    metrics = classification_metrics(y, p)
    metrics["ece"] = expected_calibration_error(y, p)
    raw_calibration = None
    if raw_p is not None:
        raw = classification_metrics(y, raw_p)
        metrics |= {
            "raw_ece": expected_calibration_error(y, raw_p),
            "raw_brier": raw["brier"],
            "raw_log_loss": raw["log_loss"],
        }
        raw_calibration = calibration_table(y, raw_p)
    return Evaluation(
        metrics=metrics,
        calibration=calibration_table(y, p),
        expectancy=expectancy_table(p, r, gates, net_r=net_r),
        importance=importance,
        raw_calibration=raw_calibration,
    )

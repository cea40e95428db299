"""Held-out evaluation: hand-computed metrics and tables, degenerate sets, plots, JSON records."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st

from breakout_assets.ml.evaluation import (
    Evaluation,
    calibration_table,
    classification_metrics,
    evaluate,
    expectancy_table,
    expected_calibration_error,
    gain_importance,
    plot_calibration,
    plot_gate_sweep,
    plot_importance,
)

PNG_SIGNATURE = b"\x89PNG"

# Five held-out trades; predicted wins at 0.5: [1, 1, 0, 0, 1] -> TP 2, FP 1, FN 1, TN 1.
Y = np.array([1, 0, 1, 0, 1])
P = np.array([0.9, 0.6, 0.4, 0.2, 0.7])
R = np.array([-1.0, 2.0, -1.0, 1.5, -0.5])
P_GATED = np.array([0.45, 0.50, 0.55, 0.62, 0.70])


def test_metrics_match_hand_computation() -> None:
    m = classification_metrics(Y, P)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # Positive/negative pairs ranked correctly: (0.9 > 0.6, 0.2), (0.4 > 0.2), (0.7 > 0.6, 0.2).
    assert m["roc_auc"] == pytest.approx(5 / 6)
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.04 + 0.09) / 5)
    expected_log_loss = -(math.log(0.9) + 2 * math.log(0.4) + math.log(0.8) + math.log(0.7)) / 5
    assert m["log_loss"] == pytest.approx(expected_log_loss)
    assert m["rows"] == 5 and m["positives"] == 3


def test_probability_on_the_threshold_is_a_predicted_win() -> None:
    m = classification_metrics([1, 0], [0.5, 0.49])
    assert m["accuracy"] == 1.0 and m["precision"] == 1.0


@pytest.mark.filterwarnings("error")
def test_single_class_has_nan_auc_and_still_reports() -> None:
    m = classification_metrics([1, 1, 1], [0.2, 0.6, 0.9])
    assert math.isnan(m["roc_auc"])
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["brier"] == pytest.approx((0.64 + 0.16 + 0.01) / 3)
    assert math.isfinite(m["log_loss"])
    assert m["positives"] == 3


@pytest.mark.filterwarnings("error")
def test_no_predicted_positives_gives_zero_precision() -> None:
    m = classification_metrics([1, 0, 1], [0.1, 0.2, 0.3])
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["accuracy"] == pytest.approx(1 / 3)


def test_log_loss_is_finite_for_certain_wrong_predictions() -> None:
    m = classification_metrics([1, 0], [0.0, 1.0])
    assert m["log_loss"] == pytest.approx(-math.log(1e-15), rel=1e-4)  # p clipped to [eps, 1-eps]


@pytest.mark.parametrize(
    ("y", "p"),
    [([0, 1], [0.2, 1.2]), ([0, 1], [0.2, math.nan]), ([0, 2], [0.2, 0.3]), ([0], [0.1, 0.2])],
)
def test_invalid_inputs_raise(y: list[float], p: list[float]) -> None:
    with pytest.raises(ValueError):
        classification_metrics(y, p)


def test_calibration_bins_edges_and_empty_bins() -> None:
    table = calibration_table([0, 0, 1, 1, 0, 1], [0.0, 0.05, 0.1, 0.35, 0.99, 1.0])
    assert list(table.columns) == [
        "bin",
        "lower",
        "upper",
        "count",
        "mean_predicted",
        "observed_rate",
    ]
    assert table["bin"].tolist() == list(range(10))
    assert table["lower"].tolist() == pytest.approx([i / 10 for i in range(10)])
    assert table["upper"].tolist() == pytest.approx([i / 10 for i in range(1, 11)])
    assert table["count"].tolist() == [2, 1, 0, 1, 0, 0, 0, 0, 0, 2]
    filled = table.set_index("bin")
    assert filled.loc[0, "mean_predicted"] == pytest.approx(0.025)
    assert filled.loc[0, "observed_rate"] == 0.0
    assert filled.loc[1, "mean_predicted"] == pytest.approx(0.1)  # lower edge is inclusive
    assert filled.loc[1, "observed_rate"] == 1.0
    assert filled.loc[9, "mean_predicted"] == pytest.approx(0.995)  # p == 1.0 in the last bin
    assert filled.loc[9, "observed_rate"] == 0.5
    empty = table[table["count"] == 0]
    assert empty["mean_predicted"].isna().all() and empty["observed_rate"].isna().all()


def test_calibration_with_other_bin_count_and_no_rows() -> None:
    table = calibration_table([1, 0], [0.25, 0.74], bins=4)
    assert table["count"].tolist() == [0, 1, 1, 0]
    assert table["upper"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert calibration_table([], [])["count"].sum() == 0


def test_expected_calibration_error_matches_hand_computation() -> None:
    y, p = [0, 0, 1, 1, 0, 1], [0.0, 0.05, 0.1, 0.35, 0.99, 1.0]
    # bins 0, 1, 3, 9: |0.025 - 0| x 2, |0.1 - 1| x 1, |0.35 - 1| x 1, |0.995 - 0.5| x 2; of 6
    expected = (2 * 0.025 + 0.9 + 0.65 + 2 * 0.495) / 6
    assert expected_calibration_error(y, p) == pytest.approx(expected)
    table = calibration_table(y, p)
    filled = table[table["count"] > 0]
    assert expected_calibration_error(y, p) == pytest.approx(
        np.average(
            (filled["mean_predicted"] - filled["observed_rate"]).abs(), weights=filled["count"]
        )
    )
    assert expected_calibration_error(y, p, bins=1) == pytest.approx(abs(np.mean(p) - 0.5))
    assert expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.55, 0.55]) == pytest.approx(0.025)
    assert math.isnan(expected_calibration_error([], []))
    with pytest.raises(ValueError):
        expected_calibration_error([0, 1], [0.2, 1.2])


@given(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 1)), min_size=1, max_size=50))
@settings(max_examples=100, deadline=None)
def test_expected_calibration_error_is_a_bounded_weighted_gap(
    rows: list[tuple[float, int]],
) -> None:
    p = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    ece = expected_calibration_error(y, p)
    assert 0.0 <= ece <= 1.0
    # no bin's gap can exceed what the whole set's worst row could contribute
    assert ece <= np.max(np.abs(p - y)) + 1e-12


def test_evaluation_reports_raw_beside_calibrated() -> None:
    raw = np.clip(P + 0.05, 0, 1)
    evaluation = evaluate(Y, P, R, gain_importance({}, ["a"]), raw_p=raw)
    metrics = evaluation.metrics
    assert metrics["ece"] == pytest.approx(expected_calibration_error(Y, P))
    assert metrics["raw_ece"] == pytest.approx(expected_calibration_error(Y, raw))
    assert metrics["raw_brier"] == pytest.approx(classification_metrics(Y, raw)["brier"])
    assert metrics["brier"] == pytest.approx(classification_metrics(Y, P)["brier"])
    pd.testing.assert_frame_equal(evaluation.raw_calibration, calibration_table(Y, raw))
    record = evaluation.to_json()
    assert len(record["raw_calibration"]) == 10 and record["metrics"]["raw_log_loss"] > 0
    without = evaluate(Y, P, R, gain_importance({}, ["a"]))
    assert "raw_ece" not in without.metrics and "ece" in without.metrics
    assert without.raw_calibration is None and "raw_calibration" not in without.to_json()


def test_expectancy_matches_hand_computation() -> None:
    table = expectancy_table(P_GATED, R)
    assert list(table.columns) == [
        "strategy",
        "gate",
        "trades",
        "win_rate",
        "expectancy_r",
        "sum_r",
        "expectancy_net_r",
        "sum_net_r",
    ]
    assert table["expectancy_net_r"].isna().all() and table["sum_net_r"].isna().all()  # no costs
    assert table["strategy"].tolist() == ["scanner only"] + ["scanner + ML"] * 4
    assert math.isnan(table["gate"].iloc[0])
    assert table["gate"].iloc[1:].tolist() == [0.50, 0.55, 0.60, 0.65]
    assert table["trades"].tolist() == [5, 4, 3, 2, 1]
    assert table["win_rate"].tolist() == pytest.approx([2 / 5, 2 / 4, 1 / 3, 1 / 2, 0.0])
    assert table["expectancy_r"].tolist() == pytest.approx([0.2, 0.5, 0.0, 0.5, -0.5])
    assert table["sum_r"].tolist() == pytest.approx([1.0, 2.0, 0.0, 1.0, -0.5])


def test_expectancy_gross_and_net_of_costs() -> None:
    cost = np.array([0.05, 0.10, 0.05, 0.20, 0.10])
    table = expectancy_table(P_GATED, R, net_r=R - cost)
    assert table["expectancy_r"].tolist() == pytest.approx([0.2, 0.5, 0.0, 0.5, -0.5])
    # scanner only: (1.0 - 0.5) / 5; gate 0.50: (2.0 - 0.45) / 4; ... gate 0.65: -0.5 - 0.1
    assert table["sum_net_r"].tolist() == pytest.approx([0.5, 1.55, -0.35, 0.7, -0.6])
    assert table["expectancy_net_r"].tolist() == pytest.approx(
        [0.1, 1.55 / 4, -0.35 / 3, 0.35, -0.6]
    )
    assert (table["expectancy_net_r"] <= table["expectancy_r"]).all()
    empty = expectancy_table([0.6], [1.0], gates=(0.9,), net_r=[0.9]).iloc[1]
    assert empty["sum_net_r"] == 0.0 and math.isnan(empty["expectancy_net_r"])
    with pytest.raises(ValueError):
        expectancy_table(P_GATED, R, net_r=[0.0, math.nan, 0.0, 0.0, 0.0])
    assert plot_gate_sweep(P_GATED, R, net_r=R - cost).startswith(PNG_SIGNATURE)


def test_gate_keeping_no_trade_and_scratch_trades() -> None:
    table = expectancy_table([0.6, 0.7], [0.0, 1.0], gates=(0.5, 0.9))
    assert table["win_rate"].iloc[0] == 0.5  # r == 0 is not a win
    empty = table.iloc[2]
    assert empty["trades"] == 0 and empty["sum_r"] == 0.0
    assert math.isnan(empty["win_rate"]) and math.isnan(empty["expectancy_r"])


@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.floats(-3, 10, allow_nan=False)), min_size=0, max_size=40
    ),
    st.lists(st.floats(0, 1), min_size=1, max_size=8).map(sorted),
)
@settings(max_examples=200, deadline=None)
def test_gated_trades_shrink_as_the_gate_rises(
    trades: list[tuple[float, float]], gates: list[float]
) -> None:
    p = np.array([t[0] for t in trades], dtype=float)
    r = np.array([t[1] for t in trades], dtype=float)
    table = expectancy_table(p, r, gates)
    gated = table.iloc[1:]
    assert table["trades"].iloc[0] == len(trades)
    assert (np.diff(gated["trades"].to_numpy()) <= 0).all()
    for gate, sum_r in zip(gated["gate"], gated["sum_r"], strict=True):
        assert sum_r == pytest.approx(math.fsum(r[p >= gate]), abs=1e-9)


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    """A tiny model on three features; `unused` is constant, so no split can use it."""
    rng = np.random.default_rng(7)
    signal = rng.normal(size=40)
    frame = np.column_stack([signal, rng.normal(size=40), np.ones(40)])
    labels = (signal > 0).astype(int)
    data = xgb.DMatrix(frame, label=labels, feature_names=["breakout_strength", "noise", "unused"])
    params = {"objective": "binary:logistic", "max_depth": 2, "seed": 0, "nthread": 1}
    return xgb.train(params, data, num_boost_round=5)


def test_importance_of_a_booster_lists_unused_features(booster: xgb.Booster) -> None:
    features = ["unused", "noise", "breakout_strength"]
    frame = gain_importance(booster, features)
    assert list(frame.columns) == ["feature", "gain"]
    assert sorted(frame["feature"]) == sorted(features)
    assert frame["gain"].is_monotonic_decreasing
    assert frame["feature"].iloc[0] == "breakout_strength"
    gains = dict(zip(frame["feature"], frame["gain"], strict=True))
    assert gains["unused"] == 0.0
    assert gains["breakout_strength"] == pytest.approx(
        booster.get_score(importance_type="gain")["breakout_strength"]
    )


def test_importance_from_scores_keeps_feature_order_on_ties() -> None:
    frame = gain_importance({"b": 2.0, "c": 5.0}, ["a", "b", "c", "d"])
    assert frame["feature"].tolist() == ["c", "b", "a", "d"]
    assert frame["gain"].tolist() == [5.0, 2.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="zzz"):
        gain_importance({"zzz": 1.0}, ["a"])


def test_plots_are_deterministic_pngs(booster: xgb.Booster) -> None:
    importance = gain_importance(booster, ["breakout_strength", "noise", "unused"])
    renders = [
        lambda: plot_calibration(calibration_table(Y, P)),
        lambda: plot_calibration(calibration_table([], []), title="no trades"),
        lambda: plot_calibration(calibration_table(Y, P), raw=calibration_table(Y, P_GATED)),
        lambda: plot_importance(importance, top=2),
        lambda: plot_gate_sweep(P_GATED, R),
        lambda: plot_gate_sweep(P_GATED, R, gates=[0.5, 0.9], title="two gates"),
    ]
    for render in renders:
        first = render()
        assert first.startswith(PNG_SIGNATURE)
        assert render() == first


def test_plotting_leaves_pyplot_alone() -> None:
    script = (
        "import sys, numpy as np\n"
        "from breakout_assets.ml import evaluation as e\n"
        "e.plot_gate_sweep(np.array([0.4, 0.6]), np.array([1.0, -1.0]))\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_evaluation_to_json_round_trips(booster: xgb.Booster) -> None:
    importance = gain_importance(booster, ["breakout_strength", "noise", "unused"])
    evaluation = evaluate([1, 1, 1, 1, 1], P_GATED, R, importance, gates=(0.5, 0.99))
    assert isinstance(evaluation, Evaluation)
    with pytest.raises(dataclasses.FrozenInstanceError):
        evaluation.metrics = {}  # type: ignore[misc]
    record = evaluation.to_json()
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert record["metrics"]["roc_auc"] is None  # a single class
    assert record["metrics"]["rows"] == 5
    assert record["expectancy"][0] == {
        "strategy": "scanner only",
        "gate": None,
        "trades": 5,
        "win_rate": 0.4,
        "expectancy_r": pytest.approx(0.2),
        "sum_r": pytest.approx(1.0),
        "expectancy_net_r": None,
        "sum_net_r": None,  # no costs given
    }
    assert record["expectancy"][2]["win_rate"] is None  # no trade at 0.99
    assert len(record["calibration"]) == 10
    assert record["calibration"][0]["mean_predicted"] is None
    assert [row["feature"] for row in record["importance"]] == importance["feature"].tolist()
    pd.testing.assert_frame_equal(evaluation.expectancy, expectancy_table(P_GATED, R, (0.5, 0.99)))

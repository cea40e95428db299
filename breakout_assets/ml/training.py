"""Tune, prune and fit one side's XGBoost classifier: pure functions in, objects out.

`train_side` splits the rows (`ml.splits`), then runs recursive feature elimination: each round
tunes XGBoost with Optuna TPE on CV folds of the training rows only, fits the round's best
params on all training rows and drops the features with the least gain. The round with the best
CV score wins. Its params are fitted once more on each CV fold (each with its own
scale_pos_weight, as in tuning) to get out-of-fold raw predictions of every training row; a
calibrator (`ml.calibration`) is fitted on those, so held-out rows never shape it. The model is
then scored once on the held-out rows with calibrated confidence (`confidence`), the same
function serving uses.

Determinism is a contract (same set + config = identical model bytes and metrics): the sampler
and XGBoost are seeded, nothing reads the clock, folds are fitted concurrently but collected in
order, and every XGBoost fit is single-threaded (a fit's bytes then cannot depend on a thread
count). `n_jobs` runs that many folds at once instead: on a small data set and a shared machine
that is both faster and steadier than OpenMP threads, which spin and stall when a core is busy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, cast

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb
from sklearn.metrics import brier_score_loss, fbeta_score

from breakout_assets.ml.calibration import Calibrator, fit_calibrator
from breakout_assets.ml.config import TrainingConfig
from breakout_assets.ml.splits import (
    Fold,
    TrainingSet,
    check_two_classes,
    cv_folds,
    session_range,
    split_rows,
)

__all__ = [
    "OBJECTIVES",
    "Calibrator",
    "Objective",
    "Side",
    "TrainedModel",
    "TrainingConfig",
    "TrainingSet",
    "confidence",
    "cv_folds",
    "predict",
    "scale_pos_weight",
    "split_rows",
    "train_side",
]

Side = Literal["long", "short"]
GATE = 0.50  # the confidence gate of serving; the long objective scores decisions at it

# Not tuned: the loss, the tree builder, and 64 histogram bins (~40 rows a bin at ~2,500 rows;
# 256 bins cost ~3x the time for no signal a data set this small can resolve).
FIXED_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "tree_method": "hist",
    "max_bin": 64,
}


@dataclass(frozen=True)
class Objective:
    """How a side's CV predictions are scored and which way is better."""

    name: str
    direction: Literal["maximize", "minimize"]
    score: Callable[[np.ndarray, np.ndarray], float]  # (label, probability) -> score

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b


def _f_half(label: np.ndarray, probability: np.ndarray) -> float:
    return float(fbeta_score(label, probability >= GATE, beta=0.5, zero_division=0.0))


def _brier(label: np.ndarray, probability: np.ndarray) -> float:
    return float(brier_score_loss(label, probability))


# long: F-beta with beta = 0.5 at the 0.50 gate weighs precision twice as much as recall. A long
# the model lets through that loses costs a full R; a winner it rejects costs nothing but a missed
# opportunity, so false positives are what must be avoided. short: the Brier score (mean squared
# error of P(win)), which rewards confidences that can be used as they are in EV = conf x R:R -
# (1 - conf). Note scale_pos_weight shifts probabilities toward the minority class, so the tuner
# is scoring calibration of a reweighted model; the calibrator fitted after tuning undoes it.
OBJECTIVES: dict[str, Objective] = {
    "long": Objective("f0.5@0.50", "maximize", _f_half),
    "short": Objective("brier", "minimize", _brier),
}


@dataclass(frozen=True)
class TrainedModel:
    """One side's trained classifier and everything needed to record it as an experiment."""

    side: Side
    booster: xgb.Booster
    features: list[str]  # the model's input columns, in order
    params: dict[str, Any]  # JSON-serialisable: tuned + fixed XGBoost params, n_estimators
    cv_score: float  # best CV score of the chosen round
    objective: str
    objective_direction: Literal["maximize", "minimize"]
    rounds: list[dict[str, Any]]  # round, n_features, cv_score, trials, dropped (after it)
    best_round: int
    train_idx: np.ndarray  # positions in the TrainingSet
    test_idx: np.ndarray
    test_probability: np.ndarray  # calibrated P(win) of the held-out rows, in test_idx order
    test_raw_probability: np.ndarray  # the booster's raw output for them (before calibration)
    oof_raw_probability: np.ndarray  # out-of-fold raw output of the training rows (train_idx
    #                                  order): what the calibrator was fitted on
    calibrator: Calibrator
    train_range: tuple[date, date]  # first and last signal session
    test_range: tuple[date, date]
    config: TrainingConfig


def scale_pos_weight(label: np.ndarray) -> float:
    """losses / wins of the rows being fit: balances the classes so 0.50 is a fair gate."""
    check_two_classes(label, "the rows being fit")
    wins = int(np.sum(label))
    return (len(label) - wins) / wins


def predict(booster: xgb.Booster, frame: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """The booster's raw P(win) for each row of `frame` (columns picked by name in the model's
    order). Raw output is skewed by scale_pos_weight: trade decisions use `confidence`."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks the model's features: {', '.join(missing)}")
    if booster.feature_names is not None and list(booster.feature_names) != list(features):
        raise ValueError(
            "the feature list does not match the model's: "
            f"{list(features)} vs {booster.feature_names}"
        )
    return booster.predict(_matrix(frame, list(features)))


def confidence(
    booster: xgb.Booster, calibrator: Calibrator, frame: pd.DataFrame, features: Sequence[str]
) -> np.ndarray:
    """Calibrated P(win) of each row: the one path from features to confidence, shared by the
    held-out evaluation and serving (`ml.dataset.model_confidence`)."""
    return calibrator.apply(predict(booster, frame, features))


def train_side(
    ts: TrainingSet,
    side: Side,
    config: TrainingConfig | None = None,
    study_storage: Callable[[], optuna.storages.BaseStorage] | None = None,
) -> TrainedModel:
    """Split, tune and eliminate features on the training rows, refit, calibrate on out-of-fold
    predictions of the training rows, score held-out once.

    `config.workers` > 1 tunes with that many worker processes on one Optuna study in
    `study_storage` (a factory, so each process opens its own connection: `ml.shared_study`);
    the refit, calibration and evaluation still happen once, here."""
    if side not in OBJECTIVES:
        raise ValueError(f"side must be 'long' or 'short', not {side!r}")
    config = config or TrainingConfig()
    objective = OBJECTIVES[side]
    train_idx, test_idx = split_rows(ts, config)
    ts_train = ts.subset(train_idx)
    folds = cv_folds(ts_train, config)
    with (
        quiet_optuna(),
        ThreadPoolExecutor(config.n_jobs) as pool,
        _tuner(ts_train, folds, side, config, pool, study_storage) as tune,
    ):
        best, rounds = _eliminate(ts_train, objective, config, tune)
        base = {k: v for k, v in best.params.items() if k != "scale_pos_weight"}
        oof = _out_of_fold(len(ts_train), fold_matrices(ts_train, best.features, folds), base, pool)
    calibrator = fit_calibrator(ts_train.label, oof, folds)  # training rows only
    raw = predict(best.booster, ts.features.iloc[test_idx], best.features)
    return TrainedModel(
        side=side,
        booster=best.booster,
        features=best.features,
        params=best.params,
        cv_score=best.cv_score,
        objective=objective.name,
        objective_direction=objective.direction,
        rounds=rounds,
        best_round=best.round,
        train_idx=train_idx,
        test_idx=test_idx,
        # = confidence(booster, calibrator, ...) of the held-out rows, without predicting twice
        test_probability=calibrator.apply(raw),
        test_raw_probability=raw,
        oof_raw_probability=oof,
        calibrator=calibrator,
        train_range=session_range(ts, train_idx),
        test_range=session_range(ts, test_idx),
        config=config,
    )


# --- internals ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Round:
    round: int
    features: list[str]
    cv_score: float
    params: dict[str, Any]
    booster: xgb.Booster


# (features, warm-start params) -> best params and their out-of-fold score
Tuner = Callable[[list[str], "dict[str, Any] | None"], tuple[dict[str, Any], float]]


@contextmanager
def _tuner(
    ts: TrainingSet,
    folds: list[Fold],
    side: Side,
    config: TrainingConfig,
    pool: ThreadPoolExecutor,
    study_storage: Callable[[], optuna.storages.BaseStorage] | None,
) -> Iterator[Tuner]:
    """One process and an in-memory study, or `config.workers` processes on a shared one."""
    if config.workers == 1:
        objective = OBJECTIVES[side]
        yield lambda features, warm: _tune(ts, features, folds, objective, config, pool, warm)
        return
    if study_storage is None:
        raise ValueError(
            f"workers={config.workers} tunes on a shared Optuna study: give its storage "
            "(the model assets use the project's Postgres)"
        )
    from breakout_assets.ml.shared_study import shared_tuner

    with shared_tuner(ts, folds, side, config, study_storage) as tune:
        yield tune


def _eliminate(
    ts: TrainingSet, objective: Objective, config: TrainingConfig, tune: Tuner
) -> tuple[_Round, list[dict]]:
    """Tune, refit, drop the weakest by gain; repeat. Best CV score wins, ties to fewer features."""
    features, rounds, best = ts.feature_names, [], None
    warm: dict[str, Any] | None = None
    for r in range(config.max_rounds):
        tuned, score = tune(features, warm)
        params = {
            **tuned,
            **FIXED_PARAMS,
            "scale_pos_weight": scale_pos_weight(ts.label),
            "seed": config.seed,
        }
        booster = _fit(_matrix(ts.features, features, ts.label), params)
        current = _Round(r, features, score, params, booster)
        if (
            best is None
            or objective.better(score, best.cv_score)
            or (score == best.cv_score and len(features) < len(best.features))
        ):
            best = current
        n_drop = _n_drop(len(features), config) if r + 1 < config.max_rounds else 0
        dropped = _weakest(booster, features, n_drop)
        rounds.append(
            {
                "round": r,
                "n_features": len(features),
                "cv_score": score,
                "trials": config.trials,
                "dropped": dropped,
            }
        )
        if not dropped:
            break
        features = [f for f in features if f not in set(dropped)]
        warm = tuned
    assert best is not None
    return best, rounds


def _n_drop(n: int, config: TrainingConfig) -> int:
    step = config.eliminate_per_round
    k = int(step) if step >= 1 else int(n * step)
    return max(0, min(max(1, k), n - config.min_features))


def _weakest(booster: xgb.Booster, features: list[str], k: int) -> list[str]:
    """The k features with the least (average) gain; unused ones have 0; ties go by name."""
    gain = booster.get_score(importance_type="gain")
    return sorted(features, key=lambda f: (float(cast(float, gain.get(f, 0.0))), f))[:k]


def search_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 6),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, step=10),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 20.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "gamma": trial.suggest_float("gamma", 0.0, 5.0),
    }


def _tune(
    ts: TrainingSet,
    features: list[str],
    folds: list[Fold],
    objective: Objective,
    config: TrainingConfig,
    pool: ThreadPoolExecutor,
    warm: dict[str, Any] | None,
) -> tuple[dict[str, Any], float]:
    """Best params and out-of-fold score of `trials` TPE trials; starts from `warm` if given."""
    matrices = fold_matrices(ts, features, folds)

    def run(trial: optuna.Trial) -> float:
        return cv_score(ts, matrices, search_space(trial), objective, config, pool)

    study = optuna.create_study(
        direction=objective.direction, sampler=optuna.samplers.TPESampler(seed=config.seed)
    )
    if warm is not None:
        study.enqueue_trial(warm)
    study.optimize(run, n_trials=config.trials)
    return dict(study.best_trial.params), float(study.best_value)


_FoldMatrices = list[tuple[xgb.DMatrix, xgb.DMatrix, np.ndarray, float]]


def cv_score(
    ts: TrainingSet,
    matrices: _FoldMatrices,
    tuned: dict[str, Any],
    objective: Objective,
    config: TrainingConfig,
    pool: ThreadPoolExecutor,
) -> float:
    """The objective on out-of-fold predictions of one trial's params: what a trial is worth."""
    oof = _out_of_fold(len(ts), matrices, {**tuned, **FIXED_PARAMS, "seed": config.seed}, pool)
    seen = ~np.isnan(oof)
    return objective.score(ts.label[seen], oof[seen])


def fold_matrices(ts: TrainingSet, features: list[str], folds: list[Fold]) -> _FoldMatrices:
    """Per fold: training matrix, validation matrix, validation positions, scale_pos_weight."""
    return [
        (
            _matrix(ts.features.iloc[tr], features, ts.label[tr]),
            _matrix(ts.features.iloc[va], features),
            va,
            scale_pos_weight(ts.label[tr]),
        )
        for tr, va in folds
    ]


def _out_of_fold(
    n: int, matrices: _FoldMatrices, base: dict[str, Any], pool: ThreadPoolExecutor
) -> np.ndarray:
    """Raw P(win) of each row by the fold model that did not see it (NaN: in no validation part).
    Each fold fits with its own scale_pos_weight; results are collected in fold order."""

    def fold(item: tuple[xgb.DMatrix, xgb.DMatrix, np.ndarray, float]) -> np.ndarray:
        train, valid, _, spw = item
        return _fit(train, {**base, "scale_pos_weight": spw}).predict(valid)

    oof = np.full(n, np.nan)
    for (_, _, valid_idx, _), p in zip(matrices, pool.map(fold, matrices), strict=True):
        oof[valid_idx] = p
    return oof


def _fit(train: xgb.DMatrix, params: dict[str, Any]) -> xgb.Booster:
    native = {k: v for k, v in params.items() if k != "n_estimators"}
    return xgb.train({**native, "nthread": 1}, train, num_boost_round=params["n_estimators"])


def _matrix(
    frame: pd.DataFrame, features: list[str], label: np.ndarray | None = None
) -> xgb.DMatrix:
    return xgb.DMatrix(
        frame[features].to_numpy(dtype=np.float64), label=label, feature_names=features, nthread=1
    )


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; silence it for the run, then restore the caller's level."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)

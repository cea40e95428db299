"""One training run end to end: train, evaluate once on held-out rows, card, verdict.

Pure apart from the clock (passed in): the asset stores what this returns, so a test can run
the same experiment twice and compare model bytes and metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import optuna
import xgboost as xgb

from breakout_assets.ml.evaluation import Evaluation, evaluate, gain_importance
from breakout_assets.ml.registry import (
    ModelCard,
    PromotionRules,
    experiment_id,
    iso_range,
    promotion_verdict,
    sha256,
)
from breakout_assets.ml.splits import TrainingSet
from breakout_assets.ml.training import Side, TrainedModel, TrainingConfig, train_side


@dataclass(frozen=True)
class Experiment:
    trained: TrainedModel
    evaluation: Evaluation
    card: ModelCard
    verdict: dict
    model: bytes  # UBJ
    test_r: object  # numpy array: realised R of the held-out trades, in test order
    test_net_r: object = None  # the same after costs; None when costs were not recorded

    @property
    def split(self) -> dict:
        config = self.trained.config
        return {
            "split": config.split,
            "cv": config.cv,
            "folds": config.folds,
            "seed": config.seed,
            "trials": config.trials,
            "label": config.label,
            "embargo_sessions": config.embargo_sessions,
            "test_start": config.test_start.isoformat() if config.test_start else None,
            "train_rows": len(self.trained.train_idx),
            "test_rows": len(self.trained.test_idx),
            "objective": self.trained.objective,
            "cv_score": self.trained.cv_score,
            "rounds": self.trained.rounds,
            "calibrator": {
                "method": self.trained.calibrator.method,
                **self.trained.calibrator.selection,
            },
        }


def run_experiment(
    ts: TrainingSet,
    side: Side,
    config: TrainingConfig,
    rules: PromotionRules,
    now: datetime,
    study_storage: Callable[[], optuna.storages.BaseStorage] | None = None,
) -> Experiment:
    trained = train_side(ts, side, config, study_storage)
    test = ts.subset(trained.test_idx)
    # net R (after costs) when every held-out outcome has it; promotion then compares net
    net_r = test.net_r if np.isfinite(test.net_r).all() else None
    evaluation = evaluate(
        test.label,
        trained.test_probability,
        test.r_multiple,
        gain_importance(trained.booster, trained.features),
        raw_p=trained.test_raw_probability,
        net_r=net_r,
    )
    model = bytes(trained.booster.save_raw("ubj"))
    digest = sha256(model)
    card = ModelCard(
        experiment_id=experiment_id(side, now, digest),
        side=side,
        features=list(trained.features),
        params=trained.params,
        objective=trained.objective,
        cv_score=float(trained.cv_score),
        gate=rules.gate,
        train_range=iso_range(*trained.train_range),
        test_range=iso_range(*trained.test_range),
        created_at=now.isoformat(timespec="seconds"),
        model_sha256=digest,
        xgboost_version=xgb.__version__,
        extra={"test_signal_ids": test.signal_id.tolist(), "label": config.label},
        calibrator_sha256=sha256(trained.calibrator.to_bytes()),
        calibrator=trained.calibrator,
    )
    verdict = promotion_verdict(evaluation.metrics, evaluation.expectancy, rules)
    return Experiment(trained, evaluation, card, verdict, model, test.r_multiple, net_r)

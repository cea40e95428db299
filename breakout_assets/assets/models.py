"""`long_model` and `short_model`: tune, train, evaluate, record and (by rule) promote.

Each run is an experiment: its model and card go to the model store, its parameters, features,
ranges and held-out metrics to `model_experiments`, and it is promoted into
`ACTIVE_MODELS.json` only when the promotion rules pass. The run config overrides the training
settings for one run (trials, folds, split, seed, ...).
"""

import json
from datetime import UTC, date, datetime

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field
from sqlalchemy import Connection

from breakout_assets.assets.common import png_metadata, table_metadata
from breakout_assets.ml.config import training_preset
from breakout_assets.ml.dataset import training_set
from breakout_assets.ml.evaluation import plot_calibration, plot_gate_sweep, plot_importance
from breakout_assets.ml.experiment import Experiment, run_experiment
from breakout_assets.ml.training import TrainingConfig
from breakout_assets.resources.model_store import ModelStore
from breakout_assets.resources.optuna_storage import study_storage
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

GROUP = "research"


class TrainingRun(Config):
    """Overrides of the training settings for one run: the preset's, then any field set here;
    unset fields keep the settings (BREAKOUT_TRAINING__*)."""

    preset: str = Field(
        "production",
        description="Starting point: 'production' (the settings as they are) or "
        "'sample' (fewer trials and rounds: what the demo trains on "
        "the bundled sample). ml/config.py TRAINING_PRESETS.",
    )
    trials: int | None = None
    folds: int | None = None
    cv: str | None = None  # stratified | purged
    split: str | None = None  # chronological | random
    test_start: str | None = None  # YYYY-MM-DD
    test_fraction: float | None = None
    embargo_sessions: int | None = None
    seed: int | None = None
    min_features: int | None = None
    max_rounds: int | None = None
    label: str | None = None  # booked_target | profitable

    def apply(self, base: TrainingConfig) -> TrainingConfig:
        fields = self.model_dump()
        overrides = {
            **training_preset(fields.pop("preset")),
            **{k: v for k, v in fields.items() if v is not None},
        }
        if "test_start" in overrides:
            overrides["test_start"] = date.fromisoformat(overrides["test_start"])
        return TrainingConfig.model_validate({**base.model_dump(), **overrides})


def record_experiment(conn: Connection, experiment: Experiment, artifact_path: str) -> None:
    card = experiment.card
    conn.execute(
        query("models.insert_experiment"),
        {
            "experiment_id": card.experiment_id,
            "side": card.side,
            "created_at": datetime.fromisoformat(card.created_at),
            "params": json.dumps(card.params),
            "features": json.dumps(card.features),
            "train_first": date.fromisoformat(card.train_range[0]),
            "train_last": date.fromisoformat(card.train_range[1]),
            "test_first": date.fromisoformat(card.test_range[0]),
            "test_last": date.fromisoformat(card.test_range[1]),
            "split": json.dumps(experiment.split),
            "metrics": json.dumps(experiment.evaluation.to_json()),
            "artifact_path": artifact_path,
            "model_sha256": card.model_sha256,
            "promoted": False,
            "promotion": json.dumps(experiment.verdict),
        },
    )


def _rounded(value):
    return round(value, 4) if isinstance(value, float) else value


def experiment_metadata(experiment: Experiment, promoted: bool) -> dict:
    evaluation, trained = experiment.evaluation, experiment.trained
    metrics = {k: _rounded(v) for k, v in evaluation.metrics.items()}
    calibrator = trained.calibrator
    return {
        "experiment_id": experiment.card.experiment_id,
        "promoted": promoted,
        "promotion": MetadataValue.json(experiment.verdict),
        "metrics": MetadataValue.json(metrics),
        "expectancy": table_metadata(evaluation.expectancy),
        "calibration": table_metadata(evaluation.calibration),
        # held-out, 10 equal-width bins; confidence is calibrated, raw is the booster's output
        "ece": _rounded(evaluation.metrics["ece"]),
        "raw_ece": _rounded(evaluation.metrics["raw_ece"]),
        "brier": _rounded(evaluation.metrics["brier"]),
        "raw_brier": _rounded(evaluation.metrics["raw_brier"]),
        "raw_calibration": table_metadata(evaluation.raw_calibration),
        "calibrator": calibrator.method,
        "calibrator_selection": MetadataValue.json(
            {
                k: ({m: _rounded(s) for m, s in v.items()} if isinstance(v, dict) else _rounded(v))
                for k, v in calibrator.selection.items()
            }
        ),
        "features": MetadataValue.json(experiment.card.features),
        "train_range": " .. ".join(experiment.card.train_range),
        "test_range": " .. ".join(experiment.card.test_range),
        "train_rows": len(trained.train_idx),
        "test_rows": len(trained.test_idx),
        "cv_score": round(trained.cv_score, 4),
        "objective": trained.objective,
        "elimination": MetadataValue.json(trained.rounds),
        "calibration_plot": png_metadata(
            plot_calibration(evaluation.calibration, raw=evaluation.raw_calibration), "calibration"
        ),
        "importance_plot": png_metadata(plot_importance(evaluation.importance), "importance"),
        "gate_sweep_plot": png_metadata(
            plot_gate_sweep(
                trained.test_probability, experiment.test_r, net_r=experiment.test_net_r
            ),
            "gate sweep",
        ),
    }


def build_model_assets(settings: BreakoutSettings) -> list[AssetsDefinition]:
    return [_model_asset(side, settings) for side in ("long", "short")]


def _model_asset(side: str, settings: BreakoutSettings) -> AssetsDefinition:
    @asset(
        name=f"{side}_model",
        group_name=GROUP,
        kinds={"xgboost", "postgres"},
        deps=[
            AssetKey("signal_outcomes"),
            AssetKey("breakout_signals"),
            AssetKey("daily_features"),
        ],
        **versioned(settings, ("training", "promotion"), ("models",)),
        description=f"The {side} side's XGBoost classifier: Optuna-tuned with recursive feature "
        "elimination, evaluated once on held-out signals, recorded as an experiment "
        "and promoted into ACTIVE_MODELS.json when it passes the promotion rules.",
    )
    def model_asset(
        context: AssetExecutionContext,
        config: TrainingRun,
        postgres: PostgresResource,
        model_store: ModelStore,
    ) -> MaterializeResult:
        training = config.apply(settings.training)
        with postgres.transaction() as conn:
            rows = pd.read_sql(query("models.training_rows"), conn, params={"side": side})
        if rows.empty:
            raise ValueError(
                f"no {side} signals with final outcomes to train on: materialise "
                "breakout_signals and signal_outcomes first"
            )
        context.log.info(f"{side}_model: {len(rows)} labelled signals, config {training}")
        experiment = run_experiment(
            training_set(rows, training.label),
            side,
            training,
            settings.promotion,
            datetime.now(UTC).replace(microsecond=0),
            study_storage(postgres) if training.workers > 1 else None,
        )
        artifact = model_store.save(experiment.card, experiment.model)
        promoted = bool(experiment.verdict["passed"])
        with postgres.transaction() as conn:
            record_experiment(conn, experiment, artifact)
            if promoted:
                conn.execute(
                    query("models.set_promoted"),
                    {"side": side, "experiment_id": experiment.card.experiment_id},
                )
        if promoted:  # after the row commits: the pointer never names an unrecorded run
            model_store.promote(
                side, experiment.card.experiment_id, artifact, reason="passed the promotion rules"
            )
        verdict = "PROMOTED" if promoted else "not promoted (rules failed)"
        context.log.info(
            f"{side}_model {experiment.card.experiment_id}: {verdict}; "
            f"calibrator {experiment.trained.calibrator.method}; "
            f"held-out {experiment.evaluation.metrics}"
        )
        return MaterializeResult(metadata=experiment_metadata(experiment, promoted))

    return model_asset

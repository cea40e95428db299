"""Training knobs, kept apart from the training code so settings load without XGBoost."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TrainingConfig(BaseModel):
    """A training run's knobs; the defaults are one side's production run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trials: int = Field(
        40, ge=1, description="Optuna trials per elimination round (each one a full CV)."
    )
    folds: int = Field(5, ge=2, description="CV folds over the training rows.")
    cv: Literal["stratified", "purged"] = Field(
        "stratified",
        description="stratified: shuffled class-balanced K-fold (the design's "
        "default); purged: time-ordered folds, purged and embargoed.",
    )
    embargo_sessions: int = Field(
        10,
        ge=0,
        description="Business days kept clear between training outcomes and the "
        "first held-out signal, and after each purged validation fold.",
    )
    split: Literal["chronological", "random"] = Field(
        "chronological", description="How held-out rows are chosen; random is for comparison."
    )
    test_start: date | None = Field(
        None,
        description="chronological: rows signalled on/after this date are held out; None: "
        "the last `test_fraction` of rows by time.",
    )
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="Held-out share (random split, or chronological w/o date)."
    )
    seed: int = Field(42, description="Seeds the split, the folds, the sampler and XGBoost.")
    min_features: int = Field(8, ge=1, description="Elimination never goes below this many.")
    eliminate_per_round: float = Field(
        0.2,
        gt=0,
        description="Weakest features dropped per round: a fraction (< 1) of the "
        "current set, at least one, or a whole count (>= 1).",
    )
    max_rounds: int = Field(
        10,
        ge=1,
        description="Most elimination rounds (tuning runs), the first included; 10 "
        "takes 50 features to 8 at the default step (~5 min on 2 cores).",
    )
    label: Literal["booked_target", "profitable"] = Field(
        "booked_target",
        description="What counts as a win: booked_target (the design's label: "
        "the booked target is hit before the stop, so P(win) is the confidence EV needs) or "
        "profitable (any exit above the fill, expiries included; for research and small samples).",
    )
    n_jobs: int = Field(2, ge=1, description="CV folds fitted at once (each single-threaded).")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes evaluating Optuna trials on one shared study in the project's "
        "Postgres (1: one process, an in-memory study); reproducible per seed and count.",
    )

    @field_validator("eliminate_per_round")
    @classmethod
    def _whole_count(cls, value: float) -> float:
        if value >= 1 and value != int(value):
            raise ValueError("eliminate_per_round >= 1 is a count and must be a whole number")
        return value


# Named starting points for a training run (the model assets' `preset` config field, which the
# Dagster UI's Launchpad shows with its description). "sample": the production settings with
# fewer Optuna trials and elimination rounds, what `make demo` trains on the bundled sample
# (minutes instead of ~10 on 2 cores); everything else, the split and the label included, as in
# production, so its models are judged by the same promotion rules.
TRAINING_PRESETS: dict[str, dict] = {
    "production": {},
    "sample": {"trials": 10, "max_rounds": 3},
}


def training_preset(name: str) -> dict:
    if name not in TRAINING_PRESETS:
        raise ValueError(f"unknown training preset {name!r}; have {sorted(TRAINING_PRESETS)}")
    return dict(TRAINING_PRESETS[name])


class PromotionRules(BaseModel):
    """What a trained model must show to be promoted (ml.registry.promotion_verdict)."""

    model_config = ConfigDict(frozen=True)

    min_auc_margin: float = Field(
        0.02,
        ge=-0.5,
        le=0.5,
        description="Held-out ROC-AUC must exceed 0.5 by at least this much (negative values "
        "only make sense for the demo's plumbing run).",
    )
    gate: float = Field(
        0.50, gt=0, lt=1, description="The confidence gate the model will serve at."
    )
    min_gated_trades: int = Field(
        10, ge=1, description="Held-out trades at the gate needed to judge its expectancy."
    )
    must_beat_scanner: bool = Field(
        True,
        description="Expectancy (R) at the gate must exceed the scanner-only expectancy, "
        "both net of costs (gross only for outcomes without recorded costs).",
    )


class DriftConfig(BaseModel):
    """When the serving models have drifted enough to ask for a retrain (`model_drift`).

    Live calibration compares the win rate of scored signals whose outcomes are final with the
    model's held-out reliability curve, bucket by bucket; feature drift is the population
    stability index of recent signals' model inputs against the training rows (PSI > 0.25 is
    the usual "significant shift"). Promotion rules still decide whether a retrained model
    serves.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_sessions: int = Field(
        120, ge=5, le=2520, description="Sessions of recent signals the drift watch reads."
    )
    min_outcomes: int = Field(
        30, ge=1, description="Fewest final outcomes in the window before calibration is judged."
    )
    min_bucket_outcomes: int = Field(
        10, ge=1, description="Fewest outcomes in a confidence bucket for its gap to count."
    )
    max_calibration_gap: float = Field(
        0.15,
        gt=0,
        le=1,
        description="Largest |live - held-out| win rate in a confidence bucket before drift.",
    )
    calibration_z: float = Field(
        2.0,
        ge=0,
        description="Beyond sampling noise: a bucket's gap must also exceed this many standard "
        "errors (two-proportion z, live vs held-out), and ECE counts only when the live outcomes "
        "are as unlikely under the model's confidences (Hosmer-Lemeshow); 0: thresholds alone.",
    )
    max_ece: float = Field(
        0.10, gt=0, le=1, description="Largest live expected calibration error before drift."
    )
    min_psi_signals: int = Field(
        100,
        ge=1,
        description="Fewest recent signals before feature PSI is judged (on ten bins, PSI of "
        "a small sample is large by chance alone: about 9 / n with no shift at all).",
    )
    max_psi: float = Field(0.25, gt=0, description="Largest PSI of any model feature before drift.")
    retrain_interval_hours: float = Field(
        168.0, gt=0, description="The drift sensor asks for a retrain at most once per interval."
    )

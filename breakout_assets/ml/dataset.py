"""One side's training rows: signals + their features + final outcomes, one row per signal.

Rows come from the `model_inputs` view joined to final, filled outcomes (sql/queries/models.sql).
Every feature is as of the signal session (the scanner and the feature SQL read nothing later;
`test_dataset.py` perturbs later bars to prove it); the outcome columns are the labels only.
By default a win (booked target first) is 1 and a loss or an expiry is 0, whatever its R: the
model learns whether the bracket pays as planned, which is the confidence EV = conf x R:R -
(1 - conf) assumes; the expectancy tables use the realised R either way, gross and net of
costs (`net_r_multiple`, NaN where an outcome has no recorded costs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from breakout_assets.ml.features import FEATURES
from breakout_assets.ml.splits import TrainingSet
from breakout_assets.ml.training import confidence

LABEL_STATUSES = ("win", "loss", "expired")


def feature_frame(rows: pd.DataFrame, features=FEATURES) -> pd.DataFrame:
    """The model inputs of `rows`, in the fixed order, as float64 (NaN where unknown)."""
    missing = [f for f in features if f not in rows.columns]
    if missing:
        raise ValueError(
            f"model_inputs lacks features {missing}: the view and "
            "ml/features.py must list the same columns"
        )
    return rows[list(features)].astype("float64").reset_index(drop=True)


def training_set(rows: pd.DataFrame, label: str = "booked_target") -> TrainingSet:
    """Rows of `models.training_rows` -> the training contract, ordered by session, signal_id.

    `label` (TrainingConfig.label): booked_target marks status 'win'; profitable marks any
    trade whose realised R is positive."""
    unknown = set(rows["status"]) - set(LABEL_STATUSES)
    if unknown:
        raise ValueError(f"training rows must have final, filled outcomes; got {sorted(unknown)}")
    rows = rows.assign(signal_id=rows["signal_id"].astype(str))
    rows = rows.sort_values(["session", "signal_id"], kind="stable").reset_index(drop=True)
    return TrainingSet(
        features=feature_frame(rows),
        label=(
            rows["status"] == "win" if label == "booked_target" else rows["r_multiple"] > 0
        ).to_numpy(np.int8),
        signal_session=pd.to_datetime(rows["session"]).to_numpy("datetime64[D]"),
        exit_session=pd.to_datetime(rows["exit_session"]).to_numpy("datetime64[D]"),
        r_multiple=rows["r_multiple"].to_numpy(np.float64),
        signal_id=rows["signal_id"].to_numpy(str),
        net_r_multiple=(
            np.asarray(rows["net_r_multiple"], dtype=np.float64)  # NULL -> NaN
            if "net_r_multiple" in rows
            else None
        ),
    )


def model_confidence(booster, card, rows: pd.DataFrame) -> np.ndarray:
    """Calibrated P(win) of each row by a stored model (features picked in the model's order,
    its saved calibrator applied): the same `confidence` its held-out evaluation used."""
    if card.calibrator is None:
        raise ValueError(
            f"model {card.experiment_id} has no calibrator loaded: load it through the model store"
        )
    if rows.empty:
        return np.empty(0)
    return confidence(booster, card.calibrator, feature_frame(rows, card.features), card.features)

"""Experiments and promotion: what a trained model records, and when it may serve.

A model serves only after its held-out results pass the promotion rules: it must rank better
than chance by a margin and, at the serving gate, beat taking every signal. The rules are pure
functions of the evaluation, so the asset, the CLI and the tests judge a run the same way.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from breakout_assets.ml.config import PromotionRules
from breakout_assets.ml.features import check_model_features

if TYPE_CHECKING:  # settings import this module; keep scikit-learn out of their import
    from breakout_assets.ml.calibration import Calibrator


def promotion_verdict(metrics: dict, expectancy: pd.DataFrame, rules: PromotionRules) -> dict:
    """Each rule with its measured value and verdict; `passed` only if every rule passes."""
    auc = metrics.get("roc_auc", math.nan)
    scanner = expectancy.loc[expectancy["strategy"] == "scanner only"].iloc[0]
    gated = expectancy.loc[
        (expectancy["strategy"] != "scanner only")
        & (expectancy["gate"].round(4) == round(rules.gate, 4))
    ]
    if gated.empty:
        raise ValueError(f"the expectancy table has no row for the gate {rules.gate}")
    at_gate = gated.iloc[0]
    checks: list[dict[str, Any]] = [
        {
            "rule": "roc_auc > 0.5 + margin",
            "value": _finite(auc),
            "threshold": 0.5 + rules.min_auc_margin,
            "passed": bool(auc > 0.5 + rules.min_auc_margin),
        },
        {
            "rule": "trades at the gate",
            "value": int(at_gate["trades"]),
            "threshold": rules.min_gated_trades,
            "passed": bool(at_gate["trades"] >= rules.min_gated_trades),
        },
    ]
    if rules.must_beat_scanner:
        # after costs: a gate that keeps fewer, costlier trades must still pay for them
        net = "sum_net_r" in expectancy and math.isfinite(scanner["sum_net_r"])
        column = "expectancy_net_r" if net else "expectancy_r"
        checks.append(
            {
                "rule": (
                    "net expectancy at the gate > scanner only"
                    if net
                    else "expectancy at the gate > scanner only (gross: no costs recorded)"
                ),
                "value": _finite(at_gate[column]),
                "threshold": _finite(scanner[column]),
                "passed": bool(at_gate[column] > scanner[column]),
            }
        )
    return {"passed": all(c["passed"] for c in checks), "gate": rules.gate, "checks": checks}


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class ModelCard:
    """The metadata JSON saved next to a model: enough to serve and to audit it.

    The calibrator is saved as its own file (`calibrator.json`) whose sha256 the card records,
    like the model's; `calibrator` holds it in memory (the store fills it on load) and is not
    part of the card's JSON. `calibrator_sha256` None marks a model saved before calibration.
    """

    experiment_id: str
    side: str
    features: list[str]  # in the order the model reads them
    params: dict
    objective: str
    cv_score: float
    gate: float
    train_range: tuple[str, str]
    test_range: tuple[str, str]
    created_at: str
    model_sha256: str
    model_format: str = "ubj"
    xgboost_version: str = ""
    extra: dict = field(default_factory=dict)
    calibrator_sha256: str | None = None
    calibrator: Calibrator | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict:
        data = asdict(replace(self, calibrator=None))
        del data["calibrator"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> ModelCard:
        data = {k: v for k, v in data.items() if k != "calibrator"}  # only calibrator.json counts
        card = cls(
            **{
                **data,
                "train_range": tuple(data["train_range"]),
                "test_range": tuple(data["test_range"]),
            }
        )
        check_model_features(card.features)
        return card


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def experiment_id(side: str, created_at: datetime, model_sha256: str) -> str:
    """Sortable by time, unique by content: `long-20260102T030405-1a2b3c4d`."""
    return f"{side}-{created_at:%Y%m%dT%H%M%S}-{model_sha256[:8]}"


def iso_range(first: date, last: date) -> tuple[str, str]:
    return first.isoformat(), last.isoformat()

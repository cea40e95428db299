"""Turning a booster's raw P(win) into a confidence that can be read as a probability.

`scale_pos_weight` (losses / wins) makes XGBoost fit a reweighted problem: its raw output is
the win probability of a balanced world, shifted toward wins, so `EV = conf x R:R - (1 - conf)`
and the tiers would overstate every trade. A `Calibrator` maps raw output to the observed win
rate. It is fitted on out-of-fold predictions of the training rows only (`fit_calibrator`),
never on held-out rows, and saved as plain numbers in JSON beside the model (no pickle):

- sigmoid (Platt): `conf = 1 / (1 + exp(-(a * logit(raw) + b)))`. XGBoost's output is a logistic
  of its margin and class weighting shifts that margin, so two numbers often undo it exactly.
- isotonic: a non-decreasing step map (x thresholds -> y values) applied with `np.interp`,
  flat beyond the ends; more flexible, needs more rows. Its values are bounded by Platt's
  smoothed targets, so a few rows never make a confidence of exactly 0 or 1.
- identity: raw output as it is (a legacy model saved before calibration existed).

Which of sigmoid and isotonic serves is decided by K-fold CV of the calibrator itself on the
out-of-fold predictions, scored by the Brier score (lower wins, a tie goes to sigmoid, which has
two parameters). Brier rather than log loss: it is bounded, so one isotonic step that meets the
other outcome in a validation fold costs at most 1/n instead of an unbounded penalty, and it is
the score the short side already tunes. Both maps are non-decreasing, so calibration never
reorders signals (a sigmoid slope that comes out negative is set to 0: a model that ranks
backwards is served as the base rate, not silently inverted).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

Method = Literal["isotonic", "sigmoid", "identity"]
METHODS: tuple[str, ...] = ("isotonic", "sigmoid", "identity")
CANDIDATES: tuple[str, ...] = ("sigmoid", "isotonic")  # in tie-break order
SELECTION_SCORE = "brier"
_EPS = 1e-6  # raw output is clipped to [eps, 1 - eps] before logit: finite for any booster
Fold = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Calibrator:
    """A fitted raw -> calibrated map, kept as plain numbers so it saves as JSON."""

    method: Method
    a: float = 1.0  # sigmoid slope on logit(raw)
    b: float = 0.0  # sigmoid intercept
    x: tuple[float, ...] = ()  # isotonic thresholds (raw), increasing
    y: tuple[float, ...] = ()  # isotonic values at the thresholds, non-decreasing, in [0, 1]
    selection: Mapping[str, Any] = field(default_factory=dict)  # how it was chosen (audit only)

    def __post_init__(self) -> None:
        """Refuse a map that could serve a non-probability or reorder signals."""
        if self.method not in METHODS:
            raise ValueError(f"calibrator method must be one of {METHODS}, not {self.method!r}")
        object.__setattr__(self, "a", float(self.a))
        object.__setattr__(self, "b", float(self.b))
        object.__setattr__(self, "x", tuple(float(v) for v in self.x))
        object.__setattr__(self, "y", tuple(float(v) for v in self.y))
        if self.method == "sigmoid" and not (
            math.isfinite(self.a) and math.isfinite(self.b) and self.a >= 0
        ):
            raise ValueError(
                f"sigmoid calibrator needs finite a >= 0 and b, got {self.a}, {self.b}"
            )
        if self.method == "isotonic":
            x, y = np.array(self.x), np.array(self.y)
            if len(x) == 0 or len(x) != len(y):
                raise ValueError("isotonic calibrator needs as many y values as x thresholds (>0)")
            if not (np.all(np.isfinite(x)) and np.all(np.diff(x) > 0)):
                raise ValueError("isotonic thresholds must be finite and increasing")
            if not (np.all((y >= 0) & (y <= 1)) and np.all(np.diff(y) >= 0)):
                raise ValueError("isotonic values must be non-decreasing and within [0, 1]")

    @classmethod
    def identity(cls, reason: str) -> Calibrator:
        return cls("identity", selection={"reason": reason})

    def apply(self, raw: ArrayLike) -> np.ndarray:
        """Calibrated P(win) in [0, 1] for each raw booster output."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "sigmoid":
            out = expit(self.a * logit(np.clip(raw, _EPS, 1 - _EPS)) + self.b)
        elif self.method == "isotonic":
            out = np.interp(raw, self.x, self.y)  # flat beyond the ends, as sklearn's "clip"
        else:
            out = raw
        return np.clip(out, 0.0, 1.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "a": self.a,
            "b": self.b,
            "x": list(self.x),
            "y": list(self.y),
            "selection": dict(self.selection),
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON bytes: what the store writes and hashes (same map = same bytes)."""
        return (
            json.dumps(self.to_json(), indent=2, sort_keys=True, allow_nan=False) + "\n"
        ).encode()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibrator:
        unknown = set(data) - {"method", "a", "b", "x", "y", "selection"}
        if unknown or "method" not in data:
            raise ValueError(f"not a calibrator: keys {sorted(data)}")
        return cls(
            method=data["method"],
            a=data.get("a", 1.0),
            b=data.get("b", 0.0),
            x=tuple(data.get("x", ())),
            y=tuple(data.get("y", ())),
            selection=dict(data.get("selection", {})),
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> Calibrator:
        return cls.from_json(json.loads(payload))


def fit_sigmoid(label: np.ndarray, raw: np.ndarray) -> Calibrator:
    """Platt scaling on logit(raw), with Platt's smoothed targets ((N+ + 1) / (N+ + 2) for a
    win, 1 / (N- + 2) for a loss) so a separable fold still has a finite fit."""
    label, raw = _checked(label, raw)
    wins = int(label.sum())
    target = np.where(label == 1, (wins + 1) / (wins + 2), 1 / (len(label) - wins + 2))
    z = logit(np.clip(raw, _EPS, 1 - _EPS)).reshape(-1, 1)
    # soft targets as a weighted logistic fit: each row once as a win (weight t), once as a loss
    model = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)
    model.fit(
        np.vstack([z, z]),
        np.r_[np.ones(len(z)), np.zeros(len(z))],
        sample_weight=np.r_[target, 1 - target],
    )
    a, b = float(model.coef_[0, 0]), float(model.intercept_[0])
    if a < 0:  # ranks backwards: serve the (smoothed) base rate instead of inverting the model
        a, b = 0.0, float(logit(float(np.mean(target))))
    return Calibrator("sigmoid", a=a, b=b)


def fit_isotonic(label: np.ndarray, raw: np.ndarray) -> Calibrator:
    """Isotonic regression of the label on raw, bounded by the same smoothed targets as Platt's:
    a finite sample never makes a confidence of exactly 0 or 1."""
    label, raw = _checked(label, raw)
    wins = int(label.sum())
    low, high = 1 / (len(label) - wins + 2), (wins + 1) / (wins + 2)
    model = IsotonicRegression(y_min=low, y_max=high, increasing=True, out_of_bounds="clip")
    model.fit(raw, label.astype(np.float64))
    return Calibrator(
        "isotonic", x=tuple(model.X_thresholds_.tolist()), y=tuple(model.y_thresholds_.tolist())
    )


_FITTERS = {"sigmoid": fit_sigmoid, "isotonic": fit_isotonic}


def fit_calibrator(
    label: ArrayLike, raw: ArrayLike, folds: int | Sequence[Fold] = 5, seed: int = 0
) -> Calibrator:
    """Choose sigmoid or isotonic by K-fold CV (Brier) on out-of-fold raw predictions of the
    training rows, then fit the winner on all of them.

    `folds` is a fold count (stratified, shuffled with `seed`) or explicit (train, valid)
    positions, e.g. the model's own CV folds; the validation parts must cover every row."""
    label, raw = _checked(label, raw)
    if isinstance(folds, int):
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        folds = [(np.sort(a), np.sort(b)) for a, b in splitter.split(raw.reshape(-1, 1), label)]
    covered = np.zeros(len(label), dtype=bool)
    for _, valid in folds:
        covered[valid] = True
    if not covered.all():
        raise ValueError("the calibrator's CV folds must validate every row")
    scores: dict[str, float] = {}
    for method in CANDIDATES:
        predicted = np.empty(len(label))
        for train, valid in folds:
            predicted[valid] = _FITTERS[method](label[train], raw[train]).apply(raw[valid])
        scores[method] = _brier(label, predicted)
    chosen = min(CANDIDATES, key=lambda m: (scores[m], CANDIDATES.index(m)))
    fitted = _FITTERS[chosen](label, raw)
    selection = {
        "score": SELECTION_SCORE,
        "cv_folds": len(folds),
        "rows": len(label),
        "wins": int(label.sum()),
        "cv": scores,
        "raw": _brier(label, raw),
    }
    return Calibrator(fitted.method, fitted.a, fitted.b, fitted.x, fitted.y, selection)


def _brier(label: np.ndarray, probability: np.ndarray) -> float:
    return float(np.mean((probability - label) ** 2))


def _checked(label: ArrayLike, raw: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    label, raw = np.asarray(label), np.asarray(raw, dtype=np.float64)
    if label.ndim != 1 or label.shape != raw.shape or len(label) == 0:
        raise ValueError("label and raw must be 1-D, non-empty and of the same length")
    if not np.isin(label, (0, 1)).all():
        raise ValueError("label must hold 0/1")
    if not np.all((raw >= 0) & (raw <= 1)):
        raise ValueError("raw must be probabilities in [0, 1] (NaN is a model bug)")
    return label.astype(np.int8), raw

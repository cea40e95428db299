"""Drift of a serving model: live calibration against its held-out curve, and feature PSI.

Two questions decide whether a model still describes the market it trades. Calibration: do the
signals it scored win as often as its confidence (and its held-out reliability curve) said?
Confidence sizes trades through EV, so a bucket whose live win rate strays from the held-out
one misprices every trade in it. Features: do recent signals look like the rows it learned
from? The population stability index per feature, on bins cut at the training quantiles, says
where the inputs moved before the outcomes are in. Pure functions of arrays: the asset reads
the rows, this module judges them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import chdtrc, erfc

# The model's held-out reliability table uses 10 equal-width bins over [0, 1]
# (ml/evaluation.calibration_table); live buckets must line up with it row by row.
BUCKETS = 10
PSI_BINS = 10
# A bin empty on one side would make PSI infinite; this share stands in for "almost none".
PSI_FLOOR = 1e-4


def confidence_bucket(confidence: ArrayLike, buckets: int = BUCKETS) -> np.ndarray:
    """Bucket of each confidence: [k/10, (k+1)/10), 1.0 in the last, as the held-out table."""
    p = np.asarray(confidence, dtype=float)
    if p.ndim != 1 or not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("confidence must be a 1-D array of probabilities in [0, 1]")
    return np.minimum(np.floor(p * buckets).astype(int), buckets - 1)


@dataclass(frozen=True)
class HeldOutBucket:
    """One row of the model's held-out reliability table."""

    bucket: int
    count: int
    observed_rate: float | None  # None: no held-out row fell in the bucket


@dataclass(frozen=True)
class CalibrationBucket:
    """Live win rate of one confidence bucket next to the held-out one."""

    bucket: int
    lower: float
    upper: float
    n: int  # live final outcomes in the bucket
    wins: int
    mean_confidence: float | None
    live: float | None  # live win rate; None when n == 0
    held_out: float | None
    held_out_n: int

    @property
    def gap(self) -> float | None:
        """|live - held-out| win rate, when both exist."""
        if self.live is None or self.held_out is None:
            return None
        return abs(self.live - self.held_out)

    def to_json(self) -> dict:
        return {
            "bucket": self.bucket,
            "lower": self.lower,
            "upper": self.upper,
            "n": self.n,
            "wins": self.wins,
            "mean_confidence": self.mean_confidence,
            "live": self.live,
            "held_out": self.held_out,
            "held_out_n": self.held_out_n,
            "gap": self.gap,
        }


def live_calibration(
    confidence: ArrayLike, won: ArrayLike, held_out: Sequence[HeldOutBucket]
) -> list[CalibrationBucket]:
    """Every bucket (empty ones with n 0), live win rate and mean confidence beside the
    held-out win rate of the same bucket."""
    p = np.asarray(confidence, dtype=float)
    y = np.asarray(won, dtype=bool)
    if y.shape != p.shape:
        raise ValueError("won must have one entry per confidence")
    index = confidence_bucket(p)
    by_bucket = {b.bucket: b for b in held_out}
    rows = []
    for k in range(BUCKETS):
        in_bucket = index == k
        n, wins = int(in_bucket.sum()), int(y[in_bucket].sum())
        reference = by_bucket.get(k)
        rows.append(
            CalibrationBucket(
                bucket=k,
                lower=k / BUCKETS,
                upper=(k + 1) / BUCKETS,
                n=n,
                wins=wins,
                mean_confidence=float(p[in_bucket].mean()) if n else None,
                live=wins / n if n else None,
                held_out=reference.observed_rate if reference else None,
                held_out_n=reference.count if reference else 0,
            )
        )
    return rows


def expected_calibration_error(buckets: Sequence[CalibrationBucket]) -> float | None:
    """Live ECE: |mean confidence - live win rate| per bucket, weighted by the bucket's share
    of the live outcomes (the held-out `ece` metric, on live rows); None without outcomes."""
    total = sum(b.n for b in buckets)
    if total == 0:
        return None
    return sum(
        b.n / total * abs(b.mean_confidence - b.live)
        for b in buckets
        if b.n and b.mean_confidence is not None and b.live is not None
    )


def hosmer_lemeshow_p(buckets: Sequence[CalibrationBucket]) -> float | None:
    """P-value of the live outcomes under the model's own confidences (Hosmer-Lemeshow over
    the filled buckets: sum (wins - n c)^2 / (n c (1 - c)), chi-square with one degree of
    freedom per bucket). A small sample's ECE is large by chance alone (about 0.08 over four
    buckets of 25 calibrated outcomes); this says whether it is more than chance."""
    statistic, filled = 0.0, 0
    for b in buckets:
        if not b.n or b.mean_confidence is None:
            continue
        c = min(max(b.mean_confidence, 1e-6), 1 - 1e-6)
        statistic += (b.wins - b.n * c) ** 2 / (b.n * c * (1 - c))
        filled += 1
    return float(chdtrc(filled, statistic)) if filled else None


def two_sided_alpha(z: float) -> float:
    """The significance of a two-sided normal test at z standard errors (2 -> 0.0455)."""
    return float(erfc(z / math.sqrt(2)))


def calibration_gap(buckets: Sequence[CalibrationBucket], min_bucket_outcomes: int) -> float | None:
    """Largest |live - held-out| win rate over buckets holding enough live outcomes (a bucket
    of three trades says nothing); None when no bucket qualifies."""
    gaps = [b.gap for b in buckets if b.n >= min_bucket_outcomes and b.gap is not None]
    return max(gaps) if gaps else None


def quantile_edges(training: ArrayLike, bins: int = PSI_BINS) -> np.ndarray:
    """Inner bin edges at the training deciles (finite values only); ties collapse, so a
    feature with few distinct values gets fewer, still-populated bins."""
    values = np.asarray(training, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(values, np.arange(1, bins) / bins))


def bin_shares(values: ArrayLike, edges: np.ndarray) -> np.ndarray:
    """Share of `values` in each bin (-inf, e0], (e0, e1], ..., (e_last, inf), then a last bin
    for missing values (XGBoost routes NaN on its own: a shift in missingness is drift too)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("no values to bin")
    finite = np.isfinite(values)
    counts = np.bincount(
        np.searchsorted(edges, values[finite], side="left"), minlength=len(edges) + 1
    )
    return np.append(counts, np.count_nonzero(~finite)) / values.size


def population_stability_index(expected: ArrayLike, actual: ArrayLike) -> float:
    """PSI = sum (actual - expected) x ln(actual / expected) over bins of shares; each term is
    >= 0, and 0 only where the shares agree. Shares below PSI_FLOOR count as PSI_FLOOR."""
    e = np.maximum(np.asarray(expected, dtype=float), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), PSI_FLOOR)
    if e.shape != a.shape:
        raise ValueError("expected and actual must have the same bins")
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class TrainingProfile:
    """One feature as the model learned it: its decile edges and the training shares per bin
    (computed once per model, compared with every session's window)."""

    edges: np.ndarray
    shares: np.ndarray

    @classmethod
    def of(cls, training: ArrayLike, bins: int = PSI_BINS) -> TrainingProfile:
        edges = quantile_edges(training, bins)
        return cls(edges, bin_shares(training, edges))

    def psi(self, recent: ArrayLike) -> float:
        return population_stability_index(self.shares, bin_shares(recent, self.edges))


def feature_psi(training: ArrayLike, recent: ArrayLike, bins: int = PSI_BINS) -> float:
    """PSI of one feature's recent values against its training values, on training deciles."""
    return TrainingProfile.of(training, bins).psi(recent)


def training_rows_mask(
    signal_session: ArrayLike,
    exit_session: ArrayLike,
    signal_id: ArrayLike,
    held_out_ids: Sequence[str],
    split: str,
    test_first: np.datetime64,
    embargo_sessions: int,
) -> np.ndarray:
    """Which labelled rows of the model's training range it trained on, from what its
    experiment recorded: not a held-out row, and split in time, an outcome known before the
    embargo ahead of the first held-out signal (ml/splits.split_rows, same business days)."""
    sessions = np.asarray(signal_session, dtype="datetime64[D]")
    exits = np.asarray(exit_session, dtype="datetime64[D]")
    mask = ~np.isin(np.asarray(signal_id, dtype=str), np.asarray(held_out_ids, dtype=str))
    if split == "chronological":
        cutoff = np.busday_offset(test_first, -embargo_sessions, roll="forward")
        mask &= (sessions < test_first) & (exits < cutoff)
    return mask


class DriftThresholds(Protocol):
    """What the judgement reads of the settings (ml/config.DriftConfig)."""

    @property
    def min_outcomes(self) -> int: ...
    @property
    def min_bucket_outcomes(self) -> int: ...
    @property
    def min_psi_signals(self) -> int: ...
    @property
    def max_calibration_gap(self) -> float: ...
    @property
    def calibration_z(self) -> float: ...
    @property
    def max_ece(self) -> float: ...
    @property
    def max_psi(self) -> float: ...


def gap_in_standard_errors(bucket: CalibrationBucket) -> float | None:
    """The bucket's gap as a two-proportion z statistic: both win rates are samples (n live
    outcomes, held_out_n held-out rows), so the gap is measured in the standard error of their
    difference under one pooled rate. Ten outcomes at 0.5 stray by 0.16 by chance alone: a gap
    over a small bucket is mostly noise."""
    if bucket.gap is None or bucket.held_out is None or bucket.n == 0 or bucket.held_out_n == 0:
        return None
    pooled = (bucket.wins + bucket.held_out * bucket.held_out_n) / (bucket.n + bucket.held_out_n)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / bucket.n + 1.0 / bucket.held_out_n))
    if se == 0.0:
        return math.inf if bucket.gap > 0 else 0.0
    return bucket.gap / se


@dataclass(frozen=True)
class DriftVerdict:
    """`drifted` when any threshold is crossed; `reasons` lists each crossing, then what was
    not judged for lack of data or was within sampling noise (those never make a model
    drifted)."""

    drifted: bool
    reasons: tuple[str, ...]


def judge_drift(
    live_outcomes: int,
    ece: float | None,
    buckets: Sequence[CalibrationBucket],
    recent_signals: int,
    psi: Mapping[str, float],
    thresholds: DriftThresholds,
) -> DriftVerdict:
    """Once enough outcomes and signals are in: a bucket drifts when it holds
    `min_bucket_outcomes` and its gap exceeds `max_calibration_gap` and `calibration_z`
    standard errors; ECE when it exceeds `max_ece` and the outcomes are unlikely under the
    model's confidences at the same significance; a feature when its PSI exceeds `max_psi`."""
    crossed: list[str] = []
    notes: list[str] = []
    if live_outcomes < thresholds.min_outcomes:
        notes.append(
            f"calibration not judged: {live_outcomes} final outcomes < {thresholds.min_outcomes}"
        )
    else:
        if ece is not None and ece > thresholds.max_ece:
            p = hosmer_lemeshow_p(buckets)
            alpha = two_sided_alpha(thresholds.calibration_z)
            p_text = "n/a" if p is None else f"{p:.3f}"
            what = f"live ECE {ece:.3f} > {thresholds.max_ece:g} (Hosmer-Lemeshow p {p_text}"
            if p is not None and p < alpha:
                crossed.append(f"{what} < {alpha:.3f})")
            else:
                notes.append(f"{what} >= {alpha:.3f}: within sampling noise)")
        judged = [b for b in buckets if b.n >= thresholds.min_bucket_outcomes and b.gap is not None]
        if not judged:
            notes.append(
                "calibration gap not judged: no bucket holds "
                f"{thresholds.min_bucket_outcomes} outcomes and a held-out rate"
            )
        for b in judged:
            assert b.gap is not None and b.live is not None and b.held_out is not None
            if b.gap <= thresholds.max_calibration_gap:
                continue
            z = gap_in_standard_errors(b)
            what = (
                f"calibration gap {b.gap:.3f} > {thresholds.max_calibration_gap:g} in bucket "
                f"[{b.lower:.1f}, {b.upper:.1f}): live {b.live:.3f} vs held-out "
                f"{b.held_out:.3f} over {b.n} outcomes, {z:.1f} SE"
            )
            if z is not None and z > thresholds.calibration_z:
                crossed.append(what)
            else:
                notes.append(f"{what} <= {thresholds.calibration_z:g}: within sampling noise")
    if recent_signals < thresholds.min_psi_signals:
        notes.append(
            f"feature drift not judged: {recent_signals} recent signals "
            f"< {thresholds.min_psi_signals}"
        )
    else:
        for feature, value in sorted(psi.items(), key=lambda kv: (-kv[1], kv[0])):
            if math.isfinite(value) and value > thresholds.max_psi:
                crossed.append(f"PSI {feature} {value:.3f} > {thresholds.max_psi:g}")
    return DriftVerdict(drifted=bool(crossed), reasons=tuple(crossed + notes))

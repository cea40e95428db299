"""core.drift by hand on small fixed inputs, and PSI's properties (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakout_assets.core.drift import (
    BUCKETS,
    CalibrationBucket,
    DriftVerdict,
    HeldOutBucket,
    bin_shares,
    calibration_gap,
    confidence_bucket,
    expected_calibration_error,
    feature_psi,
    gap_in_standard_errors,
    hosmer_lemeshow_p,
    judge_drift,
    live_calibration,
    population_stability_index,
    quantile_edges,
    training_rows_mask,
    two_sided_alpha,
)
from breakout_assets.ml.config import DriftConfig
from breakout_assets.ml.evaluation import calibration_table
from breakout_assets.settings import SettingsError, load_settings


def test_buckets_are_the_held_out_tables_bins():
    p = np.array([0.0, 0.05, 0.1, 0.55, 0.999, 1.0, 0.3, 0.71])
    held_out = calibration_table(np.zeros_like(p), p)
    assert confidence_bucket(p).tolist() == [0, 0, 1, 5, 9, 9, 3, 7]
    assert (
        sorted(confidence_bucket(p).tolist())
        == np.repeat(held_out["bin"], held_out["count"]).tolist()
    )
    with pytest.raises(ValueError):
        confidence_bucket([1.2])


def test_live_calibration_ece_and_gap_by_hand():
    # bucket 6: 0.62, 0.64, 0.66, 0.68 -> 1 win of 4; bucket 2: 0.25, 0.25 -> 2 wins of 2
    confidence = [0.62, 0.64, 0.66, 0.68, 0.25, 0.25]
    won = [True, False, False, False, True, True]
    held_out = [HeldOutBucket(2, 5, 0.2), HeldOutBucket(6, 8, 0.625), HeldOutBucket(7, 0, None)]
    buckets = live_calibration(confidence, won, held_out)
    assert len(buckets) == BUCKETS
    six, two = buckets[6], buckets[2]
    assert (six.n, six.wins, six.live, six.held_out, six.held_out_n) == (4, 1, 0.25, 0.625, 8)
    assert six.mean_confidence == pytest.approx(0.65)
    assert six.gap == pytest.approx(0.375)
    assert (two.n, two.live, two.held_out) == (2, 1.0, 0.2)
    assert two.gap == pytest.approx(0.8)
    assert buckets[7].n == 0 and buckets[7].live is None and buckets[7].gap is None
    # ECE: 4/6 x |0.65 - 0.25| + 2/6 x |0.25 - 1.0| = 0.26667 + 0.25
    assert expected_calibration_error(buckets) == pytest.approx(4 / 6 * 0.4 + 2 / 6 * 0.75)
    # a bucket needs enough outcomes for its gap to count
    assert calibration_gap(buckets, min_bucket_outcomes=1) == pytest.approx(0.8)
    assert calibration_gap(buckets, min_bucket_outcomes=3) == pytest.approx(0.375)
    assert calibration_gap(buckets, min_bucket_outcomes=5) is None
    assert expected_calibration_error(live_calibration([], [], held_out)) is None


def test_psi_by_hand():
    # training deciles of 1..10 are 1.9, 2.8, ..., 9.1: one value per bin
    training = np.arange(1.0, 11.0)
    edges = quantile_edges(training)
    assert edges == pytest.approx(np.arange(1.9, 9.2, 0.9))
    assert bin_shares(training, edges).tolist() == [0.1] * 10 + [0.0]
    # recent: half in the first bin, half in the last
    recent = np.array([1.0] * 5 + [10.0] * 5)
    shares = bin_shares(recent, edges)
    assert shares.tolist() == [0.5] + [0.0] * 8 + [0.5, 0.0]
    # PSI = 2 x (0.5 - 0.1) ln 5 + 8 x (1e-4 - 0.1) ln(1e-4 / 0.1), the NaN bin 0 on both sides
    expected = 2 * 0.4 * math.log(5) + 8 * (1e-4 - 0.1) * math.log(1e-3)
    assert feature_psi(training, recent) == pytest.approx(expected)
    assert population_stability_index([0.5, 0.5], [0.25, 0.75]) == pytest.approx(
        -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    )


def test_psi_sees_missing_values_and_ties():
    training = np.array([0.0] * 7 + [1.0, 2.0, 3.0])
    edges = quantile_edges(training)
    assert edges == pytest.approx([0.0, 0.3, 1.2, 2.1])  # the zeros collapse into one edge
    assert bin_shares(training, edges).tolist() == [0.7, 0.0, 0.1, 0.1, 0.1, 0.0]
    half_missing = np.array([0.0] * 5 + [np.nan] * 5)
    assert bin_shares(half_missing, edges)[-1] == 0.5
    assert feature_psi(training, half_missing) > 1.0
    assert feature_psi([np.nan, np.nan], [np.nan]) == 0.0


finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=1, max_size=60), st.lists(finite, min_size=1, max_size=60))
def test_psi_is_never_negative(training, recent):
    assert feature_psi(training, recent) >= 0.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(finite, st.just(math.nan)), min_size=1, max_size=60))
def test_psi_of_identical_distributions_is_zero(values):
    assert feature_psi(values, values) == 0.0
    # the same distribution in another order and twice as many rows
    assert feature_psi(values, list(reversed(values)) * 2) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=80),
    st.lists(st.booleans(), min_size=80, max_size=80),
)
def test_calibration_counts_every_outcome_once(confidence, won):
    won = won[: len(confidence)]
    buckets = live_calibration(confidence, won, [])
    assert sum(b.n for b in buckets) == len(confidence)
    assert sum(b.wins for b in buckets) == sum(won)
    ece = expected_calibration_error(buckets)
    assert ece is not None and 0.0 <= ece <= 1.0


CONFIG = DriftConfig(
    min_outcomes=30,
    min_bucket_outcomes=10,
    min_psi_signals=100,
    max_calibration_gap=0.15,
    calibration_z=2.0,
    max_ece=0.10,
    max_psi=0.25,
)


def _bucket(k, n, wins, held_out, held_out_n):
    return CalibrationBucket(
        k, k / 10, (k + 1) / 10, n, wins, (k + 0.5) / 10, wins / n, held_out, held_out_n
    )


# live 2 of 20 vs held-out 0.6 of 30: pooled 0.4, SE sqrt(0.24 (1/20 + 1/30)) = 0.1414, z 3.54
SHIFTED = _bucket(6, 20, 2, 0.6, 30)
# live 3 of 10 vs held-out 0.5 of 10: pooled 0.4, SE sqrt(0.24 x 0.2) = 0.2191, z 0.91
NOISY = _bucket(4, 10, 3, 0.5, 10)
# live 5 of 9 vs 0.1: too few outcomes to count
THIN = _bucket(1, 9, 5, 0.1, 40)


def test_a_bucket_gap_counts_beyond_sampling_noise():
    assert gap_in_standard_errors(SHIFTED) == pytest.approx(0.5 / math.sqrt(0.24 / 12))
    assert gap_in_standard_errors(NOISY) == pytest.approx(0.2 / math.sqrt(0.048))
    assert gap_in_standard_errors(_bucket(3, 10, 0, 0.0, 5)) == 0.0
    assert gap_in_standard_errors(_bucket(3, 10, 1, None, 0)) is None


def test_ece_counts_when_the_outcomes_are_unlikely_under_the_confidences():
    # NOISY: 3 wins of 10 at mean confidence 0.45: (3 - 4.5)^2 / (10 x 0.45 x 0.55) = 0.909
    assert hosmer_lemeshow_p([NOISY]) == pytest.approx(math.erfc(math.sqrt(0.909090909 / 2)))
    # SHIFTED: 2 of 20 at 0.65: (2 - 13)^2 / (20 x 0.65 x 0.35) = 26.59, chi-square(1)
    assert hosmer_lemeshow_p([SHIFTED]) == pytest.approx(math.erfc(math.sqrt(121 / 4.55 / 2)))
    assert hosmer_lemeshow_p([]) is None
    assert two_sided_alpha(2.0) == pytest.approx(0.0455, abs=1e-4)
    noise = judge_drift(40, 0.16, [NOISY], 150, {}, CONFIG)
    assert noise.drifted is False
    assert noise.reasons[0] == (
        "live ECE 0.160 > 0.1 (Hosmer-Lemeshow p 0.340 >= 0.046: within sampling noise)"
    )


def test_judgement_names_each_threshold_crossed_and_what_it_did_not_judge():
    calm = judge_drift(40, 0.05, [NOISY], 150, {"rsi_14": 0.05, "rally_pct": 0.2}, CONFIG)
    assert calm.drifted is False
    assert calm.reasons == (
        "calibration gap 0.200 > 0.15 in bucket [0.4, 0.5): live 0.300 vs held-out 0.500 "
        "over 10 outcomes, 0.9 SE <= 2: within sampling noise",
    )
    shifted = judge_drift(
        40, 0.21, [THIN, NOISY, SHIFTED], 150, {"rsi_14": 0.30, "rally_pct": 0.6}, CONFIG
    )
    assert shifted.drifted is True
    assert shifted.reasons == (
        "live ECE 0.210 > 0.1 (Hosmer-Lemeshow p 0.000 < 0.046)",
        "calibration gap 0.500 > 0.15 in bucket [0.6, 0.7): live 0.100 vs held-out 0.600 "
        "over 20 outcomes, 3.5 SE",
        "PSI rally_pct 0.600 > 0.25",
        "PSI rsi_14 0.300 > 0.25",
        "calibration gap 0.200 > 0.15 in bucket [0.4, 0.5): live 0.300 vs held-out 0.500 "
        "over 10 outcomes, 0.9 SE <= 2: within sampling noise",
    )
    # too few outcomes and signals: not judged, said so, never drifted
    thin = judge_drift(12, 0.5, [SHIFTED], 40, {"rsi_14": 3.0}, CONFIG)
    assert thin == DriftVerdict(
        False,
        (
            "calibration not judged: 12 final outcomes < 30",
            "feature drift not judged: 40 recent signals < 100",
        ),
    )
    assert judge_drift(30, 0.02, [THIN], 150, {}, CONFIG) == DriftVerdict(
        False, ("calibration gap not judged: no bucket holds 10 outcomes and a held-out rate",)
    )
    # z 0: the gap alone decides
    loose = CONFIG.model_copy(update={"calibration_z": 0.0})
    assert judge_drift(40, 0.05, [NOISY], 150, {}, loose).drifted is True


def test_training_rows_are_rebuilt_from_the_recorded_split():
    sessions = np.array(
        ["2023-01-02", "2023-01-03", "2023-01-20", "2023-01-25", "2023-02-01"],
        dtype="datetime64[D]",
    )
    exits = np.array(
        ["2023-01-05", "2023-01-30", "2023-01-23", "2023-01-26", "2023-02-03"],
        dtype="datetime64[D]",
    )
    ids = np.array(["a", "b", "c", "d", "e"])
    first_test = np.datetime64("2023-02-01")
    # chronological, embargo 5 business days before 2023-02-01 (cutoff 2023-01-25): b's
    # outcome came too late, d's too; e is held out
    mask = training_rows_mask(sessions, exits, ids, ["e"], "chronological", first_test, 5)
    assert ids[mask].tolist() == ["a", "c"]
    # random: everything but the held-out ids
    mask = training_rows_mask(sessions, exits, ids, ["b", "e"], "random", first_test, 5)
    assert ids[mask].tolist() == ["a", "c", "d"]


def test_thresholds_are_settings_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("BREAKOUT_DRIFT__CALIBRATION_Z", "3")
    monkeypatch.setenv("BREAKOUT_DRIFT__RETRAIN_INTERVAL_HOURS", "24")
    drift = load_settings().drift
    assert (drift.calibration_z, drift.retrain_interval_hours, drift.max_psi) == (3.0, 24.0, 0.25)
    monkeypatch.setenv("BREAKOUT_DRIFT__MAX_CALIBRATION_GAP", "15")  # meant 15%
    with pytest.raises(SettingsError, match="BREAKOUT_DRIFT__MAX_CALIBRATION_GAP"):
        load_settings()

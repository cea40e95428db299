"""Training one side's classifier on a small synthetic set: splits, folds, objectives, feature
elimination and byte-for-byte reproducibility. Tiny configs keep the file fast."""

from __future__ import annotations

import json
from dataclasses import replace as dataclasses_replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import brier_score_loss, fbeta_score

from breakout_assets.ml import training
from breakout_assets.ml.calibration import Calibrator, fit_calibrator
from breakout_assets.ml.dataset import model_confidence
from breakout_assets.ml.evaluation import expected_calibration_error
from breakout_assets.ml.experiment import run_experiment
from breakout_assets.ml.features import FEATURES
from breakout_assets.ml.registry import PromotionRules
from breakout_assets.ml.training import (
    FIXED_PARAMS,
    TrainedModel,
    TrainingConfig,
    TrainingSet,
    confidence,
    cv_folds,
    predict,
    scale_pos_weight,
    split_rows,
    train_side,
)
from breakout_assets.resources.model_store import (
    CALIBRATOR_FILE,
    LEGACY_CALIBRATION,
    ModelStore,
    ModelStoreError,
)

INFORMATIVE = ("f03", "f07", "f10")
TINY = dict(trials=4, folds=3, min_features=4, eliminate_per_round=0.34, max_rounds=4, n_jobs=1)


def synthetic_set(n: int = 400, n_features: int = 12, seed: int = 3) -> TrainingSet:
    """Signals over three years of weekdays, trades held 1-20 sessions; three features decide
    the label through a logistic link (~40% wins), the rest are noise, one with NaNs."""
    rng = np.random.default_rng(seed)
    days = np.arange(np.datetime64("2019-01-01"), np.datetime64("2022-01-01"))
    days = days[np.is_busday(days)]
    signal = np.sort(rng.choice(days, n))
    exit_ = np.busday_offset(signal, rng.integers(1, 21, n))
    x = rng.standard_normal((n, n_features))
    names = [f"f{i:02d}" for i in range(n_features)]
    frame = pd.DataFrame(x, columns=names)
    frame.loc[rng.random(n) < 0.05, "f05"] = np.nan
    logit = -0.6 + 2.0 * frame["f03"] + 1.5 * frame["f07"] - 1.5 * frame["f10"]
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    r = np.where(label == 1, rng.uniform(1, 3, n), -1.0)
    return TrainingSet(
        features=frame,
        label=label,
        signal_session=signal,
        exit_session=exit_,
        r_multiple=r,
        signal_id=np.array([f"S{i:04d}" for i in range(n)]),
    )


@pytest.fixture(scope="module")
def ts() -> TrainingSet:
    return synthetic_set()


@pytest.fixture(scope="module")
def long_model(ts: TrainingSet) -> TrainedModel:
    return train_side(ts, "long", TrainingConfig(**TINY))


@pytest.fixture(scope="module")
def short_model(ts: TrainingSet) -> TrainedModel:
    return train_side(ts, "short", TrainingConfig(**{**TINY, "max_rounds": 1}))


# --- the contract --------------------------------------------------------------------------------


def test_training_set_checks_its_contract(ts: TrainingSet) -> None:
    assert ts.feature_names == [f"f{i:02d}" for i in range(12)]
    assert ts.label.dtype == np.int8 and ts.signal_session.dtype == np.dtype("datetime64[D]")
    with pytest.raises(ValueError, match="sorted"):
        TrainingSet(
            ts.features,
            ts.label,
            ts.signal_session[::-1],
            ts.exit_session[::-1],
            ts.r_multiple,
            ts.signal_id,
        )
    with pytest.raises(ValueError, match="exit_session"):
        TrainingSet(
            ts.features,
            ts.label,
            ts.signal_session,
            ts.signal_session - 1,
            ts.r_multiple,
            ts.signal_id,
        )
    part = ts.subset(np.array([5, 1, 3]))
    assert list(part.signal_id) == ["S0001", "S0003", "S0005"]
    assert part.features.index.tolist() == [0, 1, 2]
    assert len(ts.subset(ts.label == 1)) == int(ts.label.sum())


# --- splits --------------------------------------------------------------------------------------


@pytest.mark.parametrize("test_start", [date(2021, 3, 1), None])
def test_chronological_split_keeps_an_embargo(ts: TrainingSet, test_start: date | None) -> None:
    config = TrainingConfig(test_start=test_start, embargo_sessions=10)
    train, test = split_rows(ts, config)
    start = np.datetime64(test_start) if test_start else ts.signal_session[test].min()
    first_test = ts.signal_session[test].min()
    assert (ts.signal_session[test] >= start).all()
    assert np.array_equal(test, np.flatnonzero(ts.signal_session >= start))
    assert (ts.signal_session[train] < start).all()
    assert (ts.exit_session[train] < np.busday_offset(first_test, -10)).all()
    gap = np.setdiff1d(np.arange(len(ts)), np.concatenate([train, test]))
    assert len(gap) > 0 and (ts.exit_session[gap] >= np.busday_offset(first_test, -10)).all()
    if test_start is None:
        assert len(test) == pytest.approx(0.2 * len(ts), abs=3)


def test_random_split_is_seeded_and_stratified(ts: TrainingSet) -> None:
    config = TrainingConfig(split="random", test_fraction=0.25, seed=7)
    train, test = split_rows(ts, config)
    again = split_rows(ts, config)
    other = split_rows(ts, TrainingConfig(split="random", test_fraction=0.25, seed=8))
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert not np.array_equal(test, other[1])
    assert len(test) == 100 and sorted(np.concatenate([train, test])) == list(range(len(ts)))
    assert abs(ts.label[test].mean() - ts.label.mean()) <= 1 / len(test)


def test_single_class_is_a_clear_error(ts: TrainingSet) -> None:
    losers = TrainingSet(
        ts.features,
        np.zeros(len(ts), np.int8),
        ts.signal_session,
        ts.exit_session,
        ts.r_multiple,
        ts.signal_id,
    )
    for split in ("chronological", "random"):
        with pytest.raises(ValueError, match="single class: all .* rows are losses"):
            split_rows(losers, TrainingConfig(split=split))
    with pytest.raises(ValueError, match="single class"):
        train_side(losers, "long", TrainingConfig(**TINY))
    late_wins = ts.label.copy()
    late_wins[ts.signal_session < np.datetime64("2021-03-01")] = 0
    odd = TrainingSet(
        ts.features, late_wins, ts.signal_session, ts.exit_session, ts.r_multiple, ts.signal_id
    )
    with pytest.raises(ValueError, match="the training split has a single class"):
        split_rows(odd, TrainingConfig(test_start=date(2021, 3, 1)))


# --- folds ---------------------------------------------------------------------------------------


def test_stratified_folds_partition_the_training_rows(ts: TrainingSet) -> None:
    folds = cv_folds(ts, TrainingConfig(folds=4))
    valid = np.concatenate([v for _, v in folds])
    assert sorted(valid) == list(range(len(ts)))
    for train, v in folds:
        assert not set(train) & set(v) and len(train) + len(v) == len(ts)
        assert abs(ts.label[v].mean() - ts.label.mean()) < 0.02
    assert all(
        np.array_equal(a[1], b[1])
        for a, b in zip(folds, cv_folds(ts, TrainingConfig(folds=4)), strict=True)
    )


@pytest.mark.parametrize("embargo", [0, 10])
def test_purged_folds_are_purged_and_embargoed(ts: TrainingSet, embargo: int) -> None:
    folds = cv_folds(ts, TrainingConfig(folds=4, cv="purged", embargo_sessions=embargo))
    valid = np.concatenate([v for _, v in folds])
    assert np.array_equal(valid, np.arange(len(ts)))  # contiguous blocks in time order
    for train, v in folds:
        start, end = ts.signal_session[v].min(), ts.exit_session[v].max()
        assert not np.isin(ts.signal_session[train], ts.signal_session[v]).any()
        overlap = (ts.signal_session[train] <= end) & (ts.exit_session[train] >= start)
        assert not overlap.any()
        after = ts.signal_session[train][ts.signal_session[train] > end]
        assert (after > np.busday_offset(end, embargo)).all()
        assert len(train) > 0.3 * len(ts)
    if embargo:
        zero = cv_folds(ts, TrainingConfig(folds=4, cv="purged", embargo_sessions=0))
        assert sum(map(len, (t for t, _ in folds))) < sum(map(len, (t for t, _ in zero)))


# --- fitting -------------------------------------------------------------------------------------


def test_scale_pos_weight_is_losses_over_wins(
    ts: TrainingSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert scale_pos_weight(np.array([1, 0, 0, 0, 1, 0])) == 2.0
    seen: list[tuple[float, float]] = []
    fit = training._fit

    def spy(train: xgb.DMatrix, params: dict) -> xgb.Booster:
        y = train.get_label()
        seen.append((params["scale_pos_weight"], (y == 0).sum() / (y == 1).sum()))
        return fit(train, params)

    monkeypatch.setattr(training, "_fit", spy)
    config = TrainingConfig(**{**TINY, "trials": 2, "max_rounds": 1})
    model = train_side(ts, "short", config)
    assert len(seen) == 2 * 3 + 1 + 3  # two trials x three folds, one refit, three OOF fits
    assert all(spw == pytest.approx(expected, rel=1e-12) for spw, expected in seen)
    y = ts.label[model.train_idx]
    assert model.params["scale_pos_weight"] == (y == 0).sum() / (y == 1).sum()


def _out_of_fold(ts: TrainingSet, model: TrainedModel) -> np.ndarray:
    """An independent recomputation of the CV predictions of the model's params."""
    train = ts.subset(model.train_idx)
    oof = np.full(len(train), np.nan)
    native = {k: v for k, v in model.params.items() if k != "n_estimators"}
    for tr, va in cv_folds(train, model.config):
        y = train.label[tr]
        d = xgb.DMatrix(train.features.iloc[tr][model.features], label=y, nthread=1)
        spw = (y == 0).sum() / y.sum()
        booster = xgb.train(
            {**native, "scale_pos_weight": spw, "nthread": 1}, d, model.params["n_estimators"]
        )
        oof[va] = booster.predict(xgb.DMatrix(train.features.iloc[va][model.features], nthread=1))
    return oof


def test_objectives_long_f_half_short_brier(
    ts: TrainingSet, long_model: TrainedModel, short_model: TrainedModel
) -> None:
    assert (long_model.objective, long_model.objective_direction) == ("f0.5@0.50", "maximize")
    assert (short_model.objective, short_model.objective_direction) == ("brier", "minimize")
    for model in (long_model, short_model):
        y = ts.label[model.train_idx]
        oof = _out_of_fold(ts, model)
        expected = (
            fbeta_score(y, oof >= 0.5, beta=0.5)
            if model.side == "long"
            else brier_score_loss(y, oof)
        )
        best = model.rounds[model.best_round]["cv_score"]
        assert model.cv_score == best == pytest.approx(expected, rel=1e-6)
    assert long_model.cv_score == max(r["cv_score"] for r in long_model.rounds)


def test_elimination_keeps_the_best_round(long_model: TrainedModel) -> None:
    rounds = long_model.rounds
    assert [r["n_features"] for r in rounds] == [12, 8, 6, 4]
    assert all(
        len(r["dropped"]) == a["n_features"] - b["n_features"]
        for r, a, b in zip(rounds, rounds, rounds[1:], strict=False)
    )
    assert rounds[-1]["dropped"] == [] and rounds[-1]["n_features"] >= 4
    best = long_model.rounds[long_model.best_round]
    assert all(
        best["cv_score"] > r["cv_score"]
        or (best["cv_score"] == r["cv_score"] and best["n_features"] <= r["n_features"])
        for r in rounds
    )
    dropped = {f for r in rounds[: long_model.best_round] for f in r["dropped"]}
    assert long_model.features == [f"f{i:02d}" for i in range(12) if f"f{i:02d}" not in dropped]
    assert not set(INFORMATIVE) & {f for r in rounds for f in r["dropped"]}


def test_refit_model_and_held_out_predictions(ts: TrainingSet, long_model: TrainedModel) -> None:
    m = long_model
    assert set(m.train_idx).isdisjoint(m.test_idx) and len(m.test_probability) == len(m.test_idx)
    assert m.booster.feature_names == m.features
    assert m.booster.num_boosted_rounds() == m.params["n_estimators"]
    assert {k: m.params[k] for k in FIXED_PARAMS} == FIXED_PARAMS
    assert m.train_range[1] < m.test_range[0] and isinstance(m.test_range[0], date)
    # the held-out rows separate wins from losses on this easy data
    y = ts.label[m.test_idx]
    assert m.test_probability[y == 1].mean() > m.test_probability[y == 0].mean() + 0.2
    frame = ts.features.iloc[m.test_idx][m.features[::-1]]  # column order does not matter
    assert np.array_equal(predict(m.booster, frame, m.features), m.test_raw_probability)
    assert np.array_equal(
        confidence(m.booster, m.calibrator, frame, m.features), m.test_probability
    )
    with pytest.raises(ValueError, match=f"lacks the model's features: {m.features[0]}"):
        predict(m.booster, frame.drop(columns=[m.features[0]]), m.features)


def test_same_data_and_config_give_identical_bytes(
    ts: TrainingSet, long_model: TrainedModel
) -> None:
    again = train_side(ts, "long", TrainingConfig(**{**TINY, "n_jobs": 2}))
    assert bytes(again.booster.save_raw("ubj")) == bytes(long_model.booster.save_raw("ubj"))
    assert again.params == long_model.params and again.cv_score == long_model.cv_score
    assert again.rounds == long_model.rounds and again.features == long_model.features
    assert np.array_equal(again.test_probability, long_model.test_probability)
    assert np.array_equal(again.test_raw_probability, long_model.test_raw_probability)
    assert again.calibrator.to_bytes() == long_model.calibrator.to_bytes()
    json.dumps(again.params)  # recordable as an experiment as it is


def test_config_validates_elimination_step() -> None:
    with pytest.raises(ValueError, match="whole number"):
        TrainingConfig(eliminate_per_round=2.5)
    assert TrainingConfig(eliminate_per_round=3).eliminate_per_round == 3
    assert training._n_drop(50, TrainingConfig()) == 10
    assert training._n_drop(9, TrainingConfig()) == 1
    assert training._n_drop(40, TrainingConfig(eliminate_per_round=5, min_features=37)) == 3


# --- calibration ---------------------------------------------------------------------------------


def test_calibrator_is_fit_on_out_of_fold_training_predictions(
    ts: TrainingSet, long_model: TrainedModel, short_model: TrainedModel
) -> None:
    for m in (long_model, short_model):
        train = ts.subset(m.train_idx)
        assert len(m.oof_raw_probability) == len(m.train_idx)
        # the best round's params refit per fold, each with its own scale_pos_weight
        np.testing.assert_allclose(m.oof_raw_probability, _out_of_fold(ts, m), rtol=1e-6)
        expected = fit_calibrator(train.label, m.oof_raw_probability, cv_folds(train, m.config))
        assert m.calibrator == expected and m.calibrator.method in ("sigmoid", "isotonic")
        assert m.calibrator.selection["rows"] == len(m.train_idx)
        frame = ts.features.iloc[m.test_idx]
        assert np.array_equal(m.test_raw_probability, predict(m.booster, frame, m.features))
        assert np.array_equal(m.test_probability, m.calibrator.apply(m.test_raw_probability))
        assert np.array_equal(
            m.test_probability, confidence(m.booster, m.calibrator, frame, m.features)
        )


def test_held_out_labels_never_shape_the_calibrator(
    ts: TrainingSet, short_model: TrainedModel
) -> None:
    flipped = ts.label.copy()
    flipped[short_model.test_idx] = 1 - flipped[short_model.test_idx]
    other = TrainingSet(
        ts.features, flipped, ts.signal_session, ts.exit_session, ts.r_multiple, ts.signal_id
    )
    again = train_side(other, "short", short_model.config)
    assert np.array_equal(again.test_idx, short_model.test_idx)
    assert again.calibrator.to_bytes() == short_model.calibrator.to_bytes()
    assert np.array_equal(again.oof_raw_probability, short_model.oof_raw_probability)
    assert np.array_equal(again.test_probability, short_model.test_probability)


def test_calibration_undoes_the_class_weighting(ts: TrainingSet, short_model: TrainedModel) -> None:
    """~40% wins trained with scale_pos_weight ~1.5: raw output overstates wins on average;
    calibrated confidence is centred on the observed win rate and no worse by Brier."""
    train = ts.subset(short_model.train_idx)
    y, oof = train.label, short_model.oof_raw_probability
    calibrated = short_model.calibrator.apply(oof)
    assert oof.mean() - y.mean() > 0.03
    assert abs(calibrated.mean() - y.mean()) < 0.02
    assert np.mean((calibrated - y) ** 2) < np.mean((oof - y) ** 2)
    assert expected_calibration_error(y, calibrated) < expected_calibration_error(y, oof)


# --- the saved model: serving parity, integrity, legacy artifacts ------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory):
    """A model trained on the synthetic set under real feature names, saved to a fresh store."""
    base = synthetic_set()
    names = list(FEATURES[: len(base.feature_names)])
    named = TrainingSet(
        base.features.set_axis(names, axis=1),
        base.label,
        base.signal_session,
        base.exit_session,
        base.r_multiple,
        base.signal_id,
    )
    config = TrainingConfig(**{**TINY, "max_rounds": 1, "min_features": 4})
    experiment = run_experiment(
        named, "long", config, PromotionRules(), datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    )
    store = ModelStore(root=str(tmp_path_factory.mktemp("store")))
    return named, experiment, store, store.save(experiment.card, experiment.model)


def test_serving_confidence_is_the_evaluated_confidence(saved) -> None:
    named, experiment, store, artifact = saved
    booster, card = store.load(artifact)
    assert card.calibrator == experiment.trained.calibrator
    rows = named.features.iloc[experiment.trained.test_idx].assign(other_column=1.0)
    served = model_confidence(booster, card, rows)
    assert np.array_equal(served, experiment.trained.test_probability)
    metrics = experiment.evaluation.metrics
    assert metrics["ece"] == expected_calibration_error(
        named.label[experiment.trained.test_idx], served
    )
    assert {"raw_ece", "raw_brier", "raw_log_loss"} <= set(metrics)
    assert experiment.split["calibrator"]["method"] == card.calibrator.method
    meta = json.loads((Path(store.root) / artifact).with_name("metadata.json").read_text())
    assert "calibrator" not in meta and meta["calibrator_sha256"] == card.calibrator_sha256


def test_the_store_refuses_a_tampered_or_missing_calibrator(saved, tmp_path: Path) -> None:
    _, experiment, store, artifact = saved
    folder = tmp_path / "store"
    store = ModelStore(root=str(folder))
    artifact = store.save(experiment.card, experiment.model)
    file = (folder / artifact).with_name(CALIBRATOR_FILE)
    good = file.read_bytes()
    data = json.loads(good)
    data["b"] = data["b"] + 0.5 if data["method"] == "sigmoid" else data["b"]
    data["y"] = [min(1.0, v + 0.1) for v in data["y"]]
    file.write_text(json.dumps(data))
    with pytest.raises(ModelStoreError, match="calibrator.json does not match its recorded sha256"):
        store.load(artifact)
    file.unlink()
    with pytest.raises(ModelStoreError, match="cannot read the calibrator"):
        store.load(artifact)
    file.write_bytes(good)
    assert store.load(artifact)[1].calibrator == experiment.trained.calibrator
    with pytest.raises(ModelStoreError, match="calibrator"):
        store.save(dataclasses_replace(experiment.card, calibrator=None), experiment.model)
    wrong = Calibrator.identity("not the trained one")
    with pytest.raises(ModelStoreError, match="calibrator_sha256"):
        store.save(dataclasses_replace(experiment.card, calibrator=wrong), experiment.model)


def test_a_legacy_model_without_calibrator_serves_raw_output_and_says_so(
    saved, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    named, experiment, _, _ = saved
    folder = tmp_path / "store"
    store = ModelStore(root=str(folder))
    artifact = store.save(experiment.card, experiment.model)
    meta = (folder / artifact).with_name("metadata.json")
    card = json.loads(meta.read_text())
    del card["calibrator_sha256"]  # what a model saved before calibration looks like
    meta.write_text(json.dumps(card))
    (folder / artifact).with_name(CALIBRATOR_FILE).unlink()
    with caplog.at_level("WARNING"):
        booster, loaded = store.load(artifact)
    assert loaded.calibrator.method == "identity"
    assert loaded.calibrator.selection["reason"] == LEGACY_CALIBRATION
    assert LEGACY_CALIBRATION in caplog.text
    rows = named.features.iloc[experiment.trained.test_idx]
    assert np.array_equal(
        model_confidence(booster, loaded, rows), experiment.trained.test_raw_probability
    )

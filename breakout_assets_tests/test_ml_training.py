"""Training one side's classifier on a small synthetic set: splits, folds, objectives, feature
elimination and byte-for-byte reproducibility. Tiny configs keep the file fast."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import brier_score_loss, fbeta_score

from breakout_assets.ml import training
from breakout_assets.ml.training import (
    FIXED_PARAMS,
    TrainedModel,
    TrainingConfig,
    TrainingSet,
    cv_folds,
    predict,
    scale_pos_weight,
    split_rows,
    train_side,
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
    return TrainingSet(features=frame, label=label, signal_session=signal, exit_session=exit_,
                       r_multiple=r, signal_id=np.array([f"S{i:04d}" for i in range(n)]))


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
        TrainingSet(ts.features, ts.label, ts.signal_session[::-1], ts.exit_session[::-1],
                    ts.r_multiple, ts.signal_id)
    with pytest.raises(ValueError, match="exit_session"):
        TrainingSet(ts.features, ts.label, ts.signal_session, ts.signal_session - 1,
                    ts.r_multiple, ts.signal_id)
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
    losers = TrainingSet(ts.features, np.zeros(len(ts), np.int8), ts.signal_session,
                         ts.exit_session, ts.r_multiple, ts.signal_id)
    for split in ("chronological", "random"):
        with pytest.raises(ValueError, match="single class: all .* rows are losses"):
            split_rows(losers, TrainingConfig(split=split))
    with pytest.raises(ValueError, match="single class"):
        train_side(losers, "long", TrainingConfig(**TINY))
    late_wins = ts.label.copy()
    late_wins[ts.signal_session < np.datetime64("2021-03-01")] = 0
    odd = TrainingSet(ts.features, late_wins, ts.signal_session, ts.exit_session,
                      ts.r_multiple, ts.signal_id)
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
    assert all(np.array_equal(a[1], b[1])
               for a, b in zip(folds, cv_folds(ts, TrainingConfig(folds=4))))


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

def test_scale_pos_weight_is_losses_over_wins(ts: TrainingSet,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
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
    assert len(seen) == 2 * 3 + 1  # two trials x three folds, one refit
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
        booster = xgb.train({**native, "scale_pos_weight": spw, "nthread": 1}, d,
                            model.params["n_estimators"])
        oof[va] = booster.predict(xgb.DMatrix(train.features.iloc[va][model.features], nthread=1))
    return oof


def test_objectives_long_f_half_short_brier(ts: TrainingSet, long_model: TrainedModel,
                                            short_model: TrainedModel) -> None:
    assert (long_model.objective, long_model.objective_direction) == ("f0.5@0.50", "maximize")
    assert (short_model.objective, short_model.objective_direction) == ("brier", "minimize")
    for model in (long_model, short_model):
        y = ts.label[model.train_idx]
        oof = _out_of_fold(ts, model)
        expected = (fbeta_score(y, oof >= 0.5, beta=0.5) if model.side == "long"
                    else brier_score_loss(y, oof))
        best = model.rounds[model.best_round]["cv_score"]
        assert model.cv_score == best == pytest.approx(expected, rel=1e-6)
    assert long_model.cv_score == max(r["cv_score"] for r in long_model.rounds)


def test_elimination_keeps_the_best_round(long_model: TrainedModel) -> None:
    rounds = long_model.rounds
    assert [r["n_features"] for r in rounds] == [12, 8, 6, 4]
    assert all(len(r["dropped"]) == a["n_features"] - b["n_features"]
               for r, a, b in zip(rounds, rounds, rounds[1:]))
    assert rounds[-1]["dropped"] == [] and rounds[-1]["n_features"] >= 4
    best = long_model.rounds[long_model.best_round]
    assert all(best["cv_score"] > r["cv_score"] or (
        best["cv_score"] == r["cv_score"] and best["n_features"] <= r["n_features"])
        for r in rounds)
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
    assert np.array_equal(predict(m.booster, frame, m.features), m.test_probability)
    with pytest.raises(ValueError, match=f"lacks the model's features: {m.features[0]}"):
        predict(m.booster, frame.drop(columns=[m.features[0]]), m.features)


def test_same_data_and_config_give_identical_bytes(ts: TrainingSet,
                                                   long_model: TrainedModel) -> None:
    again = train_side(ts, "long", TrainingConfig(**{**TINY, "n_jobs": 2}))
    assert bytes(again.booster.save_raw("ubj")) == bytes(long_model.booster.save_raw("ubj"))
    assert again.params == long_model.params and again.cv_score == long_model.cv_score
    assert again.rounds == long_model.rounds and again.features == long_model.features
    assert np.array_equal(again.test_probability, long_model.test_probability)
    json.dumps(again.params)  # recordable as an experiment as it is


def test_config_validates_elimination_step() -> None:
    with pytest.raises(ValueError, match="whole number"):
        TrainingConfig(eliminate_per_round=2.5)
    assert TrainingConfig(eliminate_per_round=3).eliminate_per_round == 3
    assert training._n_drop(50, TrainingConfig()) == 10
    assert training._n_drop(9, TrainingConfig()) == 1
    assert training._n_drop(40, TrainingConfig(eliminate_per_round=5, min_features=37)) == 3

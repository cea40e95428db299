"""Training fanned out to worker processes on one Optuna study in the project's Postgres
(BREAKOUT_TRAINING__WORKERS): two real local processes share the study, every trial is
evaluated once, and the result is reproducible for a fixed seed and worker count."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from breakout_assets.ml.training import TrainingConfig, train_side
from breakout_assets.resources.optuna_storage import optuna_storage, study_storage
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets_tests.test_ml_training import TINY, synthetic_set

SHARED = TrainingConfig(**{**TINY, "trials": 6, "max_rounds": 2, "workers": 2})


def _studies(url: str) -> list[optuna.study.StudySummary]:
    return optuna.get_all_study_summaries(optuna_storage(url), include_best_trial=False)


def test_two_workers_share_one_study_reproducibly(database_url: str) -> None:
    postgres = PostgresResource(database_url=database_url, local_data_dir="unused")
    ts = synthetic_set()
    first = train_side(ts, "long", SHARED, study_storage(postgres))

    [summary] = _studies(database_url)
    trials = optuna.load_study(
        study_name=summary.study_name, storage=optuna_storage(database_url)
    ).get_trials()
    assert len(trials) == SHARED.trials * len(first.rounds)  # every round's trials, once each
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert [t.number for t in trials] == list(range(len(trials)))  # no duplicate numbers
    # Each trial claimed once: a second claimant's tell would fail the trial (it is finished),
    # and a worker never creates a trial of its own (the count above is exact).
    # both worker processes took trials, and their trials interleave
    workers = [t.user_attrs["worker"] for t in trials]
    assert set(workers) == {0, 1}
    assert any(a != b for a, b in zip(workers, workers[1:], strict=False))
    assert {t.user_attrs["round"] for t in trials} == set(range(len(first.rounds)))

    again = train_side(ts, "long", SHARED, study_storage(postgres))
    assert again.params == first.params and again.cv_score == first.cv_score
    assert again.features == first.features and again.rounds == first.rounds
    assert bytes(again.booster.save_raw("ubj")) == bytes(first.booster.save_raw("ubj"))
    assert (again.test_probability == first.test_probability).all()
    assert len(_studies(database_url)) == 2  # each training its own study


def test_the_study_tables_stay_in_their_own_schema(database_url: str) -> None:
    from sqlalchemy import create_engine, text

    from breakout_assets.resources.local_postgres import with_driver

    optuna.create_study(study_name="probe", storage=optuna_storage(database_url))
    engine = create_engine(with_driver(database_url, "psycopg"))
    with engine.connect() as conn:
        schemas = dict(
            conn.execute(
                text(
                    "SELECT table_name, table_schema FROM information_schema.tables "
                    "WHERE table_name IN ('studies', 'trials')"
                )
            ).all()
        )
    engine.dispose()
    assert schemas == {"studies": "optuna", "trials": "optuna"}


def test_workers_need_a_storage() -> None:
    with pytest.raises(ValueError, match="shared Optuna study"):
        train_side(synthetic_set(), "long", SHARED)


def test_workers_is_a_training_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from breakout_assets.settings import load_settings

    monkeypatch.setenv("BREAKOUT_TRAINING__WORKERS", "3")
    assert load_settings().training.workers == 3
    monkeypatch.setenv("BREAKOUT_TRAINING__WORKERS", "0")
    with pytest.raises(ValueError, match="BREAKOUT_TRAINING__WORKERS"):
        load_settings()

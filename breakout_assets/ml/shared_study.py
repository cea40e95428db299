"""Tuning fanned out to N worker processes on one Optuna study (BREAKOUT_TRAINING__WORKERS).

Why this shape: TPE run by several workers on one study is not reproducible, since what each
worker samples depends on which trials the others happen to have finished. Here the trainer
asks its own seeded TPE study for a batch of `workers` parameter sets (as one worker that gets
its results back a batch at a time would) and enqueues them in the shared study; the workers
claim waiting trials (the WAITING -> RUNNING transition is atomic in Optuna's storage, so a
trial is claimed once), fit its CV folds and tell the value; the trainer waits for the batch,
tells its own study and asks the next. The same seed and worker count give the same trials,
values and best params whatever the timing. A worker needs the storage, the study's name and
the training rows with their folds (handed to it when it starts: the workers are local
processes, so on Kubernetes they share the training run's pod); the refit, calibration and
evaluation happen once, in the trainer.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.trial import TrialState

from breakout_assets.ml.config import TrainingConfig
from breakout_assets.ml.splits import Fold, TrainingSet
from breakout_assets.ml.training import (
    OBJECTIVES,
    Side,
    Tuner,
    cv_score,
    fold_matrices,
    quiet_optuna,
    search_space,
)

StorageFactory = Callable[[], optuna.storages.BaseStorage]
POLL_S = 0.05
CLOSED = "closed"  # study user attr: the trainer is done, workers leave
_DONE = (TrialState.COMPLETE, TrialState.FAIL)


class SharedStudyError(RuntimeError):
    """A worker could not evaluate a trial, or died."""


@contextmanager
def shared_tuner(
    ts: TrainingSet,
    folds: list[Fold],
    side: Side,
    config: TrainingConfig,
    make_storage: StorageFactory,
    study_name: str | None = None,
) -> Iterator[Tuner]:
    """A Tuner whose trials are evaluated by `config.workers` local processes on one study."""
    name = study_name or f"breakout-{side}-{uuid.uuid4().hex[:12]}"
    storage = make_storage()
    shared = optuna.create_study(
        study_name=name, storage=storage, direction=OBJECTIVES[side].direction
    )
    context = multiprocessing.get_context("spawn")  # no forked XGBoost/OpenMP or DB state
    workers = [
        context.Process(
            target=work,
            args=(make_storage, name, ts, folds, side, config, index, os.getpid()),
            name=f"{name}-worker-{index}",
            daemon=True,
        )
        for index in range(config.workers)
    ]
    for process in workers:
        process.start()
    try:
        yield _BatchTuner(shared, side, config, workers)
    finally:
        shared.set_user_attr(CLOSED, True)
        for process in workers:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()


class _BatchTuner:
    """The trainer's half: TPE asks in batches of `workers`, the shared study evaluates."""

    def __init__(self, shared: optuna.Study, side: Side, config: TrainingConfig, workers: list):
        self.shared, self.side, self.config, self.workers = shared, side, config, workers
        self.round = 0

    def __call__(
        self, features: list[str], warm: dict[str, Any] | None
    ) -> tuple[dict[str, Any], float]:
        objective = OBJECTIVES[self.side]
        own = optuna.create_study(
            direction=objective.direction,
            sampler=optuna.samplers.TPESampler(seed=self.config.seed),
        )
        if warm is not None:
            own.enqueue_trial(warm)
        remaining = self.config.trials
        while remaining:
            asked = [own.ask() for _ in range(min(self.config.workers, remaining))]
            values = self._evaluate([search_space(trial) for trial in asked], features)
            for trial, value in zip(asked, values, strict=True):
                own.tell(trial, value)
            remaining -= len(asked)
        self.round += 1
        return dict(own.best_trial.params), float(own.best_value)

    def _evaluate(self, batch: list[dict[str, Any]], features: list[str]) -> list[float]:
        first = len(self.shared.get_trials(deepcopy=False))  # only the trainer adds trials
        for params in batch:
            self.shared.enqueue_trial(
                params,
                user_attrs={"round": self.round, "features": features},
                skip_if_exists=False,
            )
        numbers = range(first, first + len(batch))
        while True:
            trials = {t.number: t for t in self.shared.get_trials(deepcopy=False)}
            done = [trials[n] for n in numbers if trials[n].state in _DONE]
            if len(done) == len(batch):
                break
            dead = [p.name for p in self.workers if not p.is_alive()]
            if dead:
                raise SharedStudyError(f"tuning worker(s) died: {', '.join(dead)}")
            time.sleep(POLL_S)
        failed = [t for t in done if t.state == TrialState.FAIL]
        if failed:
            raise SharedStudyError(
                f"trial {failed[0].number} failed in a worker: {failed[0].user_attrs.get('error')}"
            )
        return [float(trials[n].value) for n in numbers]  # type: ignore[arg-type]


def work(
    make_storage: StorageFactory,
    study_name: str,
    ts: TrainingSet,
    folds: list[Fold],
    side: Side,
    config: TrainingConfig,
    index: int,
    parent_pid: int,
) -> None:
    """A worker: claim a waiting trial, score its params on the CV folds, tell; until the
    trainer closes the study (or is gone)."""
    storage = make_storage()
    study = optuna.load_study(study_name=study_name, storage=storage)
    objective = OBJECTIVES[side]
    matrices: dict[tuple[str, ...], Any] = {}
    with quiet_optuna(), ThreadPoolExecutor(config.n_jobs) as pool:
        while os.getppid() == parent_pid and not study.user_attrs.get(CLOSED):
            trial_id = _claim(storage, study)
            if trial_id is None:
                time.sleep(POLL_S)
                continue
            storage.set_trial_user_attr(trial_id, "worker", index)
            trial = optuna.Trial(study, trial_id)
            try:
                features = tuple(trial.user_attrs["features"])
                if features not in matrices:
                    matrices = {features: fold_matrices(ts, list(features), folds)}
                value = cv_score(
                    ts, matrices[features], search_space(trial), objective, config, pool
                )
            except Exception as exc:  # told to the trainer, which raises it
                storage.set_trial_user_attr(trial_id, "error", f"{type(exc).__name__}: {exc}")
                study.tell(trial, state=TrialState.FAIL)
                continue
            study.tell(trial, value)


def _claim(storage: optuna.storages.BaseStorage, study: optuna.Study) -> int | None:
    """A waiting trial now RUNNING for this worker, or None: the storage's state update
    succeeds for exactly one claimant."""
    study_id = storage.get_study_id_from_name(study.study_name)
    for waiting in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, waiting.number)
        if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
            return trial_id
    return None

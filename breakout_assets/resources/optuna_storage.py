"""The Optuna study storage training workers share: Optuna's RDB storage in the project's
Postgres, in the `optuna` schema (migration 0020), so its tables never mix with ours."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import optuna

from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.resources.postgres import PostgresResource

OPTUNA_SCHEMA = "optuna"


def optuna_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage on `url` whose tables are in the optuna schema (created if missing)."""
    return optuna.storages.RDBStorage(
        with_driver(url, "psycopg"),
        engine_kwargs={
            "connect_args": {"options": f"-c search_path={OPTUNA_SCHEMA}"},
            "pool_pre_ping": True,
        },
    )


def study_storage(postgres: PostgresResource) -> Callable[[], optuna.storages.RDBStorage]:
    """A picklable factory: each worker process opens its own connection pool with it."""
    return partial(optuna_storage, postgres.url)

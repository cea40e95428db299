"""The demo's runs are launched against the code location, as the UI launches them: a failed one
is re-executed from failure through the instance, only its failed step again."""

from __future__ import annotations

import pytest
from dagster import AssetKey, DagsterRunStatus
from sqlalchemy import create_engine, text

from breakout_assets import runtime
from breakout_assets.definitions import build_definitions
from breakout_assets.demo import LOCATION, CodeLocationLauncher
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.settings import load_settings
from breakout_assets_tests.conftest import SAMPLE_DIR

RUN_CONFIG = {"execution": {"config": {"in_process": {}}}}
SELECTION = [AssetKey("market_bars"), AssetKey("index_bars"), AssetKey("daily_features")]


def _sql(url: str, statement: str) -> None:
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


@pytest.fixture
def launcher(database_url, dagster_instance, monkeypatch, per_session_events):
    # The code location loads in its own process from these variables, as `make ui` loads it.
    monkeypatch.setenv("BREAKOUT_DATABASE_URL", database_url)
    monkeypatch.setenv("BREAKOUT_FILES_DIR", str(SAMPLE_DIR))
    monkeypatch.setenv(runtime.DAGSTER_URL_VAR, dagster_instance.run_storage.postgres_url)
    with CodeLocationLauncher(dagster_instance) as launched:
        yield launched


def _step_keys(instance, run_id: str) -> set[str]:
    return {
        e.step_key
        for e in instance.all_logs(run_id)
        if e.is_dagster_event and e.dagster_event.event_type_value == "STEP_SUCCESS"
    }


def test_a_failed_demo_run_is_reexecuted_from_failure(launcher, database_url, dagster_instance):
    defs = build_definitions(load_settings())
    _sql(database_url, "ALTER TABLE daily_features RENAME TO daily_features_away")
    failed = launcher.run(
        defs, "daily_pipeline", SELECTION, RUN_CONFIG, {"dagster/partition": "2024-03-01"}
    )
    assert failed.status == DagsterRunStatus.FAILURE
    # attached to the code location: what the UI's "Re-execute" needs (its CheckError otherwise)
    assert failed.remote_job_origin is not None
    assert failed.remote_job_origin.location_name == LOCATION
    assert _step_keys(dagster_instance, failed.run_id) == {"market_bars", "index_bars"}

    _sql(database_url, "ALTER TABLE daily_features_away RENAME TO daily_features")
    retried = launcher.reexecute_from_failure(defs, failed)
    assert retried.status == DagsterRunStatus.SUCCESS
    assert retried.parent_run_id == failed.run_id
    assert retried.tags["dagster/partition"] == "2024-03-01"
    assert _step_keys(dagster_instance, retried.run_id) == {"daily_features"}


def test_a_range_is_a_backfill_of_one_run_under_its_job(launcher, dagster_instance):
    from dagster._core.execution.backfill import BulkActionStatus

    defs = build_definitions(load_settings())
    (run,) = launcher.backfill(
        defs, "daily_pipeline", "2024-03-04", "2024-03-08", SELECTION[:1], RUN_CONFIG
    )
    assert run.status == DagsterRunStatus.SUCCESS and run.job_name == "daily_pipeline"
    assert run.tags["dagster/asset_partition_range_start"] == "2024-03-04"
    assert run.tags["dagster/asset_partition_range_end"] == "2024-03-08"
    backfill = dagster_instance.get_backfill(run.tags["dagster/backfill"])
    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
    assert len(backfill.partition_names) == 5

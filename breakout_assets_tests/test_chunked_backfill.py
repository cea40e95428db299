"""Chunked backfills (BREAKOUT_BACKFILL_CHUNK_SESSIONS): a range splits into runs of contiguous
sessions by Dagster's multi-run backfill policy, Dagster's own asset-backfill iteration orders
the chunks by the assets' history dependencies, and the rows equal those of one run."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import AssetKey, DagsterRunStatus

from breakout_assets import runtime
from breakout_assets.definitions import build_definitions
from breakout_assets.demo import CodeLocationLauncher
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import SAMPLE_DIR, new_database

FIRST, LAST = "2019-01-02", "2019-05-31"  # 103 sessions
CHUNK = 30
HISTORY = ["market_bars", "index_bars", "daily_features", "breakout_signals", "signal_outcomes"]
# Each table in a fixed order, without the columns that say when a row was written.
TABLES = {
    "market_bars": "SELECT * FROM market_bars ORDER BY ticker, session",
    "index_bars": "SELECT * FROM index_bars ORDER BY ticker, session",
    "daily_features": "SELECT * FROM daily_features ORDER BY ticker, session",
    "breakout_signals": "SELECT * FROM breakout_signals ORDER BY signal_id",
    "signal_outcomes": "SELECT * FROM signal_outcomes ORDER BY signal_id",
}


@pytest.fixture
def chunked_launcher(pg_server, dagster_instance, monkeypatch):
    url = new_database(pg_server)
    monkeypatch.setenv("BREAKOUT_DATABASE_URL", url)
    monkeypatch.setenv("BREAKOUT_FILES_DIR", str(SAMPLE_DIR))
    monkeypatch.setenv("BREAKOUT_START_DATE", FIRST)
    monkeypatch.setenv("BREAKOUT_BACKFILL_CHUNK_SESSIONS", str(CHUNK))
    monkeypatch.setenv(runtime.DAGSTER_URL_VAR, dagster_instance.run_storage.postgres_url)
    with CodeLocationLauncher(dagster_instance) as launched:
        yield launched, url


def _rows(url: str) -> dict[str, pd.DataFrame]:
    frames = {}
    for table, sql in TABLES.items():
        frame = helpers.read_table(url, sql)
        frames[table] = frame.drop(
            columns=[c for c in frame.columns if c in ("created_at", "updated_at", "computed_at")]
        )
    return frames


def test_a_chunked_backfill_gives_the_rows_of_one_run(chunked_launcher, pg_server) -> None:
    launcher, chunked_url = chunked_launcher
    settings = load_settings()  # the code location's own: chunks of CHUNK sessions
    assert settings.backfill_chunk_sessions == CHUNK
    defs = build_definitions(settings)
    selection = [AssetKey(name) for name in (*HISTORY, "ticker_reference")]
    runs = launcher.asset_backfill(defs, selection, FIRST, LAST)
    assert all(run.status == DagsterRunStatus.SUCCESS for run in runs)

    # Split: no run covers more than CHUNK sessions, each history asset took several runs,
    # and an asset continuing its own earlier sessions ran its chunks in session order.
    starts: dict[str, list[str]] = {}
    for run in runs:
        start = run.tags.get(helpers.RANGE_START) or run.tags.get("dagster/partition")
        end = run.tags.get(helpers.RANGE_END) or start
        if start is None:
            continue  # ticker_reference: not partitioned
        sessions = pd.bdate_range(start, end)
        assert len(sessions) <= CHUNK + 10, (start, end)  # business days include holidays
        for key in run.asset_selection or []:
            starts.setdefault(key.to_user_string(), []).append(start)
    for name in HISTORY:
        assert len(starts[name]) >= 4, (name, starts[name])
    for name in ("daily_features", "signal_outcomes"):
        assert starts[name] == sorted(starts[name]), name

    # Dagster, not the order of execution here, sequenced them: a chunk that reads earlier
    # sessions (its own, or bars through its lookback) was submitted only after the runs
    # writing them had finished.
    records = {run.run_id: launcher.instance.get_run_record_by_id(run.run_id) for run in runs}

    def created(run) -> float:
        return records[run.run_id].create_timestamp.timestamp()

    def ended(run) -> float:
        return records[run.run_id].end_time

    by_asset: dict[str, list] = {}
    for run in runs:
        for key in run.asset_selection or []:
            by_asset.setdefault(key.to_user_string(), []).append(run)
    for name in ("daily_features", "signal_outcomes"):
        chunks = by_asset[name]
        for before, after in zip(chunks, chunks[1:], strict=False):
            assert (
                records[after.run_id].create_timestamp.timestamp()
                >= records[before.run_id].end_time
            )
    last_bars = max(records[r.run_id].end_time for r in by_asset["market_bars"])
    first_signals = min(
        records[r.run_id].create_timestamp.timestamp() for r in by_asset["breakout_signals"]
    )
    # the first signals chunk reads every bar chunk up to it: here the bars' whole range fits
    # in one lookback (386 sessions), so signals start only after all bars are written
    assert first_signals >= last_bars

    single_url = new_database(pg_server)
    single = load_settings(
        database_url=single_url,
        files_dir=SAMPLE_DIR,
        start_date=FIRST,
        backfill_chunk_sessions=None,
    )
    assert single.backfill_chunk_sessions is None
    helpers.run_assets(single, ["ticker_reference"], FIRST)
    helpers.run_assets(single, HISTORY, FIRST, LAST)

    chunked, one_run = _rows(chunked_url), _rows(single_url)
    for table in TABLES:
        assert len(one_run[table]) > 0, table
        pd.testing.assert_frame_equal(
            chunked[table].reset_index(drop=True),
            one_run[table].reset_index(drop=True),
            check_exact=table != "daily_features",
            rtol=1e-12,
            obj=table,
        )


def test_backfill_command_submits_or_runs_here(
    chunked_launcher, dagster_instance, tmp_path
) -> None:
    from click.testing import CliRunner
    from dagster._core.execution.backfill import BulkActionStatus

    from breakout_assets.cli import main

    runner = CliRunner(
        env={  # the project's instance as the CLI derives it from the settings: the test's
            "BREAKOUT_DAGSTER_DATABASE_URL": dagster_instance.run_storage.postgres_url,
            "BREAKOUT_DAGSTER_HOME": str(tmp_path / "home"),
            # set by the command for Dagster; listed so the runner restores them afterwards
            "DAGSTER_HOME": None,
            runtime.DAGSTER_URL_VAR: None,
        }
    )
    submitted = runner.invoke(main, ["backfill", FIRST, "2019-03-29", "--asset", "market_bars"])
    assert submitted.exit_code == 0, submitted.output
    assert "runs of <= 30 sessions" in submitted.output
    backfill_id = submitted.output.split("submitted backfill ")[1].split(":")[0]
    # no daemon here: recorded and waiting for one
    assert dagster_instance.get_backfill(backfill_id).status == BulkActionStatus.REQUESTED

    here = runner.invoke(
        main, ["backfill", FIRST, "2019-03-29", "--asset", "market_bars", "--here"]
    )
    assert here.exit_code == 0, here.output
    lines = [line for line in here.output.splitlines() if line.startswith("  SUCCESS")]
    assert len(lines) == 3  # 61 sessions in runs of <= 30
    assert "done: 3 runs" in here.output

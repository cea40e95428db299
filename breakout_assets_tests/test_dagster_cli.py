"""The Dagster CLI against the project's instance: Postgres storage, the repo's dagster.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from breakout_assets import runtime
from breakout_assets.settings import PROJECT_ROOT, load_settings
from breakout_assets_tests.conftest import SAMPLE_DIR, new_database
from breakout_assets_tests.helpers import read_table

DAGSTER = str(Path(sys.executable).with_name("dagster"))


@pytest.fixture
def cli_env(pg_server, tmp_path):
    data_url = new_database(pg_server)
    dagster_url = new_database(pg_server, template="template1")
    settings = load_settings(
        database_url=data_url,
        dagster_database_url=dagster_url,
        files_dir=SAMPLE_DIR,
        dagster_home=tmp_path / "home",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKOUT_")}
    env.update(runtime.dagster_environment(settings))
    env.update(BREAKOUT_DATABASE_URL=data_url, BREAKOUT_FILES_DIR=str(SAMPLE_DIR))
    return env, data_url, dagster_url


def _dagster(env, *args):
    done = subprocess.run(
        [DAGSTER, *args, "-m", "breakout_assets.definitions"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_definitions_validate(cli_env):
    env, _, _ = cli_env
    done = _dagster(env, "definitions", "validate")
    assert "Validation successful" in done.stdout + done.stderr


def test_materialize_one_partition_and_a_range_as_one_run(cli_env):
    env, data_url, dagster_url = cli_env
    _dagster(env, "asset", "materialize", "--select", "market_bars", "--partition", "2024-03-01")
    one = read_table(data_url, "SELECT count(*) AS n FROM market_bars WHERE session = '2024-03-01'")
    assert one["n"][0] == 150

    _dagster(
        env,
        "asset",
        "materialize",
        "--select",
        "market_bars,index_bars",
        "--partition-range",
        "2024-01-02...2024-03-08",
    )
    counts = read_table(
        data_url, "SELECT count(DISTINCT session) AS sessions, count(*) AS n FROM market_bars"
    )
    assert counts["sessions"][0] == 47 and counts["n"][0] == 47 * 150
    runs = read_table(dagster_url, "SELECT status FROM runs ORDER BY create_timestamp")
    assert list(runs["status"]) == ["SUCCESS", "SUCCESS"]  # the range ran as ONE run
    materialized = read_table(
        dagster_url,
        "SELECT count(DISTINCT partition) AS n FROM event_logs "
        "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key LIKE '%market_bars%'",
    )
    assert materialized["n"][0] == 47


def test_an_unreachable_database_is_one_error_line(monkeypatch):
    from click.testing import CliRunner

    from breakout_assets.cli import main

    monkeypatch.setenv("BREAKOUT_DATABASE_URL", "postgresql://u:p@127.0.0.1:1/nowhere")
    result = CliRunner().invoke(main, ["db", "migrate"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: cannot connect to Postgres")
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)

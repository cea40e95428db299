"""`breakout_signals` materialised on the bundled real sample, against real Postgres."""

from __future__ import annotations

from urllib.parse import urlparse

import pandas as pd
import pytest
from dagster import materialize
from sqlalchemy import create_engine, text

from breakout_assets.assets.signals import build_signal_assets
from breakout_assets.definitions import build_resources
from breakout_assets.partitions import session_partitions
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.resources.postgres import _engine
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import SAMPLE_DIR, new_database
from breakout_assets_tests.helpers import RANGE_END, RANGE_START, read_table, run_assets

SIGNALS = "SELECT * FROM breakout_signals ORDER BY signal_id"


def _signals(settings, first, last=None):
    assets = build_signal_assets(session_partitions(settings.start_date), settings)
    tags = {RANGE_START: first, RANGE_END: last} if last else None
    return materialize(
        assets,
        resources=build_resources(settings),
        partition_key=None if last else first,
        tags=tags,
        instance=helpers.DEFAULT_INSTANCE,
    )


@pytest.fixture(scope="module")
def sample_template(pg_server, dagster_instance):
    """A database holding the sample's bars for 2018-2021, loaded once, cloned per test."""
    url = new_database(pg_server)
    run_assets(
        load_settings(database_url=url, files_dir=SAMPLE_DIR),
        ["market_bars", "index_bars", "ticker_reference"],
        "2018-01-02",
        "2021-12-31",
    )
    _engine(url).dispose()  # a template must have no open connections
    return urlparse(url).path.lstrip("/")


@pytest.fixture
def loaded(pg_server, sample_template):
    return load_settings(
        database_url=new_database(pg_server, template=sample_template), files_dir=SAMPLE_DIR
    )


def test_range_run_signals_pass_geometry_and_rerun_is_identical(loaded):
    result = _signals(loaded, "2019-06-03", "2021-12-31")
    [check] = result.get_asset_check_evaluations()
    assert check.passed, check.metadata
    first = read_table(loaded.database_url, SIGNALS)
    assert len(first) > 0 and set(first["side"]) <= {"long", "short"}
    assert first["signal_id"].is_unique
    assert (
        first["signal_id"]
        == first["ticker"] + ":" + first["session"].astype(str) + ":" + first["side"]
    ).all()
    _signals(loaded, "2019-06-03", "2021-12-31")
    pd.testing.assert_frame_equal(first, read_table(loaded.database_url, SIGNALS))


def test_single_session_equals_the_same_session_inside_a_range(loaded):
    _signals(loaded, "2019-06-03", "2021-12-31")
    everything = read_table(loaded.database_url, SIGNALS)
    busiest = everything["session"].astype(str).value_counts().index[0]
    in_range = everything[everything["session"].astype(str) == busiest].reset_index(drop=True)
    engine = create_engine(with_driver(loaded.database_url, "psycopg"))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM breakout_signals"))
    _signals(loaded, busiest)
    alone = read_table(loaded.database_url, SIGNALS)
    pd.testing.assert_frame_equal(in_range, alone)


def test_no_look_ahead_on_real_data(loaded):
    """Signals for sessions <= D are identical whether the bars after D exist or not."""
    cutoff = "2020-06-30"
    _signals(loaded, "2019-06-03", cutoff)
    with_future = read_table(loaded.database_url, SIGNALS)
    engine = create_engine(with_driver(loaded.database_url, "psycopg"))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM market_bars WHERE session > :d"), {"d": cutoff})
        conn.execute(text("DELETE FROM index_bars WHERE session > :d"), {"d": cutoff})
        conn.execute(text("DELETE FROM breakout_signals"))
    _signals(loaded, "2019-06-03", cutoff)
    pd.testing.assert_frame_equal(with_future, read_table(loaded.database_url, SIGNALS))

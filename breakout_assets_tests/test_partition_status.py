"""A failed session shows as Failed on the asset's partitions, and a range run's per-session
materialisations hold that session's figures (the range totals once, not in every session)."""

from __future__ import annotations

import pytest
from dagster import AssetKey, AssetPartitionStatus
from sqlalchemy import create_engine, text

from breakout_assets.partitions import session_partitions
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets_tests import helpers
from breakout_assets_tests.helpers import read_table, run_assets

KEYS = ["2024-03-04", "2024-03-05", "2024-03-06"]
pytestmark = pytest.mark.usefixtures("per_session_events")  # as the project's instance runs


def _sql(url: str, statement: str) -> None:
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


def test_a_failed_range_shows_each_session_failed(settings, database_url):
    run_assets(settings, ["market_bars", "index_bars"], KEYS[0], KEYS[-1])
    _sql(database_url, "ALTER TABLE daily_features RENAME TO daily_features_away")
    result = run_assets(settings, ["daily_features"], KEYS[0], KEYS[-1], raise_on_error=False)
    assert not result.success

    status = helpers.DEFAULT_INSTANCE.get_status_by_partition(
        AssetKey("daily_features"), KEYS, session_partitions(settings.start_date)
    )
    assert status == {key: AssetPartitionStatus.FAILED for key in KEYS}
    assert helpers.DEFAULT_INSTANCE.get_status_by_partition(
        AssetKey("market_bars"), KEYS, session_partitions(settings.start_date)
    ) == {key: AssetPartitionStatus.MATERIALIZED for key in KEYS}


def test_a_range_run_gives_each_session_its_own_figures(settings, database_url):
    result = run_assets(settings, ["market_bars"], KEYS[0], KEYS[-1])
    instance = helpers.DEFAULT_INSTANCE
    events = instance.fetch_materializations(AssetKey("market_bars"), limit=100).records
    mine = [e.asset_materialization for e in events if e.run_id == result.run_id]
    assert sorted(m.partition for m in mine) == KEYS
    counts = read_table(
        database_url, "SELECT session::text AS s, count(*) AS n FROM market_bars GROUP BY session"
    )
    expected = dict(zip(counts["s"], counts["n"], strict=True))
    for materialization in mine:
        metadata = materialization.metadata
        assert metadata["rows"].value == expected[materialization.partition]
        assert metadata["range"].value == f"{KEYS[0]}..{KEYS[-1]}"
        assert "rows_per_second" not in metadata  # a range total, not this session's figure

    observations = instance.fetch_observations(AssetKey("market_bars"), limit=100).records
    (totals,) = [o.asset_observation for o in observations if o.run_id == result.run_id]
    assert totals.metadata["rows"].value == sum(expected.values())
    assert totals.partition is None

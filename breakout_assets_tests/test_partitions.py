from datetime import date, datetime

import pytest

from breakout_assets.partitions import (
    TIMEZONE,
    nyse_sessions,
    partitions_end,
    session_partitions,
    settings_partitions,
)
from breakout_assets.settings import load_settings
from breakout_assets_tests.conftest import SAMPLE_DIR


def _keys(start=date(2024, 1, 2)):
    return set(session_partitions(start).get_partition_keys())


def test_holidays_and_weekends_are_not_partitions():
    keys = _keys()
    assert "2024-12-25" not in keys  # Christmas
    assert "2024-07-04" not in keys  # Independence Day
    assert "2024-03-29" not in keys  # Good Friday
    assert "2024-03-02" not in keys and "2024-03-03" not in keys  # weekend


def test_early_closes_are_partitions():
    keys = _keys()
    assert "2024-11-29" in keys  # day after Thanksgiving, 13:00 close
    assert "2024-12-24" in keys  # Christmas Eve, 13:00 close


def test_keys_are_exactly_the_exchange_sessions():
    keys = sorted(k for k in _keys(date(2018, 1, 2)) if k <= "2024-12-31")
    sessions = [d.isoformat() for d in nyse_sessions(date(2018, 1, 2), date(2024, 12, 31))]
    assert keys == sessions
    assert len([k for k in keys if k.startswith("2024")]) == 252


def test_start_date_is_a_setting(monkeypatch):
    monkeypatch.setenv("BREAKOUT_START_DATE", "2021-06-01")
    settings = load_settings()
    first = session_partitions(settings.start_date).get_first_partition_key()
    assert first == "2021-06-01"


def _last_key_at(partitions, moment):
    from zoneinfo import ZoneInfo

    from dagster._core.definitions.partitions.context import partition_loading_context

    with partition_loading_context(effective_dt=moment.replace(tzinfo=ZoneInfo(TIMEZONE))):
        return partitions.get_last_partition_key()


def test_without_an_end_the_last_partition_is_the_last_closed_session():
    partitions = session_partitions(date(2024, 1, 2))
    assert _last_key_at(partitions, datetime(2024, 3, 8, 15, 59)) == "2024-03-07"
    assert _last_key_at(partitions, datetime(2024, 3, 8, 16, 1)) == "2024-03-08"  # the 17:30 run
    assert _last_key_at(partitions, datetime(2024, 3, 10, 12, 0)) == "2024-03-08"  # a Sunday


def test_an_end_date_is_the_last_partition():
    keys = session_partitions(date(2024, 1, 2), date(2024, 3, 28)).get_partition_keys()
    assert keys[-1] == "2024-03-28"  # the next day, Good Friday, is a holiday
    assert len(keys) == len(nyse_sessions(date(2024, 1, 2), date(2024, 3, 28)))


def test_the_files_source_ends_at_the_files_last_session():
    settings = load_settings(files_dir=SAMPLE_DIR, data_source="files")
    assert settings_partitions(settings).get_last_partition_key() == "2024-03-08"
    explicit = load_settings(files_dir=SAMPLE_DIR, end_date=date(2024, 2, 1))
    assert settings_partitions(explicit).get_last_partition_key() == "2024-02-01"


def test_a_live_source_ends_today(monkeypatch):
    settings = load_settings(data_source="synthetic")
    assert partitions_end(settings) is None
    moment = datetime(2024, 3, 8, 17, 30)
    assert _last_key_at(settings_partitions(settings), moment) == "2024-03-08"


def test_an_end_before_the_start_is_refused():
    with pytest.raises(ValueError, match="before start_date"):
        load_settings(start_date=date(2024, 3, 1), end_date=date(2024, 2, 1))


def test_partitioned_assets_say_they_are_nyse_sessions():
    from dagster import AssetKey

    from breakout_assets.definitions import build_definitions

    graph = build_definitions(load_settings(files_dir=SAMPLE_DIR)).resolve_asset_graph()
    assert "Partitions: NYSE sessions" in graph.get(AssetKey("market_bars")).description
    assert "Partitions" not in (graph.get(AssetKey("long_model")).description or "")

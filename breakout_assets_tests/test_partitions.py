from datetime import date

from breakout_assets.partitions import nyse_sessions, session_partitions
from breakout_assets.settings import load_settings


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

"""`market_bars` materialised from Polygon: the real `massive` client, a fake server on
127.0.0.1."""

from __future__ import annotations

import pytest

from breakout_assets.settings import load_settings
from breakout_assets_tests.fake_polygon import FakePolygon, grouped_row
from breakout_assets_tests.helpers import read_table, run_assets

KEY = "pk-secret-abc123"


@pytest.fixture
def fake():
    with FakePolygon(api_key=KEY) as server:
        for day in ("2024-03-04", "2024-03-05"):
            server.grouped[day] = [
                grouped_row("AAPL", 170, 172, 169, 171, 5e7, day=day),
                grouped_row("MSFT", 410, 415, 405, 412, 2e7, day=day),
                grouped_row("BAD", 10, 9, 11, 10, 1e5, day=day),  # low above high
                grouped_row("PINK", 1, 1.1, 0.9, 1, 1e5, day=day, otc=True),
            ]
        yield server


def _settings(database_url, fake, monkeypatch, key=KEY):
    monkeypatch.setenv("BREAKOUT_POLYGON_API_KEY", key)
    return load_settings(
        database_url=database_url,
        data_source="polygon",
        polygon_base_url=fake.base_url,
        polygon_backoff_s=0.01,
        polygon_max_retries=2,
    )


def test_range_from_polygon_one_request_per_session(database_url, fake, monkeypatch):
    fake.fail("/v2/aggs/grouped", 429, times=1)  # rate-limited once, then fine
    settings = _settings(database_url, fake, monkeypatch)
    result = run_assets(settings, ["market_bars"], "2024-03-04", "2024-03-05")
    rows = read_table(database_url, "SELECT * FROM market_bars ORDER BY session, ticker")
    assert list(rows["ticker"]) == ["AAPL", "MSFT"] * 2
    quarantined = read_table(database_url, "SELECT ticker, reason FROM quarantined_bars")
    assert set(quarantined["ticker"]) == {"BAD"}
    grouped = fake.requests_to("/v2/aggs/grouped")
    assert len(grouped) == 3  # two sessions, one retried
    assert all(r.query.get("include_otc") == "false" for r in grouped)
    run_log = " ".join(str(e) for e in result.all_events)
    assert KEY not in run_log


def test_unauthorised_names_the_variable_and_hides_the_key(database_url, fake, monkeypatch):
    settings = _settings(database_url, fake, monkeypatch, key="wrong-key-999")
    result = run_assets(settings, ["market_bars"], "2024-03-04", raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    text = str(error.cause or error)
    assert "BREAKOUT_POLYGON_API_KEY" in text and "wrong-key-999" not in text
    assert read_table(database_url, "SELECT count(*) AS n FROM market_bars")["n"][0] == 0


def test_empty_session_fails_the_partition(database_url, fake, monkeypatch):
    fake.grouped["2024-03-06"] = []
    settings = _settings(database_url, fake, monkeypatch)
    result = run_assets(settings, ["market_bars"], "2024-03-06", raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    assert "MissingDataError" == (error.cause or error).cls_name

"""Resource configuration as the UI shows it: no secret in it, one resource class per backend.

The UI renders the code location's serialised repository snapshot (resource config, job config
schemas with their defaults, asset metadata). The secrets test serialises that snapshot with
canary values in every secret-bearing variable and looks for them anywhere in it.
"""

from __future__ import annotations

from datetime import date

import pytest
from dagster import build_resources as init_resources
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from sqlalchemy import text

from breakout_assets.definitions import build_definitions, build_resources
from breakout_assets.resources.broker import IbkrBrokerResource, SimulatedBrokerResource
from breakout_assets.resources.market_data import (
    FilesMarketData,
    PolygonMarketData,
    SyntheticMarketData,
)
from breakout_assets.settings import load_settings
from breakout_assets_tests.conftest import SAMPLE_DIR

PASSWORD = "Canary-pw-5f1e"
ACCOUNT = "DU9CANARY"
POLYGON_KEY = "canary-polygon-key-77"
URL = f"postgresql://breakout:{PASSWORD}@db.example:5432/breakout"


def ui_snapshot(settings) -> str:
    """Everything the webserver can show about the code location, as it receives it."""
    repository = build_definitions(settings).get_repository_def()
    return serialize_value(RepositorySnap.from_def(repository))


@pytest.mark.parametrize("url_variable", ["BREAKOUT_DATABASE_URL", "DATABASE_URL"])
def test_no_secret_reaches_the_ui(monkeypatch, tmp_path, url_variable):
    monkeypatch.setenv(url_variable, URL)
    monkeypatch.setenv("BREAKOUT_BROKER", "ibkr")
    monkeypatch.setenv("BREAKOUT_IBKR_ACCOUNT", ACCOUNT)
    monkeypatch.setenv("BREAKOUT_DATA_SOURCE", "polygon")
    monkeypatch.setenv("BREAKOUT_POLYGON_API_KEY", POLYGON_KEY)
    monkeypatch.setenv("BREAKOUT_DAGSTER_HOME", str(tmp_path / "dagster_home"))
    settings = load_settings()
    assert settings.database_url == URL  # the alias still resolves (settings.py's behaviour)

    shown = ui_snapshot(settings)
    for secret in (PASSWORD, ACCOUNT, POLYGON_KEY):
        assert secret not in shown, secret
    # The variables are named instead, so the UI says where each value comes from.
    for variable in (url_variable, "BREAKOUT_IBKR_ACCOUNT", "BREAKOUT_POLYGON_API_KEY"):
        assert variable in shown

    # ... and a run still gets the real values when the resources initialise.
    resources = build_resources(settings)
    with init_resources(
        {
            "postgres": resources["postgres"],
            "broker": resources["broker"],
            "market_data": resources["market_data"],
        }
    ) as live:
        assert live.postgres.database_url == URL
        assert live.broker.account == ACCOUNT
        assert live.market_data.api_key == POLYGON_KEY


def test_a_plain_resource_would_show_the_password(tmp_path):
    """The canary check can fail: a URL given in code (no variable to name) is shown as is."""
    settings = load_settings(
        database_url=URL, files_dir=SAMPLE_DIR, dagster_home=tmp_path / "dagster_home"
    )
    assert PASSWORD in ui_snapshot(settings)


@pytest.mark.parametrize(
    ("source", "cls"),
    [
        ("files", FilesMarketData),
        ("polygon", PolygonMarketData),
        ("synthetic", SyntheticMarketData),
    ],
)
def test_the_data_source_setting_picks_one_resource_class(monkeypatch, source, cls):
    monkeypatch.setenv("BREAKOUT_DATA_SOURCE", source)
    monkeypatch.setenv("BREAKOUT_POLYGON_API_KEY", POLYGON_KEY)
    resource = build_resources(load_settings())["market_data"]
    assert type(resource) is cls


def test_the_broker_setting_picks_one_resource_class(monkeypatch):
    assert type(build_resources(load_settings())["broker"]) is SimulatedBrokerResource
    monkeypatch.setenv("BREAKOUT_BROKER", "ibkr")
    monkeypatch.setenv("BREAKOUT_IBKR_ACCOUNT", ACCOUNT)
    broker = build_resources(load_settings())["broker"]
    assert type(broker) is IbkrBrokerResource and broker.kind == "ibkr"


def test_each_resource_holds_only_its_own_settings(monkeypatch):
    """No resource carries another backend's fields (the old single class copied all ~25)."""
    files = build_resources(load_settings())["market_data"]
    assert set(type(files).model_fields) == {"files_dir", "hourly_aliases"}
    simulated = build_resources(load_settings())["broker"]
    assert not any(
        name.startswith("ibkr") or name in ("host", "account")
        for name in type(simulated).model_fields
    )


def test_the_synthetic_resource_serves_its_seeded_market():
    resource = SyntheticMarketData(tickers=5, seed=3, origin="2020-01-02")
    assert resource.source() is resource.source()  # built once per process
    assert not resource.source().daily_bars([date(2020, 1, 3)]).empty


def test_resources_used_outside_a_run_read_their_variables(monkeypatch, database_url):
    """The CLI and scripts use the resources directly (no Dagster init to resolve an EnvVar):
    they must connect with the variable's value, not its name."""
    monkeypatch.setenv("BREAKOUT_DATABASE_URL", database_url)
    monkeypatch.setenv("BREAKOUT_BROKER", "ibkr")
    monkeypatch.setenv("BREAKOUT_IBKR_ACCOUNT", ACCOUNT)
    resources = build_resources(load_settings())
    with resources["postgres"].transaction() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    assert resources["broker"].build().account_id == ACCOUNT

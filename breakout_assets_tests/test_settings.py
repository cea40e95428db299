import os
import subprocess
import sys
from datetime import date

import pytest

from breakout_assets.settings import SettingsError, load_settings


def test_defaults_are_safe_and_valid():
    settings = load_settings()
    assert settings.data_source == "files"
    assert settings.database_url is None  # embedded Postgres
    assert settings.files_dir.joinpath("stocks.parquet").exists()


def test_reads_prefixed_environment(monkeypatch):
    monkeypatch.setenv("BREAKOUT_START_DATE", "2020-01-02")
    monkeypatch.setenv("BREAKOUT_DATA_SOURCE", "synthetic")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@localhost/x")
    settings = load_settings()
    assert settings.start_date == date(2020, 1, 2)
    assert settings.data_source == "synthetic"
    assert settings.database_url == "postgresql://u@localhost/x"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BREAKOUT_DATA_SOURCE", "bloomberg"),
        ("BREAKOUT_START_DATE", "yesterday"),
        ("BREAKOUT_COVERAGE_TOLERANCE", "2"),
        ("BREAKOUT_SYNTHETIC_TICKERS", "0"),
    ],
)
def test_wrong_value_names_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert variable in str(error.value)
    assert repr(value) in str(error.value)


def test_polygon_without_key_names_the_key_variable(monkeypatch):
    monkeypatch.setenv("BREAKOUT_DATA_SOURCE", "polygon")
    with pytest.raises(SettingsError, match="BREAKOUT_POLYGON_API_KEY"):
        load_settings()


def test_secret_is_not_in_repr(monkeypatch):
    monkeypatch.setenv("BREAKOUT_DATA_SOURCE", "polygon")
    monkeypatch.setenv("BREAKOUT_POLYGON_API_KEY", "sk-very-secret")
    settings = load_settings()
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in str(settings.model_dump())


def test_definitions_fail_to_load_naming_the_variable():
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKOUT_")}
    env["BREAKOUT_DATA_SOURCE"] = "nope"
    done = subprocess.run(
        [sys.executable, "-c", "import breakout_assets.definitions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "BREAKOUT_DATA_SOURCE" in done.stderr


def test_ibkr_without_account_names_the_variable(monkeypatch):
    monkeypatch.setenv("BREAKOUT_BROKER", "ibkr")
    with pytest.raises(SettingsError, match="BREAKOUT_IBKR_ACCOUNT"):
        load_settings()


def test_safe_defaults():
    settings = load_settings()
    assert settings.broker == "simulated" and settings.dry_run and not settings.auto_approve
    assert settings.ibkr_host == "127.0.0.1"

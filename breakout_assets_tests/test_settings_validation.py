"""Every setting is checked when it loads, and every failure names the variable to fix (issue 14.8).

Each test reproduces a failure an operator met: a database URL that is not a URL, points at a
refused port or at a missing database; a start date outside the exchange calendar; the Polygon
key under its alias; an empty or directory kill-switch path; a percentage with no upper bound.
The CLI is run as a subprocess where it is the CLI that failed; databases and runs are real.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from breakout_assets.resources.kill_switch import KillSwitch, KillSwitchError
from breakout_assets.settings import PROJECT_ROOT, SettingsError, load_settings
from breakout_assets_tests.fake_polygon import FakePolygon, grouped_row
from breakout_assets_tests.helpers import read_table, run_assets

BREAKOUT = str(Path(sys.executable).with_name("breakout"))
CANARY = "pw-canary-7f3a"  # a password that must never be printed


def _cli(*args: str, timeout: float = 120, **variables: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BREAKOUT_") and k not in ("DATABASE_URL", "POLYGON_API_KEY")
    }
    env.update(variables)
    return subprocess.run(
        [BREAKOUT, *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _free_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- BREAKOUT_DATABASE_URL ----------------------------------------------------------------------


def test_a_database_url_that_is_not_a_url_is_named_at_load():
    done = _cli("db", "migrate", BREAKOUT_DATABASE_URL="notaurl")
    assert done.returncode != 0
    assert "BREAKOUT_DATABASE_URL" in done.stderr and "not a URL" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(SettingsError, match="BREAKOUT_DATABASE_URL: not a URL"):
        load_settings(database_url="notaurl")
    with pytest.raises(SettingsError, match="BREAKOUT_DAGSTER_DATABASE_URL: not a Postgres"):
        load_settings(dagster_database_url=f"mysql://u:{CANARY}@db/x")


def test_a_wrong_url_is_reported_with_its_password_masked(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://trader:{CANARY}@db:notaport/x")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "DATABASE_URL: not a URL" in str(error.value)  # the alias that was set
    assert "trader:***@db" in str(error.value) and CANARY not in str(error.value)


def test_a_refused_port_fails_in_seconds_naming_the_variable():
    url = f"postgresql://trader:{CANARY}@127.0.0.1:{_free_port()}/breakout"
    started = time.monotonic()
    done = _cli(
        "dagster",
        "asset",
        "materialize",
        "--select",
        "market_bars",
        "--partition",
        "2024-03-01",
        "-m",
        "breakout_assets.definitions",
        BREAKOUT_DATABASE_URL=url,
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "cannot connect to Postgres" in output and "BREAKOUT_DATABASE_URL" in output
    assert "Connection refused" in output and "trader:***@127.0.0.1" in output
    assert CANARY not in output
    assert elapsed < 60  # Dagster's own retries took ~17 s and never named the variable


def test_a_missing_database_fails_the_run_naming_the_variable(pg_server, dagster_instance):
    from breakout_assets.resources.local_postgres import with_database

    url = with_database(pg_server, "no_such_database")
    settings = load_settings(database_url=url)
    result = run_assets(settings, ["market_bars"], "2024-03-01", raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    text = str(error.cause or error)
    assert "BREAKOUT_DATABASE_URL" in text
    assert 'database "no_such_database" does not exist' in text
    done = _cli("db", "migrate", BREAKOUT_DATABASE_URL=url)
    assert done.returncode != 0 and "BREAKOUT_DATABASE_URL" in done.stderr


# --- BREAKOUT_START_DATE ------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["2100-01-04", "1990-01-02"])
def test_a_start_date_outside_the_calendar_is_named_at_load(start):
    with pytest.raises(SettingsError, match="BREAKOUT_START_DATE: .* outside the XNYS calendar"):
        load_settings(start_date=start)
    done = subprocess.run(
        [sys.executable, "-c", "import breakout_assets.definitions"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "BREAKOUT_START_DATE": start},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "BREAKOUT_START_DATE" in done.stderr and "DateOutOfBounds" not in done.stderr


# --- the Polygon key under an alias -------------------------------------------------------------


@pytest.mark.parametrize("variable", ["POLYGON_API_KEY", "MASSIVE_API_KEY"])
def test_the_polygon_key_alias_reaches_the_run(database_url, monkeypatch, variable):
    key = "pk-alias-secret-42"
    monkeypatch.delenv("MASSIVE_API_KEY", raising=False)
    monkeypatch.setenv(variable, key)
    with FakePolygon(api_key=key) as fake:
        fake.grouped["2024-03-04"] = [
            grouped_row("AAPL", 170, 172, 169, 171, 5e7, day="2024-03-04")
        ]
        settings = load_settings(
            database_url=database_url,
            data_source="polygon",
            polygon_base_url=fake.base_url,
            polygon_backoff_s=0.01,
        )
        assert settings.polygon_key_variable() == variable
        result = run_assets(settings, ["market_bars"], "2024-03-04", raise_on_error=False)
    assert result.success, result.get_step_failure_events()
    rows = read_table(database_url, "SELECT ticker FROM market_bars")
    assert list(rows["ticker"]) == ["AAPL"]
    assert key not in " ".join(str(e) for e in result.all_events)


def test_a_polygon_key_given_only_in_code_is_refused_clearly():
    settings = load_settings(data_source="polygon", polygon_api_key="pk-in-code")
    with pytest.raises(SettingsError, match="set BREAKOUT_POLYGON_API_KEY") as error:
        settings.polygon_key_variable()
    assert "pk-in-code" not in str(error.value)


# --- BREAKOUT_KILL_SWITCH_PATH ------------------------------------------------------------------


@pytest.mark.parametrize("action", ["off", "status", "on"])
def test_an_empty_kill_switch_path_is_named_not_read_as_the_current_directory(action, tmp_path):
    done = _cli("kill-switch", action, BREAKOUT_KILL_SWITCH_PATH="")
    assert done.returncode != 0
    assert "BREAKOUT_KILL_SWITCH_PATH: is empty" in done.stderr
    assert "Traceback" not in done.stderr and "IsADirectoryError" not in done.stderr


def test_a_directory_kill_switch_path_is_named(tmp_path):
    done = _cli("kill-switch", "off", BREAKOUT_KILL_SWITCH_PATH=str(tmp_path))
    assert done.returncode != 0
    assert "BREAKOUT_KILL_SWITCH_PATH" in done.stderr and "is a directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_directory_that_appears_at_the_switch_path_halts_and_says_why(tmp_path):
    """Created after the settings loaded: trading stays halted (fail safe), and releasing it
    says what to fix instead of crashing with IsADirectoryError."""
    path = tmp_path / "KILL"
    switch = KillSwitch(load_settings(kill_switch_path=path).kill_switch_path)
    path.mkdir()
    assert switch.engaged()
    assert "is a directory" in switch.details()["reason"]
    with pytest.raises(KillSwitchError, match="BREAKOUT_KILL_SWITCH_PATH"):
        switch.release()
    with pytest.raises(KillSwitchError, match="is a directory"):
        switch.engage("halt", by="test")
    assert path.is_dir()  # never removed by us


# --- percentages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BREAKOUT_SIZING__MAX_POSITION_NOTIONAL_PCT", "20"),  # meant 20%, read as 20x equity
        ("BREAKOUT_SIZING__MAX_POSITION_NOTIONAL_PCT", "1.5"),
        ("BREAKOUT_SIZING__MAX_OPEN_RISK_PCT", "6"),
        ("BREAKOUT_JUMP_THRESHOLD", "45"),
        ("BREAKOUT_SCANNER__CONSOL_MAX_RANGE_PCT", "25"),
        ("BREAKOUT_SCANNER__RALLY_MAX_PCT", "100"),
        ("BREAKOUT_SCANNER__CONSOL_MAX_RETRACEMENT", "78.6"),
        ("BREAKOUT_REGIME__VIX_SPIKE_PCT", "20"),
        ("BREAKOUT_COSTS__SLIPPAGE_BPS", "5000"),
        ("BREAKOUT_COSTS__SLIPPAGE_ATR_FRACTION", "5"),
    ],
)
def test_every_percentage_is_bounded_and_named(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert f"{variable}: Input should be less than" in str(error.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BREAKOUT_IBKR_PORT", "0"),
        ("BREAKOUT_IBKR_PORT", "70000"),
        ("BREAKOUT_IBKR_HOST", ""),
        ("BREAKOUT_POLYGON_BASE_URL", "api.massive.com"),
        ("BREAKOUT_PG_DATA_DIR", ""),
        ("BREAKOUT_FILES_DIR", ""),
        ("BREAKOUT_MODEL_STORE_DIR", ""),
    ],
)
def test_other_variables_are_checked_and_named(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()

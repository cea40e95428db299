"""Plain `dagster ...` in a project root, the way a user types it: no variables but the generated
`.env`, no traceback, no "dagster.yaml will not be used" warning, and one error line when the
embedded Postgres is down.

Each test lays out a root as the repo has it (dagster.yaml, workspace.yaml, `.env` written by
runtime.write_dotenv) in a temporary folder, so the repo's own `.env` is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from breakout_assets import runtime
from breakout_assets.resources.postgres import DATABASE_URL_VARIABLE
from breakout_assets.settings import PROJECT_ROOT, load_settings
from breakout_assets_tests.conftest import new_database

DAGSTER = str(Path(sys.executable).with_name("dagster"))
MAKEFILE = PROJECT_ROOT / "Makefile"


def _bare_environment() -> dict[str, str]:
    """What a fresh shell has: none of the project's or Dagster's variables."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BREAKOUT_", "DAGSTER_", "PYTHONWARNINGS"))
    }


def _project_root(tmp_path: Path, storage_url: str, data_url: str | None = None) -> Path:
    """A root laid out as the repo's. `data_url` is the project's database for servers whose
    daemon ticks sensors that read it; without it they would start the repo's embedded one."""
    root = tmp_path / "root"
    root.mkdir()
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    env = runtime.dagster_environment(load_settings(dagster_database_url=storage_url))
    if data_url:
        env[DATABASE_URL_VARIABLE] = data_url
    runtime.write_dotenv({**env, "DAGSTER_HOME": str(root)}, root / ".env")
    return root


def _dagster(root: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [DAGSTER, *args],
        cwd=root,
        env=env or _bare_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_default_home_is_the_project_root_and_dotenv_keeps_other_lines(tmp_path):
    assert runtime.prepare_dagster_home(load_settings()) == PROJECT_ROOT
    dotenv = tmp_path / ".env"
    dotenv.write_text("MY_OWN=1\nDAGSTER_HOME=/old\n")
    runtime.write_dotenv({"DAGSTER_HOME": "/new", "BREAKOUT_DAGSTER_PG_URL": "u"}, dotenv)
    assert dotenv.read_text().splitlines() == [
        "MY_OWN=1",
        "DAGSTER_HOME=${DAGSTER_HOME:-/new}",
        "BREAKOUT_DAGSTER_PG_URL=${BREAKOUT_DAGSTER_PG_URL:-u}",
    ]
    assert dotenv.stat().st_mode & 0o077 == 0


def test_the_environment_wins_over_the_dotenv(pg_server, tmp_path):
    """A process that chose its instance keeps it in a root with a `.env` (Dagster lets the
    file override the environment; the file's values are only defaults)."""
    ours = new_database(pg_server, template="template1")
    root = _project_root(tmp_path, f"postgresql+psycopg2://postgres:pw@/dagster?host={tmp_path}/x")
    env = {
        **_bare_environment(),
        "BREAKOUT_DAGSTER_PG_URL": runtime.local_postgres.with_driver(ours, "psycopg2"),
        "DAGSTER_HOME": str(root),
    }
    done = _dagster(root, "definitions", "validate", "-m", "breakout_assets.definitions", env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def test_definitions_validate_with_only_the_dotenv(pg_server, tmp_path):
    root = _project_root(tmp_path, new_database(pg_server, template="template1"))
    done = _dagster(root, "definitions", "validate", "-m", "breakout_assets.definitions")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Validation successful" in output
    assert "Traceback" not in output and "will not be used" not in output


def test_embedded_postgres_down_is_one_error_line(tmp_path):
    down = f"postgresql+psycopg2://postgres:pw@/dagster?host={tmp_path / 'no-server'}"
    root = _project_root(tmp_path, down)
    done = _dagster(root, "definitions", "validate", "-m", "breakout_assets.definitions")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "pw@" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "cannot connect to Postgres" in errors[0]
    assert "make db-url" in errors[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


VENV = Path(sys.executable).parents[1]
DG = str(VENV / "bin" / "dg")


def _dg_environment(tmp_path: Path, storage_url: str, data_url: str) -> dict[str, str]:
    """`dg` runs in the repo itself (it wants the package inside its project), on an instance and
    a project database of its own: the environment wins over the repo's `.env`, whose values are
    only defaults."""
    root = _project_root(tmp_path, storage_url)
    return {
        **_bare_environment(),
        "VIRTUAL_ENV": str(VENV),
        "DAGSTER_HOME": str(root),
        "BREAKOUT_DAGSTER_PG_URL": runtime.local_postgres.with_driver(storage_url, "psycopg2"),
        DATABASE_URL_VARIABLE: data_url,
    }


def test_make_ui_is_dg_dev_on_localhost_with_the_project_venv():
    recipe = MAKEFILE.read_text().split("\nui:", 1)[1].split("\n\n", 1)[0]
    assert "VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg dev -h 127.0.0.1 -p 3000" in recipe


def test_dg_dev_as_make_ui_runs_it_warns_of_nothing(pg_server, tmp_path):
    """`dg dev` in the repo, the venv named the way `make ui` names it."""
    env = _dg_environment(
        tmp_path, new_database(pg_server, template="template1"), new_database(pg_server)
    )
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        dev = subprocess.Popen(
            [DG, "dev", "-h", "127.0.0.1", "-p", str(_free_port())],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    output = _served(dev, log)
    # "dagster.yaml ... will not be used" is expected here only: this test's instance is not the
    # repo's; test_plain_dagster_dev_in_a_root_loads_the_dotenv checks the real layout.
    for noise in ("superseded", "does not match", "Traceback", "Telemetry"):
        assert noise not in output, output[-3000:]


def test_plain_dagster_dev_in_a_root_loads_the_dotenv(pg_server, tmp_path):
    """Plain `dagster dev` in a root laid out as the repo's: the `.env` gives it the instance,
    and dagster.yaml is used (no "will not be used" warning). Dagster's own FutureWarning that
    `dagster dev` is superseded by `dg dev` is accurate: `make ui` runs `dg dev`."""
    root = _project_root(
        tmp_path, new_database(pg_server, template="template1"), new_database(pg_server)
    )
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        dev = subprocess.Popen(
            [DAGSTER, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(_free_port())],
            cwd=root,
            env=_bare_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    output = _served(dev, log)
    assert "Loaded environment variables from .env file" in output
    assert "will not be used" not in output and "Traceback" not in output


def _served(dev: subprocess.Popen, log: Path) -> str:
    """Wait for the webserver to serve, stop the whole process group, return the log."""
    try:
        deadline = time.monotonic() + 240
        while "Serving dagster-webserver" not in log.read_text():
            assert dev.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
    finally:
        os.killpg(dev.pid, signal.SIGINT)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
    return log.read_text()


def test_dg_checks_the_definitions_from_the_project_root(pg_server, tmp_path):
    env = _dg_environment(
        tmp_path, new_database(pg_server, template="template1"), new_database(pg_server)
    )
    done = subprocess.run(
        [DG, "check", "defs"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "All definitions loaded successfully" in output
    assert "Traceback" not in output and "does not match" not in output

"""The operator dashboard in a real browser: the real server, started by `breakout dashboard
--port N` (which execs `streamlit run` bound to 127.0.0.1), against a seeded test database, driven
by Debian's chromium (headless, through the Python Playwright package with the system
executable: nothing is downloaded). Each page must show its data; one plan is approved through
the page and the database must say so; the kill switch toggle must write and remove its file.

Screenshots of the main pages go to the test's tmp dir; with BREAKOUT_DASHBOARD_SCREENSHOTS set
to a folder (e.g. docs/dashboard) they are copied there too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, text

from breakout_assets import approvals
from breakout_assets.dashboard.server import url
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets_tests.conftest import new_database
from breakout_assets_tests.test_dashboard import PENDING_SESSION, seed_desk

CHROMIUM = Path("/usr/bin/chromium")
BREAKOUT = str(Path(sys.executable).with_name("breakout"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# read at import: the suite's fixtures clear BREAKOUT_* variables inside each test
SCREENSHOTS = os.environ.get("BREAKOUT_DASHBOARD_SCREENSHOTS")
PAGE_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium: `make test` installs it "
    "(apt-get install chromium)",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(base: str, server: subprocess.Popen, log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited ({server.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"streamlit did not answer in {timeout_s}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def desk(pg_server, dagster_instance, tmp_path_factory) -> Iterator[dict]:
    """One seeded database, one real Dagster run and one server for the module."""
    root = tmp_path_factory.mktemp("dashboard_browser")
    database_url = new_database(pg_server)
    model_store = root / "model_store"
    seed_desk(database_url, model_store)
    run = approvals.approve_trades.execute_in_process(
        run_config={
            "ops": {
                "decide_trade_plans": {
                    "config": {
                        "session": str(PENDING_SESSION),
                        "refs": ["BRK-NFLX-20240308-S"],
                        "decided_by": "carol",
                    }
                }
            }
        },
        resources={"postgres": PostgresResource(database_url=database_url, local_data_dir="-")},
        instance=dagster_instance,
    )
    assert run.success
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("BREAKOUT_")}
    env |= {
        "BREAKOUT_DATABASE_URL": database_url,
        "BREAKOUT_KILL_SWITCH_PATH": str(root / "KILL_SWITCH"),
        "BREAKOUT_MODEL_STORE_DIR": str(model_store),
        "BREAKOUT_DAGSTER_UI_URL": "http://127.0.0.1:3999",
        # `breakout dashboard` points the app at this Dagster instance (DAGSTER_HOME and its
        # storage URL), as it does at the project's own
        "BREAKOUT_DAGSTER_HOME": dagster_instance.root_directory,
        "BREAKOUT_DAGSTER_DATABASE_URL": dagster_instance.run_storage.postgres_url,
        "HOME": str(root),  # streamlit's own ~/.streamlit, not the developer's
    }
    log = root / "streamlit.log"
    with log.open("w") as out:  # the CLI execs `streamlit run` (server.streamlit_command)
        server = subprocess.Popen(
            [BREAKOUT, "dashboard", "--port", str(port)],
            env=env,
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url(port), server, log)
        yield {
            "url": url(port),
            "database_url": database_url,
            "kill_switch": root / "KILL_SWITCH",
            "run_id": run.run_id,
            "screenshots": root / "screenshots",
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, desk):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT_MS)
    yield tab
    context.close()


def _open(page, desk: dict, path: str, expect: str):
    page.goto(f"{desk['url']}/{path}")
    page.get_by_text(expect, exact=False).first.wait_for()
    _settled(page)
    assert page.get_by_text("Page not found").count() == 0, path
    assert page.get_by_test_id("stException").count() == 0, path
    return page


def _settled(page) -> None:
    """Done once the app says its script is not running (a rerun an input just asked for starts
    within a few hundred milliseconds, hence the short wait first)."""
    page.wait_for_timeout(300)
    page.locator(
        "[data-testid='stApp'][data-test-script-state='notRunning']"
        "[data-test-connection-state='CONNECTED']"
    ).wait_for()


def _metric(page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(has_text=label).first
    return metric.get_by_test_id("stMetricValue").inner_text().strip()


def _shoot(page, desk: dict, name: str) -> None:
    """A screenshot once every element has replaced its loading skeleton."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=30_000
    )
    page.wait_for_timeout(500)  # charts and grids paint after their element mounts
    folder: Path = desk["screenshots"]
    folder.mkdir(exist_ok=True)
    shot = folder / f"{name}.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    if SCREENSHOTS:  # for the docs: 256 colours keep each a fraction of the size
        target = Path(SCREENSHOTS)
        target.mkdir(parents=True, exist_ok=True)
        Image.open(shot).convert("RGB").quantize(256).save(target / shot.name, optimize=True)


def _query(database_url: str, sql: str):
    engine = create_engine(with_driver(database_url, "psycopg"))
    with engine.connect() as conn:
        row = conn.execute(text(sql)).one()
    engine.dispose()
    return row


def _eventually(check, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_every_page_shows_its_data(page, desk):
    _open(page, desk, "", "Net P&L (closed)")  # the default page
    assert _metric(page, "Trades") == "8"
    assert _metric(page, "Net P&L (closed)") == "$603.00"
    _shoot(page, desk, "journal")

    _open(page, desk, "equity", "Max drawdown")
    assert _metric(page, "Equity (realised)") == "$100,603.00"
    page.locator("[data-testid='stVegaLiteChart'], .vega-embed").first.wait_for()
    _shoot(page, desk, "equity")

    _open(page, desk, "positions", "Unrealised P&L")
    assert _metric(page, "Open positions") == "4"
    assert _metric(page, "P&L if every stop is hit") == "-$810.00"
    _shoot(page, desk, "positions")

    _open(page, desk, "models", "Calibration live vs held-out")
    page.get_by_text("SERVING").first.wait_for()
    assert _metric(page, "held-out roc_auc") == "0.611"
    page.get_by_text("20 live outcomes final").wait_for()
    _shoot(page, desk, "models")

    _open(page, desk, "drift", "long: DRIFTED on 2024-03-08")
    page.get_by_text("short: no drift on 2024-03-08").wait_for()
    _shoot(page, desk, "drift")

    _open(page, desk, "runs", "Runs shown")
    link = page.locator(f"a[href='http://127.0.0.1:3999/runs/{desk['run_id']}']")
    assert link.inner_text() == desk["run_id"][:8]
    _shoot(page, desk, "runs")


def test_approve_one_plan_in_the_browser(page, desk):
    _open(page, desk, "approvals", "pending approval")
    page.get_by_text("Session 2024-03-08: 4 pending").wait_for()
    approve = page.locator(".st-key-approve-BRK-GOOG-20240308-L button")
    approve.wait_for()
    _shoot(page, desk, "approvals")
    operator = page.get_by_role("textbox", name="Operator", exact=True)
    operator.fill("dora")
    operator.press("Enter")
    _settled(page)
    approve.click()
    page.get_by_text("approved 1 plan(s) of 2024-03-08: BRK-GOOG-20240308-L").wait_for()

    status, decided_by, decided_at = _query(
        desk["database_url"],
        "SELECT status, decided_by, decided_at FROM trade_plan "
        "WHERE order_ref = 'BRK-GOOG-20240308-L'",
    )
    assert (status, decided_by) == ("approved", "dora (dashboard)")
    assert decided_at is not None
    # nothing else was decided by loading or clicking
    pending = _query(
        desk["database_url"],
        "SELECT count(*) FROM trade_plan WHERE status = 'pending_approval'",
    )[0]
    assert pending == 1  # BRK-ORCL (BRK-NFLX was decided by the Dagster run)
    page.get_by_text("Session 2024-03-08: 3 pending").wait_for()


def test_kill_switch_toggle_writes_and_removes_the_file(page, desk):
    switch: Path = desk["kill_switch"]
    _open(page, desk, "kill_switch", "OFF: orders flow")
    assert not switch.exists()
    operator = page.get_by_role("textbox", name="Operator", exact=True)
    operator.fill("erin")
    operator.press("Enter")
    _settled(page)
    reason = page.get_by_role("textbox", name="Reason", exact=True)
    reason.fill("broker outage")
    reason.press("Enter")
    _settled(page)
    _shoot(page, desk, "kill_switch")

    page.get_by_role("button", name="Engage kill switch").click()
    page.get_by_text("tick the confirmation first").wait_for()
    assert not switch.exists()

    page.get_by_text("I confirm: halt all order activity now").click()
    _settled(page)
    page.get_by_role("button", name="Engage kill switch").click()
    page.get_by_text("KILL SWITCH ON:").first.wait_for()
    assert _eventually(switch.exists)
    assert '"by": "erin (dashboard)"' in switch.read_text()
    assert "broker outage" in switch.read_text()

    page.get_by_text("I confirm: resume order activity").click()
    _settled(page)
    page.get_by_role("button", name="Release kill switch").click()
    page.get_by_text("kill switch off", exact=True).wait_for()
    assert _eventually(lambda: not switch.exists())

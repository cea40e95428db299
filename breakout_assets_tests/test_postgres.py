"""Migrations and the embedded server, against real Postgres."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from breakout_assets.cli import main
from breakout_assets.resources import local_postgres
from breakout_assets.resources.migrations import MIGRATIONS_DIR, MigrationError, apply_migrations
from breakout_assets_tests.conftest import new_database


def _engine(url):
    return create_engine(local_postgres.with_driver(url, "psycopg"))


def test_migrations_apply_once_and_are_recorded(pg_server, tmp_path):
    url = new_database(pg_server, template="template1")
    engine = _engine(url)
    first = apply_migrations(engine)
    assert first == sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
    assert apply_migrations(engine) == []  # idempotent
    with engine.connect() as conn:
        recorded = conn.execute(text("SELECT version, name FROM schema_migrations")).all()
        tables = set(
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
        )
    assert [r.version for r in recorded] == list(range(1, len(first) + 1))
    assert {"market_bars", "index_bars", "tickers", "quarantined_bars"} <= tables


def test_concurrent_migrators_apply_once(pg_server):
    url = new_database(pg_server, template="template1")
    results, errors = [], []

    def migrate():
        try:
            results.append(apply_migrations(_engine(url)))
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(len(r) for r in results)[:2] == [0, 0]  # only one thread applied anything


def test_edited_migration_is_refused(pg_server, tmp_path):
    url = new_database(pg_server, template="template1")
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    apply_migrations(_engine(url), copy)
    first = sorted(copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(_engine(url), copy)


def test_failing_migration_leaves_nothing_behind(pg_server, tmp_path):
    url = new_database(pg_server, template="template1")
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    (copy / "9999_broken.sql").write_text("CREATE TABLE half_done (x int);\nSELECT nope;\n")
    with pytest.raises(ProgrammingError, match="nope"):
        apply_migrations(_engine(url), copy)
    with _engine(url).connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('half_done')")).scalar()
        migrations = conn.execute(text("SELECT to_regclass('schema_migrations')")).scalar()
    assert exists is None and migrations is None  # all or nothing


def test_cli_starts_reuses_and_stops_the_embedded_server(monkeypatch, tmp_path):
    data_dir = Path("/tmp") / f"bk-cli-{tmp_path.name[-12:]}"
    monkeypatch.setenv("BREAKOUT_PG_DATA_DIR", str(data_dir))
    runner = CliRunner()
    try:
        url = runner.invoke(main, ["db", "url"], catch_exceptions=False).output.strip()
        assert url.startswith("postgresql://") and "/breakout?" in url
        again = runner.invoke(main, ["db", "url"], catch_exceptions=False).output.strip()
        assert again == url  # reused, not re-created
        dagster_url = runner.invoke(main, ["db", "url", "--dagster"]).output.strip()
        assert dagster_url.startswith("postgresql+psycopg2://") and "/dagster?" in dagster_url
        with _engine(url).connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        assert "applied" in runner.invoke(main, ["db", "migrate"]).output
        assert runner.invoke(main, ["db", "migrate"]).output.strip() == "schema is up to date"
        assert runner.invoke(main, ["db", "stop"]).output.strip() == "stopped"
        assert runner.invoke(main, ["db", "stop"]).output.strip() == "not running"
    finally:
        local_postgres.stop_local_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_url_helpers_redact_and_switch_driver():
    url = "postgresql://trader:hunter2@db.internal:5432/breakout?sslmode=require"
    assert "hunter2" not in local_postgres.redact(url)
    assert local_postgres.with_driver(url, "psycopg2").startswith("postgresql+psycopg2://")
    assert local_postgres.with_database(url, "dagster").endswith("/dagster?sslmode=require")
    with pytest.raises(ValueError):
        local_postgres.with_driver("mysql://x", "psycopg")

"""`breakout research` end to end on a slice of the bundled real sample: its own database, the
backfill through outcomes, both sides trained, the design's tables printed (real Postgres, real
Dagster runs, the real CLI for the second pass)."""

from __future__ import annotations

from datetime import date

import pytest
from click.testing import CliRunner

from breakout_assets import research
from breakout_assets.cli import main
from breakout_assets.resources import local_postgres
from breakout_assets.settings import load_settings
from breakout_assets_tests.conftest import SAMPLE_DIR, new_database
from breakout_assets_tests.helpers import read_table

QUICK = {"trials": 2, "folds": 3, "max_rounds": 1}
START, TEST_START = date(2021, 1, 4), date(2023, 6, 1)


@pytest.fixture
def operating(pg_server, dagster_instance, tmp_path, monkeypatch):
    """Operating settings whose Dagster variables the command may set (restored afterwards)."""
    from breakout_assets import runtime

    for name in ("DAGSTER_HOME", runtime.DAGSTER_URL_VAR):
        monkeypatch.setenv(name, "unset")
    return load_settings(
        database_url=new_database(pg_server),
        dagster_database_url=local_postgres.with_driver(
            new_database(pg_server, template="template1"), "psycopg2"
        ),
        dagster_home=tmp_path / "dagster_home",
        training=QUICK,
        model_store_dir=tmp_path / "store",
    )


def test_research_loads_its_own_database_trains_both_sides_and_prints_the_tables(
    operating, monkeypatch
):
    name = f"research_{abs(hash(operating.database_url)) % 10**8}"
    lines: list[str] = []
    report = research.run_research(
        operating, SAMPLE_DIR, database=name, start=START, test_start=TEST_START, echo=lines.append
    )
    url = local_postgres.with_database(operating.database_url, name)
    # the operating database is untouched; the research's own one holds the history
    assert read_table(operating.database_url, "SELECT count(*) AS n FROM market_bars").n[0] == 0
    signals = read_table(url, "SELECT side, count(*) AS n FROM breakout_signals GROUP BY side")
    base = report.baseline.set_index(["side", "period"])
    for side in ("long", "short"):
        assert (
            base.loc[(side, "all"), "signals"]
            == base.loc[(side, "train"), "signals"] + base.loc[(side, "test"), "signals"]
        )
        assert base.loc[(side, "all"), "signals"] == signals.set_index("side").n[side]
        assert base.loc[(side, "all"), "closed"] > 50
        assert 0.2 < base.loc[(side, "all"), "win_rate"] < 0.7
        # costs make every trade cheaper, never dearer
        assert base.loc[(side, "all"), "expectancy_net_r"] < base.loc[(side, "all"), "expectancy_r"]
        model = report.models[side]
        metrics = model["metrics"]["metrics"]
        assert {"roc_auc", "ece", "brier", "precision", "recall", "f1"} <= set(metrics)
        assert model["test_range"] >= str(TEST_START)  # held out chronologically
        gates = [e["gate"] for e in model["metrics"]["expectancy"]]
        assert gates[0] is None and 0.5 in gates
        # the system's own decision takes a subset of the trades at the gate
        at_gate = next(e for e in model["metrics"]["expectancy"] if e["gate"] == 0.5)
        assert 0 <= model["decision"]["trades"] <= at_gate["trades"]
    assert set(report.opposing["backtest"]) == {"opposing_hourly", "opposing_daily"}
    text = research.format_report(report)
    for needle in (
        "Scanner only",
        "design",
        "booked R",
        "long model",
        "short model",
        "ML decision",
        "Opposing book",
        "opposing_daily",
    ):
        assert needle in text
    assert any(line.startswith("[2/4]") for line in lines)  # progress is shown
    runs = read_table(url, "SELECT side, count(*) AS n FROM model_experiments GROUP BY side")
    assert dict(zip(runs.side, runs.n, strict=True)) == {"long": 1, "short": 1}

    # the CLI, reusing the loaded data: trains and reports again, nothing reloaded
    monkeypatch.setenv("BREAKOUT_DATABASE_URL", operating.database_url)
    monkeypatch.setenv("BREAKOUT_DAGSTER_DATABASE_URL", operating.dagster_database_url)
    monkeypatch.setenv("BREAKOUT_DAGSTER_HOME", str(operating.dagster_home))
    monkeypatch.setenv("BREAKOUT_MODEL_STORE_DIR", str(operating.model_store_dir))
    for key, value in QUICK.items():
        monkeypatch.setenv(f"BREAKOUT_TRAINING__{key.upper()}", str(value))
    result = CliRunner().invoke(
        main,
        [
            "research",
            "--files-dir",
            str(SAMPLE_DIR),
            "--database",
            name,
            "--reuse",
            "--start",
            str(START),
            "--test-start",
            str(TEST_START),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "reusing the data already loaded" in result.output
    assert "Breakout research" in result.output
    runs = read_table(url, "SELECT side, count(*) AS n FROM model_experiments GROUP BY side")
    assert dict(zip(runs.side, runs.n, strict=True)) == {"long": 2, "short": 2}


def test_research_refuses_an_unsafe_database_name(operating) -> None:
    with pytest.raises(ValueError, match="database name"):
        research.research_database(operating, "x; DROP DATABASE postgres", fresh=True)

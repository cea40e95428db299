"""`breakout research`: the design's figures, measured on a directory of real history.

A user points it at a files directory (the files source's layout). It loads the directory into a
database of its own on the same Postgres server (the operating database is never touched),
backfills bars, features, signals and outcomes as one range run, trains both sides with the
production training settings (the held-out split is chronological: every signal from
`test_start` on, after an embargo), and prints the description's tables next to ours.

The data runs use an in-memory Dagster instance: thousands of research partitions must not show
as materialised in the operating pipeline's asset catalog. The training runs go into the
project's instance, so their experiments (metrics, plots) are visible in the UI, and the models
are ordinary experiments: promoted only by the unchanged rules, then served by `signal_scores`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import DagsterInstance
from sqlalchemy import create_engine

from breakout_assets import runtime
from breakout_assets.core.costs import expected_costs_r
from breakout_assets.core.outcomes import trade_stats
from breakout_assets.core.sizing import expected_value, tier_for
from breakout_assets.definitions import build_definitions, build_resources
from breakout_assets.ml.dataset import model_confidence
from breakout_assets.partitions import nyse_sessions, sessions_to_keys
from breakout_assets.resources import local_postgres
from breakout_assets.resources.sql import query, raw_query
from breakout_assets.settings import BreakoutSettings

Echo = Callable[[str], None]

# The description's held-out figures ("The bottom line", "The opposing book", the model cards).
DESIGN = {
    "long": {
        "baseline": {"trades": 700, "win_rate": 0.481, "expectancy_r": -0.04},
        "gated": {"trades": 331, "win_rate": 0.616, "expectancy_r": 0.12},
        "model": {
            "accuracy": 0.629,
            "roc_auc": 0.65,
            "precision": 0.616,
            "recall": 0.605,
            "f1": 0.61,
        },
        "opposing": {"trades": 340, "win_rate": 0.638, "expectancy_r": 0.23},
    },
    "short": {
        "baseline": {"trades": 498, "win_rate": 0.404, "expectancy_r": -0.12},
        "gated": {"trades": 244, "win_rate": 0.561, "expectancy_r": 0.14},
        "model": {
            "accuracy": 0.657,
            "roc_auc": 0.71,
            "precision": 0.562,
            "recall": 0.682,
            "f1": 0.62,
        },
        "opposing": {"trades": 226, "win_rate": 0.739, "expectancy_r": 0.39},
    },
}
FEATURE_WARMUP_DAYS = 150  # calendar days of bars before the first session scanned
_RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class ResearchReport:
    """Everything the command prints, as tables (also what the tests read)."""

    range: tuple[str, str]
    test_start: date
    baseline: pd.DataFrame  # per side and period: the scanner alone
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # side -> experiment
    opposing: pd.DataFrame | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def research_settings(
    settings: BreakoutSettings, files_dir: Path, database_url: str, start: date, test_start: date
) -> BreakoutSettings:
    """The operating settings with the research's data, database and held-out split."""
    return settings.model_copy(
        update={
            "database_url": database_url,
            "data_source": "files",
            "files_dir": Path(files_dir),
            "start_date": start,
            "training": settings.training.model_copy(
                update={"test_start": test_start, "split": "chronological"}
            ),
        }
    )


def research_database(settings: BreakoutSettings, name: str, fresh: bool) -> str:
    """URL of database `name` on the operating server, (re)created empty when `fresh`."""
    server = runtime.data_url(settings)
    if fresh:
        admin = create_engine(
            local_postgres.with_driver(server, "psycopg"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(_ident(name))
            for statement in ("research.drop_database", "research.create_database"):
                conn.exec_driver_sql(raw_query(statement).format(name=quoted))
        admin.dispose()
    return local_postgres.with_database(server, name)


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise ValueError(f"database name must be letters, digits and _: {name!r}")
    return name


def run_research(
    settings: BreakoutSettings,
    files_dir: Path,
    *,
    database: str = "breakout_research",
    start: date = date(2015, 1, 2),
    test_start: date = date(2022, 1, 1),
    load: bool = True,
    echo: Echo = print,
) -> ResearchReport:
    runtime.apply_dagster_environment(settings)
    url = research_database(settings, database, fresh=load)
    rs = research_settings(settings, files_dir, url, start, test_start)
    source = build_resources(rs)["market_data"].source()
    last = source.last_session()
    if last is None:
        raise ValueError(f"{files_dir}: no stock bars to research")
    first_key, *_, last_key = sessions_to_keys(nyse_sessions(start, last))
    scan_from = sessions_to_keys(
        nyse_sessions(date.fromordinal(start.toordinal() + FEATURE_WARMUP_DAYS), last)
    )[0]
    seconds: dict[str, float] = {}
    echo(
        f"research on {files_dir} ({first_key}..{last_key}) in database '{database}'; "
        f"held out: signals from {test_start}"
    )
    if load:
        with _step(echo, seconds, "[1/4] market bars, index series, reference"):
            _materialize(rs, ["market_bars", "index_bars", "ticker_reference"], first_key, last_key)
        with _step(echo, seconds, "[2/4] features, signals, outcomes"):
            _materialize(
                rs, ["daily_features", "breakout_signals", "signal_outcomes"], scan_from, last_key
            )
    else:
        echo("[1-2/4] reusing the data already loaded in the research database")
    models = {}
    for side in ("long", "short"):
        with _step(echo, seconds, f"[3/4] {side} model (production training settings)"):
            models[side] = _train(rs, side)
    with _step(echo, seconds, "[4/4] opposing book on the held-out primaries"):
        opposing = _opposing(rs, models, echo)
    with build_resources(rs)["postgres"].transaction() as conn:
        baseline = pd.read_sql(
            query("research.baseline"),
            conn,
            params={"first": scan_from, "last": last_key, "test_start": test_start},
        )
    return ResearchReport((first_key, last_key), test_start, baseline, models, opposing, seconds)


@contextmanager
def _step(echo: Echo, seconds: dict[str, float], name: str) -> Iterator[None]:
    """Say what runs, then every minute that it still runs, then how long it took."""
    started = time.perf_counter()
    echo(f"{name} ...")
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(60):
            echo(f"      ... {name.split('] ')[-1]}: {time.perf_counter() - started:.0f} s")

    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()
    try:
        yield
    finally:
        done.set()
        seconds[name] = round(time.perf_counter() - started, 1)
        echo(f"      done in {seconds[name]:.0f} s")


def _materialize(
    rs: BreakoutSettings,
    names: list[str],
    first: str,
    last: str,
    instance: DagsterInstance | None = None,
    run_config: dict | None = None,
) -> Any:
    defs = build_definitions(rs)
    job = defs.resolve_implicit_global_asset_job_def()
    keys = [k for k in job.asset_layer.executable_asset_keys if k.to_user_string() in names]
    tags = (
        {_RANGE[0]: first, _RANGE[1]: last, "breakout/research": "true"}
        if first
        else {"breakout/research": "true"}
    )
    return job.execute_in_process(
        instance=instance or DagsterInstance.ephemeral(),
        asset_selection=keys,
        tags=tags,
        run_config={**_QUIET, **(run_config or {})},
    )


def _train(rs: BreakoutSettings, side: str) -> dict[str, Any]:
    with DagsterInstance.get() as instance:  # the project's instance: visible in the UI
        result = _materialize(rs, [f"{side}_model"], "", "", instance=instance)
    meta = result.asset_materializations_for_node(f"{side}_model")[0].metadata
    resources = build_resources(rs)
    with resources["postgres"].transaction() as conn:
        row = dict(
            conn.execute(
                query("research.experiment"), {"experiment_id": meta["experiment_id"].value}
            )
            .mappings()
            .one()
        )
        first, last = row["test_range"].split("..")
        trades = pd.read_sql(
            query("research.held_out_trades"),
            conn,
            params={"side": side, "first": first, "last": last},
        )
    booster, card = resources["model_store"].load(row["artifact_path"])
    row["decision"] = trade_decision_row(trades, model_confidence(booster, card, trades), rs)
    return row


def trade_decision_row(trades: pd.DataFrame, confidence, rs: BreakoutSettings) -> dict:
    """The held-out trades the system would take: confidence at the gate AND a net EV that
    earns a risk tier (core.sizing, the sizing decision; the regime filter is left out)."""
    cost = expected_costs_r(trades["entry"], trades["risk"], trades["atr"], rs.costs)
    take = [
        tier_for(float(p), expected_value(float(p), float(rr), float(c)), rs.sizing) is not None
        for p, rr, c in zip(confidence, trades["reward_risk"], cost, strict=True)
    ]
    chosen = trades[take]
    return {
        "strategy": "ML decision",
        "gate": rs.sizing.confidence_gate,
        **trade_stats(chosen["r_multiple"].to_numpy(), chosen["net_r_multiple"].to_numpy()),
    }


def _opposing(rs: BreakoutSettings, models: dict[str, dict], echo: Echo) -> pd.DataFrame:
    """The fades of the held-out primaries each just-trained model scored below the gate,
    whether or not it was promoted (the backtest is told which experiments to use)."""
    for side, m in models.items():
        if not m["promoted"]:
            echo(
                f"      note: the {side} model was not promoted; its fades are measured all the "
                "same, as research (it does not serve)"
            )
    run_config = {
        "ops": {
            "opposing_backtest": {
                "config": {
                    f"{side}_experiment_id": m["experiment_id"] for side, m in models.items()
                }
            }
        }
    }
    _materialize(rs, ["opposing_backtest"], "", "", run_config=run_config)
    with build_resources(rs)["postgres"].transaction() as conn:
        return pd.read_sql(query("research.opposing_results"), conn)


# --- the printed report ------------------------------------------------------------------------


def _pct(value: Any) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{100 * float(value):.1f}%"
    )


def _r(value: Any) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{float(value):+.3f}"
    )


def _num(value: Any, digits: int = 3) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{float(value):.{digits}f}"
    )


def _calibration_in_the_large(bins: list[dict]) -> tuple[float, float]:
    """Mean confidence and observed win rate over the held-out rows, from the 10-bin table."""
    filled = [b for b in bins if b["count"]]
    n = sum(b["count"] for b in filled)
    if not n:
        return math.nan, math.nan
    return (
        sum(b["mean_predicted"] * b["count"] for b in filled) / n,
        sum(b["observed_rate"] * b["count"] for b in filled) / n,
    )


def format_report(report: ResearchReport) -> str:
    lines = [
        f"\n=== Breakout research {report.range[0]}..{report.range[1]} "
        f"(held out from {report.test_start}); R is gross unless marked net"
    ]
    b = report.baseline
    lines.append(
        "\n-- Scanner only (every closed trade: target or stop; design = its held-out set)"
    )
    header = (
        f"{'side':<6}{'period':<10}{'signals':>8}{'/tick-yr':>9}{'R:R med':>8}"
        f"{'closed':>8}{'win':>7}{'exp R':>8}{'net R':>8}{'booked R':>9}{'avg win':>8}"
    )
    lines.append(header)
    for row in b.itertuples():
        lines.append(
            f"{row.side:<6}{row.period:<10}{row.signals:>8}{_num(row.per_ticker_year):>9}"
            f"{_num(row.median_reward_risk, 2):>8}{row.closed:>8}{_pct(row.win_rate):>7}"
            f"{_r(row.expectancy_r):>8}{_r(row.expectancy_net_r):>8}"
            f"{_r(row.booked_expectancy_r):>9}{_num(row.avg_winner_r, 2):>8}"
        )
    for side in ("long", "short"):
        d = DESIGN[side]["baseline"]
        lines.append(
            f"{side:<6}{'design':<10}{'':>8}{'':>9}{'':>8}{d['trades']:>8}"
            f"{_pct(d['win_rate']):>7}{'':>8}{'':>8}{_r(d['expectancy_r']):>9}"
        )
    lines.append(
        "  booked R counts a win as its R:R and a loss as -1 R (the description's "
        "accounting); exp R is the realised fill-to-exit R."
    )
    for side, m in report.models.items():
        metrics = m["metrics"]["metrics"]
        design = DESIGN[side]
        lines.append(
            f"\n-- {side} model {m['experiment_id']}: promoted={m['promoted']}, "
            f"train {m['train_range']}, test {m['test_range']}"
        )
        keys = ("accuracy", "roc_auc", "precision", "recall", "f1", "brier", "ece")
        lines.append("   " + "  ".join(f"{k} {_num(metrics.get(k))}" for k in keys))
        lines.append("   design " + "  ".join(f"{k} {_num(v)}" for k, v in design["model"].items()))
        mean_conf, rate = _calibration_in_the_large(m["metrics"]["calibration"])
        lines.append(
            f"   held out: mean confidence {_pct(mean_conf)} vs win rate {_pct(rate)} "
            "(a gap here is a shift of the base rate no calibrator fit on the past "
            "can see; it bounds the ECE from below)"
        )
        lines.append(
            f"   {'strategy':<14}{'gate':>6}{'trades':>8}{'win':>7}{'exp R':>8}"
            f"{'sum R':>9}{'net R':>8}{'sum net':>9}"
        )
        for e in [*m["metrics"]["expectancy"], *([m["decision"]] if "decision" in m else [])]:
            gate = "-" if e["gate"] is None else f"{e['gate']:.2f}"
            lines.append(
                f"   {e['strategy']:<14}{gate:>6}{e['trades']:>8}{_pct(e['win_rate']):>7}"
                f"{_r(e['expectancy_r']):>8}{_num(e['sum_r'], 1):>9}"
                f"{_r(e.get('expectancy_net_r')):>8}{_num(e.get('sum_net_r'), 1):>9}"
            )
        for name, d in (("scanner only", design["baseline"]), ("+ ML >= 0.50", design["gated"])):
            lines.append(
                f"   design {name:<14}{d['trades']:>5}{_pct(d['win_rate']):>7}"
                f"{_r(d['expectancy_r']):>8}"
            )
        lines.append(
            "   ML decision: confidence >= the gate AND net EV earns a risk tier (what "
            "trade_plan sizes; regime filter aside)"
        )
        lines.append(f"   promotion: {m['promotion']}")
    lines.append("\n-- Opposing book (primaries scored below the gate, held-out set)")
    if report.opposing is None or report.opposing.empty:
        lines.append("   no fades to measure")
    else:
        for row in report.opposing.itertuples():
            lines.append(
                f"   {row.backtest:<16}{row.direction:<32}{row.variant:<7}"
                f"{row.trades:>6}{_pct(row.win_rate):>7}{_r(row.expectancy_r):>8}"
                f"{_r(row.expectancy_net_r):>8} net"
            )
        for side, name in (
            ("long", "long primary -> opposing short"),
            ("short", "short primary -> opposing long"),
        ):
            d = DESIGN[side]["opposing"]
            lines.append(
                f"   {'design (1-hour)':<16}{name:<32}{'all':<7}{d['trades']:>6}"
                f"{_pct(d['win_rate']):>7}{_r(d['expectancy_r']):>8}"
            )
    lines.append(
        "\n-- time: "
        + ", ".join(f"{k.split('] ')[-1]} {v:.0f} s" for k, v in report.seconds.items())
    )
    return "\n".join(lines)

"""The options overlay's backtest (issue 11, item 6) on the real universe: figures by side.

Loads `../shared/data/daily/universe.parquet` (1,630 US stocks 2015-01..2024-03, linked as
`stocks.parquet`) into a research database of its own on the local server, exactly as
`breakout research` does (bars, index series, reference, then features, signals and outcomes as
range runs in an in-memory Dagster instance), then materialises `options_backtest` and prints,
per side: labelled signals, spreads closed, skipped (top reasons), win rate, mean R in debit
units, and the mean stock R (gross and net of costs) on the same signals.

Run: `.venv/bin/python benchmarks/report_options_backtest.py [--reuse] [--database NAME]`
(`--reuse` keeps a database this script, or `breakout research --database NAME`, loaded).

Figures (1,630 stocks, signals 2015-06..2024-03, default BREAKOUT_OPTIONS__*, no model scores
in this database so every confidence is the constant 0.5; load 7 min, the asset 43 s for 15,772
labelled signals on the 2 shared cores; a second run gave identical figures):

side   signals  spreads (trigger/expiry)  skipped (illiquid)  win    mean R  sum R
long   8,194    6,462 (1,312/5,150)       1,685 (1,355)       27.3%  -0.142  -918
short  7,578    4,441 (1,203/3,238)       3,124 (2,876)       28.9%  -0.172  -762
(R in debit units). The stock trades of the same signals: long 5,578 trades, 47.5% win,
+0.019 R gross / -0.036 R net; short 3,835, 44.5%, -0.059 / -0.114.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from dagster import DagsterInstance
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from breakout_assets import runtime  # noqa: E402
from breakout_assets.definitions import build_definitions  # noqa: E402
from breakout_assets.partitions import nyse_sessions, sessions_to_keys  # noqa: E402
from breakout_assets.research import (  # noqa: E402
    FEATURE_WARMUP_DAYS,
    research_database,
    research_settings,
)
from breakout_assets.resources import local_postgres  # noqa: E402
from breakout_assets.settings import load_settings  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
START = date(2015, 1, 2)
RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def files_dir() -> Path:
    """The universe laid out as the files source expects (links, no copies)."""
    folder = Path(tempfile.mkdtemp(prefix="breakout-options-"))
    (folder / "stocks.parquet").symlink_to(SHARED / "daily" / "universe.parquet")
    (folder / "indices.parquet").symlink_to(SHARED / "daily" / "indices.parquet")
    (folder / "reference.csv").symlink_to(SHARED / "reference" / "nasdaq_screener_2024.csv")
    return folder


def materialize(settings, names: list[str], first: str = "", last: str = ""):
    started = time.perf_counter()
    job = build_definitions(settings).resolve_implicit_global_asset_job_def()
    keys = [k for k in job.asset_layer.executable_asset_keys if k.to_user_string() in names]
    result = job.execute_in_process(
        instance=DagsterInstance.ephemeral(),
        asset_selection=keys,
        tags={RANGE[0]: first, RANGE[1]: last} if first else None,
        run_config=QUIET,
    )
    print(f"  {', '.join(names)}: {time.perf_counter() - started:.0f} s", flush=True)
    return result


def load(settings) -> None:
    last = date(2024, 3, 8)  # the universe's last session
    first_key, *_, last_key = sessions_to_keys(nyse_sessions(START, last))
    scan_from = sessions_to_keys(nyse_sessions(START + timedelta(days=FEATURE_WARMUP_DAYS), last))
    materialize(settings, ["market_bars", "index_bars", "ticker_reference"], first_key, last_key)
    materialize(
        settings, ["daily_features", "breakout_signals", "signal_outcomes"], scan_from[0], last_key
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="breakout_options_research")
    parser.add_argument("--reuse", action="store_true", help="keep the loaded database")
    args = parser.parse_args()
    base = load_settings()
    runtime.apply_dagster_environment(base)
    data = files_dir()
    url = research_database(base, args.database, fresh=not args.reuse)
    settings = research_settings(base, data, url, START, base.training.test_start)
    try:
        if not args.reuse:
            print(f"loading {SHARED / 'daily' / 'universe.parquet'} into '{args.database}'")
            load(settings)
        result = materialize(settings, ["options_backtest"])
    finally:
        shutil.rmtree(data, ignore_errors=True)
    meta = result.asset_materializations_for_node("options_backtest")[0].metadata
    engine = create_engine(local_postgres.with_driver(url, "psycopg"))
    with engine.connect() as conn:
        rows = pd.read_sql(
            text(
                "SELECT * FROM backtest_results WHERE backtest = 'options' ORDER BY side, variant"
            ),
            conn,
        )
        span = conn.execute(text("SELECT count(DISTINCT ticker) FROM market_bars")).scalar()
    engine.dispose()
    print(f"\noptions_backtest on {span} tickers ({meta['data_source'].value})")
    print(f"confidence: {meta['confidence'].value}")
    spreads = rows[rows["variant"] == "debit spread"].set_index("side")
    stock = rows[rows["variant"] == "stock, same signals"].set_index("side")
    print(
        f"{'side':<6}{'signals':>8}{'spreads':>8}{'skipped':>8}{'open':>6}{'win':>7}"
        f"{'mean R':>8}{'sum R':>9} |{'stock':>6}{'win':>7}{'R':>8}{'net R':>8}"
    )
    for side in spreads.index:
        r, k = spreads.loc[side], stock.loc[side]
        d = r["detail"] if isinstance(r["detail"], dict) else json.loads(r["detail"])
        print(
            f"{side:<6}{r['signals']:>8}{r['trades']:>8}{d['skipped']:>8}"
            f"{d['open_at_data_end'] + d['not_entered']:>6}{r['win_rate']:>7.1%}"
            f"{r['expectancy_r']:>+8.3f}{r['sum_r']:>+9.1f} |{k['trades']:>6}"
            f"{k['win_rate']:>7.1%}{k['expectancy_r']:>+8.3f}{k['expectancy_net_r']:>+8.3f}"
        )
        print(
            f"{'':<6}exits {d['exits']}; skipped: "
            + "; ".join(f"{kind} {n}" for kind, n in d["skip_reasons"][:4])
        )
    print(
        "\nspreads: R in debit units (-1 = the debit lost); open: planned but not entered, or "
        "still open when the bars end.\nstock: the stock trades (gross R, net of costs) of the "
        "closed spreads' signals whose bracket filled and closed."
    )
    print(f"\nrun time of options_backtest: {meta['seconds'].value} s")


if __name__ == "__main__":
    main()

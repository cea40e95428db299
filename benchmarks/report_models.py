"""Train both sides on the full real data set and print the held-out metrics and expectancy.

The whole chain runs as Dagster materialisations in a fresh database of the local Postgres:
bars, index series and reference from `../shared/data` (300 US stocks 2015-2024), daily
features, signals, outcomes, then `long_model` and `short_model` with a chronological split
holding out every signal from --test-start on.

Run: `.venv/bin/python benchmarks/report_models.py [--test-start 2023-01-01] [--trials 40]
[--label booked_target|profitable] [--skip-data]`
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from dagster import DagsterInstance, materialize
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from breakout_assets.definitions import build_assets, build_resources  # noqa: E402
from breakout_assets.model_admin import promote  # noqa: E402
from breakout_assets.resources import local_postgres  # noqa: E402
from breakout_assets.settings import load_settings  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
END = "2024-03-08"  # the real index series end here
RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def files_dir() -> Path:
    """The shared data laid out as the files source expects (links, no copies)."""
    folder = Path(tempfile.mkdtemp(prefix="breakout-real-"))
    for name in ("stocks.parquet", "indices.parquet"):
        (folder / name).symlink_to(SHARED / "daily" / name)
    (folder / "reference.csv").symlink_to(SHARED / "reference" / "nasdaq_screener_2024.csv")
    (folder / "hourly_raw").symlink_to(SHARED / "hourly_raw")
    return folder


def fresh_database(settings, name: str) -> str:
    server = local_postgres.ensure_local_server(settings.pg_data_dir)
    return local_postgres.recreate_database(server, name)


def run(settings, names, first=None, last=None, run_config=None):
    assets = [a for a in build_assets(settings) if a.key.to_user_string() in names]
    tags = {RANGE[0]: first, RANGE[1]: last} if first else None
    started = time.perf_counter()
    result = materialize(
        assets,
        resources=build_resources(settings),
        tags=tags,
        instance=DagsterInstance.ephemeral(),
        run_config=run_config,
    )
    print(f"  {', '.join(names)}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--test-start", default="2023-01-01")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--label", default="booked_target", choices=["booked_target", "profitable"])
    parser.add_argument("--database", default="breakout_real")
    parser.add_argument("--skip-data", action="store_true", help="reuse the labelled database")
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        help="use the synthetic source with this many tickers instead",
    )
    parser.add_argument("--start", default="2015-01-02")
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp(prefix="breakout-models-"))
    data = files_dir()
    base = load_settings()
    url = (
        local_postgres.with_database(
            local_postgres.ensure_local_server(base.pg_data_dir), args.database
        )
        if args.skip_data
        else fresh_database(base, args.database)
    )
    source = (
        {"data_source": "synthetic", "synthetic_tickers": args.synthetic}
        if args.synthetic
        else {"files_dir": data}
    )
    settings = load_settings(
        database_url=url, start_date=args.start, model_store_dir=store, **source
    )
    if not args.skip_data:
        run(settings, ["market_bars", "index_bars", "ticker_reference"], args.start, END)
        run(
            settings,
            ["daily_features", "breakout_signals", "signal_outcomes"],
            str(date.fromisoformat(args.start) + timedelta(days=150)),
            END,
        )
    engine = create_engine(local_postgres.with_driver(url, "psycopg"))
    with engine.connect() as conn:
        print(
            pd.read_sql(
                text("""
            SELECT s.side, o.status, count(*) AS signals,
                   round(avg(o.r_multiple)::numeric, 3) AS mean_r
            FROM signal_outcomes o JOIN breakout_signals s USING (signal_id)
            GROUP BY 1, 2 ORDER BY 1, 2"""),
                conn,
            ).to_string(index=False)
        )
    config = {"split": "chronological", "test_start": args.test_start, "label": args.label}
    if args.trials:
        config["trials"] = args.trials
    for side in ("long", "short"):
        try:
            result = run(
                settings,
                [f"{side}_model"],
                run_config={"ops": {f"{side}_model": {"config": config}}},
            )
        except Exception as error:  # noqa: BLE001 - report and go on with the other side
            print(f"\n=== {side}: training failed: {str(error).splitlines()[0]}")
            print(f"    {getattr(error, '__cause__', None) or error}")
            continue
        meta = result.asset_materializations_for_node(f"{side}_model")[0].metadata
        print(f"\n=== {side}: {meta['experiment_id'].value} promoted={meta['promoted'].value}")
        for key in (
            "train_range",
            "test_range",
            "train_rows",
            "test_rows",
            "objective",
            "cv_score",
        ):
            print(f"{key:>12}: {meta[key].value}")
        print("features:", meta["features"].value)
        print("metrics:", meta["metrics"].value)
        print(meta["expectancy"].value)
        print(meta["calibration"].value)
        print("promotion:", meta["promotion"].value)
    # The backtests need a serving model per side: promote the run just trained if the rules
    # refused it (said so: these figures are a research report, not a promotion).
    with engine.connect() as conn:
        latest = conn.execute(
            text("""SELECT DISTINCT ON (side) side, experiment_id, promoted
                                      FROM model_experiments ORDER BY side, created_at DESC""")
        ).all()
    for _side, experiment_id, promoted in latest:
        if not promoted:
            print(f"(forcing {experiment_id} to serve for the backtests only)")
            promote(settings, experiment_id, force=True)
    for name in ("primary_backtest", "opposing_backtest"):
        meta = run(settings, [name]).asset_materializations_for_node(name)[0].metadata
        print(f"\n=== {name} on {meta['data_source'].value}")
        print(meta["results"].value)
        if "coverage" in meta:
            print(meta["coverage"].value)
    engine.dispose()
    shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()

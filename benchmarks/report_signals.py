"""Signals per side per year and median R:R on a directory of real daily bars.

Default: the full shared data set (300 US stocks 2015-2024 with the index series). The scan is
the same `core.scanner.scan` the `breakout_signals` asset runs.

Run: `.venv/bin/python benchmarks/report_signals.py [--files-dir DIR]`
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from breakout_assets.core.scanner import MarketArrays, index_close_arrays, scan  # noqa: E402
from breakout_assets.core.sectors import MARKET_ETF  # noqa: E402
from breakout_assets.settings import load_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files-dir", default=str(ROOT.parent / "shared" / "data" / "daily"))
    parser.add_argument(
        "--reference",
        default=str(ROOT.parent / "shared" / "data" / "reference" / "nasdaq_screener_2024.csv"),
    )
    args = parser.parse_args()
    stocks = pd.read_parquet(Path(args.files_dir) / "stocks.parquet")
    stocks = stocks.rename(columns={"date": "session"})
    stocks["session"] = pd.to_datetime(stocks["session"])
    indices = pd.read_parquet(Path(args.files_dir) / "indices.parquet")
    indices = indices.rename(columns={"date": "session"})
    indices["session"] = pd.to_datetime(indices["session"])

    arrays = MarketArrays.from_bars(stocks)
    screener = pd.read_csv(args.reference)
    sector = dict(zip(screener["ticker"], screener["sector"], strict=True))
    from breakout_assets.core.sectors import sector_etf

    available = set(indices["ticker"])
    etfs = np.array(
        [
            sector_etf(sector.get(t), available) if t in sector else MARKET_ETF
            for t in arrays.tickers
        ]
    )
    config = load_settings().scanner
    started = time.perf_counter()
    setups = scan(
        arrays,
        config,
        index_close=index_close_arrays(indices, arrays.sessions),
        sector_etf_of_ticker=etfs,
    )
    seconds = time.perf_counter() - started
    frame = setups.to_frame(arrays)
    frame["year"] = frame["session"].dt.year
    table = frame.pivot_table(
        index="year", columns="side", values="entry", aggfunc="count", fill_value=0
    )
    rr = frame.groupby("side")["reward_risk"].median()
    print(
        f"{len(arrays.tickers)} tickers x {len(arrays.sessions)} sessions "
        f"({arrays.sessions[0]}..{arrays.sessions[-1]}), scanned in {seconds:.2f}s"
    )
    years = len(arrays.sessions) / 252
    print("\nsignals per side per year")
    print(table.to_string())
    print(
        f"\ntotal: {len(frame)} ({(frame['side'] == 'long').sum()} long, "
        f"{(frame['side'] == 'short').sum()} short); "
        f"per ticker per year: {len(frame) / len(arrays.tickers) / years:.2f}"
    )
    print("median reward:risk by side:", {k: round(v, 2) for k, v in rr.items()})
    print("median reward:risk, all:", round(float(frame["reward_risk"].median()), 2))
    print(
        "adjusted entries:",
        f"{frame['adjusted_entry'].mean():.0%}",
        "| stop rule:",
        frame["stop_rule"].value_counts().to_dict(),
    )
    booked = frame.loc[~frame["adjusted_entry"], "reward_risk"].median()
    print("median reward:risk of non-adjusted (target_50) entries:", round(float(booked), 2))


if __name__ == "__main__":
    main()

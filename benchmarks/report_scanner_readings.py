"""The scanner-only baseline of each documented reading of the scanner and the booked target, on
real daily bars (default: the 1,630-stock universe 2015-2024), with the labels' rule (target or
stop decides, no time cut). Core code only (`core.scanner.scan` + `core.outcomes.replay`), no
database: the research command gives the same figures through the assets.

Run: `.venv/bin/python benchmarks/report_scanner_readings.py [--stocks PATH]`

Columns per side: signals per ticker-year, median R:R, share of "adjusted" (2 x MH) targets,
closed trades, win rate, realised expectancy (fill to exit, gross), booked expectancy (the
description's accounting: a win counts its R:R, a loss -1 R), average winner (realised).
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

from breakout_assets.core.outcomes import Status, label_setups  # noqa: E402
from breakout_assets.core.scanner import MarketArrays, ScannerConfig, scan  # noqa: E402

OLD = dict(
    rally_min_pct=0.12,
    rally_min_efficiency=0.5,
    consol_max_retracement=0.5,
    consol_max_range_pct=0.12,
    breakout_min_volume_ratio=1.0,
)
READINGS = {
    "before (12% rally, 0.618 candle -> 2 x MH)": dict(OLD, adjusted_entry_fib=0.618),
    "before, booked target always 50%": OLD,
    "+ 5% rally": dict(OLD, rally_min_pct=0.05),
    "+ 5% rally, 78.6% retracement": dict(OLD, rally_min_pct=0.05, consol_max_retracement=0.786),
    "+ 25% base": dict(
        OLD, rally_min_pct=0.05, consol_max_retracement=0.786, consol_max_range_pct=0.25
    ),
    "+ 15% base, no efficiency or volume rule": dict(
        rally_min_pct=0.05, consol_max_retracement=0.786, consol_max_range_pct=0.15
    ),
    "DEFAULTS (25% base, no efficiency or volume rule)": {},
    "defaults + 0.618 candle -> 2 x MH": dict(adjusted_entry_fib=0.618),
    "defaults + 3-bar swings, rally <= 40, base <= 120 bars": dict(
        swing_bars=3, rally_max_bars=40, consol_max_bars=120
    ),
    "defaults, stop 1.5 ATR": dict(stop_atr_multiple=1.5),
    "defaults, stop 2.5 ATR": dict(stop_atr_multiple=2.5),
}


def load(path: Path) -> MarketArrays:
    bars = pd.read_parquet(path).rename(columns={"date": "session"})
    return MarketArrays.from_bars(bars)


def reading(arrays: MarketArrays, config: ScannerConfig) -> dict[str, dict]:
    setups = scan(arrays, config, features=False)
    out = label_setups(arrays, setups)
    ticker_years = (~np.isnan(arrays.close)).sum() / 252
    figures = {}
    for side, name in ((1, "long"), (-1, "short")):
        mine = setups.side == side
        closed = mine & np.isin(out.status, (Status.WIN, Status.LOSS))
        win = out.status[closed] == Status.WIN
        r = out.r_multiple[closed]
        booked = np.where(win, setups.reward_risk[closed], -1.0)
        figures[name] = {
            "per_ty": mine.sum() / ticker_years,
            "rr": float(np.median(setups.reward_risk[mine])) if mine.any() else np.nan,
            "adjusted": float(setups.adjusted_entry[mine].mean()) if mine.any() else np.nan,
            "closed": int(closed.sum()),
            "win": float(win.mean()) if win.size else np.nan,
            "exp": float(r.mean()) if r.size else np.nan,
            "booked": float(booked.mean()) if booked.size else np.nan,
            "avg_win": float(r[win].mean()) if win.any() else np.nan,
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--stocks",
        type=Path,
        default=ROOT.parent / "shared" / "data" / "daily" / "universe.parquet",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    arrays = load(args.stocks)
    print(
        f"{len(arrays.tickers)} tickers x {len(arrays.sessions)} sessions "
        f"({arrays.sessions[0]}..{arrays.sessions[-1]}), loaded in "
        f"{time.perf_counter() - started:.0f} s; design: long 48.1% / -0.04 R, "
        "short 40.4% / -0.12 R (booked accounting)\n"
    )
    print(
        f"{'reading':<58}{'side':<6}{'/t-yr':>6}{'R:R':>6}{'adj':>6}{'closed':>7}"
        f"{'win':>7}{'exp R':>8}{'booked':>8}{'avg win':>8}"
    )
    for name, overrides in READINGS.items():
        figures = reading(arrays, ScannerConfig(**overrides))
        for side, f in figures.items():
            print(
                f"{name if side == 'long' else '':<58}{side:<6}{f['per_ty']:>6.2f}"
                f"{f['rr']:>6.2f}{f['adjusted']:>6.0%}{f['closed']:>7}{f['win']:>7.1%}"
                f"{f['exp']:>+8.3f}{f['booked']:>+8.3f}{f['avg_win']:>8.2f}"
            )


if __name__ == "__main__":
    main()

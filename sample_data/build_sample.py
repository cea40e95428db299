"""Build the bundled sample (`sample_data/`) from the shared real data set.

Selection rule (deterministic, re-running gives identical files):

* Stocks: sessions 2018-01-02 .. 2024-03-08 of `daily/stocks.parquet`, 150 tickers.
  - Always included: those of AAPL, AMZN, GOOG, NFLX, TSLA and META that the daily set has.
    Only META is there (it is FB in the hourly files); the other five have no daily series.
  - The rest: tickers are grouped by the screener's sector (no screener row or an empty
    sector -> group "(none)") and ranked inside each group by median dollar volume
    (close * volume) over the window, ties by ticker. Groups are visited in name order, taking
    the next most liquid ticker of each group per round, until 150 tickers are chosen. Small
    sectors are exhausted early, so every sector is represented and the big ones fill the rest.
* Indices: all tickers of `daily/indices.parquet`, sessions 2017-01-03 .. 2024-03-08 (a year of
  history before the first stock session, for warm-up windows).
* `reference.csv`: the screener's lines, byte for byte, for the chosen tickers and any index
  ticker the screener has (it has none of them).
* `hourly_raw/`: the raw hourly CSVs copied unaltered.

Usage: `.venv/bin/python sample_data/build_sample.py [--source /work/shared/data]`.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SOURCE = Path("/work/shared/data")
TARGET = Path(__file__).resolve().parent
N_TICKERS = 150
STOCK_START, STOCK_END = date(2018, 1, 2), date(2024, 3, 8)
INDEX_START, INDEX_END = date(2017, 1, 3), date(2024, 3, 8)
MUST_INCLUDE = ("AAPL", "AMZN", "GOOG", "NFLX", "TSLA", "META")
NO_SECTOR = "(none)"


def between(table: pa.Table, start: date, end: date) -> pa.Table:
    """Rows whose `date` lies in [start, end]."""
    mask = pc.and_(pc.greater_equal(table["date"], start), pc.less_equal(table["date"], end))
    return table.filter(mask)


def screener_sectors(path: Path) -> dict[str, str]:
    with path.open(newline="") as fh:
        return {row["ticker"]: row["sector"] for row in csv.DictReader(fh) if row["ticker"]}


def liquidity_by_ticker(stocks: pa.Table) -> dict[str, float]:
    """Median dollar volume per ticker over the sample window."""
    frame = stocks.select(["ticker", "close", "volume"]).to_pandas()
    frame["dollar_volume"] = frame["close"] * frame["volume"]
    return frame.groupby("ticker")["dollar_volume"].median().to_dict()


def choose_tickers(liquidity: dict[str, float], sectors: dict[str, str]) -> list[str]:
    """The selection rule in the module docstring."""
    chosen = [t for t in MUST_INCLUDE if t in liquidity]
    groups: dict[str, list[str]] = {}
    for ticker in sorted(liquidity, key=lambda t: (-liquidity[t], t)):
        if ticker not in chosen:
            groups.setdefault(sectors.get(ticker) or NO_SECTOR, []).append(ticker)
    queues = [groups[name] for name in sorted(groups)]
    while len(chosen) < N_TICKERS and any(queues):
        for queue in queues:
            if queue and len(chosen) < N_TICKERS:
                chosen.append(queue.pop(0))
    return sorted(chosen)


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", compression_level=9)


def copy_screener_lines(source: Path, target: Path, tickers: set[str]) -> int:
    """Copy the header and the lines of `tickers` unchanged; returns the number of rows."""
    lines = source.read_text().splitlines(keepends=True)
    kept = [line for line in lines[1:] if next(csv.reader([line]))[0] in tickers]
    target.write_text(lines[0] + "".join(kept))
    return len(kept)


def build(source: Path, target: Path) -> None:
    stocks = between(pq.read_table(source / "daily" / "stocks.parquet"), STOCK_START, STOCK_END)
    screener = source / "reference" / "nasdaq_screener_2024.csv"
    tickers = choose_tickers(liquidity_by_ticker(stocks), screener_sectors(screener))
    stocks = stocks.filter(pc.is_in(stocks["ticker"], pa.array(tickers)))
    write_parquet(stocks, target / "stocks.parquet")

    indices = between(pq.read_table(source / "daily" / "indices.parquet"), INDEX_START, INDEX_END)
    write_parquet(indices, target / "indices.parquet")

    index_tickers = set(pc.unique(indices["ticker"]).to_pylist())
    n_ref = copy_screener_lines(screener, target / "reference.csv", set(tickers) | index_tickers)

    hourly = target / "hourly_raw"
    hourly.mkdir(exist_ok=True)
    for path in sorted((source / "hourly_raw").glob("*.csv")):
        shutil.copyfile(path, hourly / path.name)
    print(
        f"stocks: {stocks.num_rows} rows, {len(tickers)} tickers; indices: {indices.num_rows} "
        f"rows; reference: {n_ref} rows; hourly files: {len(list(hourly.glob('*.csv')))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--target", type=Path, default=TARGET)
    args = parser.parse_args()
    build(args.source, args.target)


if __name__ == "__main__":
    main()

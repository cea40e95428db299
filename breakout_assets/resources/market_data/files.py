"""The FILES market-data source: bars and reference data from a local directory.

Layout (the bundled `sample_data/` is one):

* `stocks.parquet` or `stocks.csv` and `indices.parquet` or `indices.csv`, columns
  `ticker, date, open, high, low, close, volume` (parquet wins when both exist);
* `reference.csv`, the NASDAQ screener format (`ticker, name, market_cap, sector, industry`
  are used; `country, ipo_year` may be present);
* optional `hourly_raw/{TICKER}.csv` in the raw vendor format (see `core.hourly`).

Each file is read once per instance, on first use. A file that is missing, unreadable or lacks
columns raises MarketDataError naming it; a malformed value inside a readable file becomes NaN
(via `conform_bars`) so the quality layer can quarantine the row. Rows dated on a weekend or
holiday come with the session after them, and rows whose date cannot be parsed with the first
chunk of every run: the quality layer quarantines both with their reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from breakout_assets.core.bars import REFERENCE_COLUMNS, conform_bars, empty_bars
from breakout_assets.core.hourly import RAW_COLUMNS, HourlyDataError, normalise_hourly
from breakout_assets.core.sectors import sector_etf
from breakout_assets.resources.market_data.base import (
    MarketDataError,
    MarketDataSource,
    MissingDataError,
    answered_non_sessions,
)

FILE_COLUMNS = ("ticker", "date", "open", "high", "low", "close", "volume")
REFERENCE_FILE_COLUMNS = ("ticker", "name", "market_cap", "sector", "industry")
_TICKER = re.compile(r"^[A-Za-z0-9.\-]+$")
_SHOWN = 5


@dataclass(frozen=True)
class BarFile:
    """One bar file, conformed: dated rows sorted by session then ticker, and the undated rows."""

    path: Path
    frame: pd.DataFrame
    undated: pd.DataFrame

    @property
    def covered(self) -> str:
        sessions = self.frame["session"]
        if sessions.empty:
            return "no sessions"
        return f"{sessions.min():%Y-%m-%d} .. {sessions.max():%Y-%m-%d}"

    @cached_property
    def tickers(self) -> frozenset[str]:
        return frozenset(self.frame["ticker"].dropna().unique())

    def select(
        self,
        sessions: Sequence[date],
        tickers: Sequence[str] | None = None,
        undated: bool = False,
    ) -> pd.DataFrame:
        """Rows of the sessions (and tickers), with the rows dated on the weekends and holidays
        the sessions answer for, and (`undated`) the rows without a readable date.

        MissingDataError for a session without rows.
        """
        wanted = _session_index(sessions)
        if wanted.empty:
            return empty_bars()
        strays = _session_index(answered_non_sessions([d.date() for d in wanted]))
        mask = self.frame["session"].isin(wanted.append(strays))
        if tickers is not None:
            mask &= self.frame["ticker"].isin(list(tickers))
        rows = self.frame.loc[mask]
        absent = wanted.difference(pd.DatetimeIndex(rows["session"].unique()))
        if len(absent):
            shown = ", ".join(f"{s:%Y-%m-%d}" for s in absent[:_SHOWN])
            more = f" and {len(absent) - _SHOWN} more" if len(absent) > _SHOWN else ""
            raise MissingDataError(
                f"no bars for session(s) {shown}{more} in {self.path} (it covers {self.covered})"
            )
        if undated and len(self.undated):
            lost = self.undated
            if tickers is not None:
                lost = lost.loc[lost["ticker"].isin(list(tickers))]
            rows = pd.concat([rows, lost])
        return rows.reset_index(drop=True)


class FilesSource(MarketDataSource):
    """Market data read from files in `directory`.

    `hourly_aliases` maps an hourly file's ticker to the daily ticker of the same company
    (e.g. {"FB": "META"}); without it such a file is rejected, since nothing proves the match.
    `reference_date` is the screener snapshot's date (default: the last stock session).
    """

    name = "files"

    @property
    def origin(self) -> str:
        return f"files in {self.directory}"

    def __init__(
        self,
        directory: str | Path,
        hourly_aliases: Mapping[str, str] | None = None,
        reference_date: date | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.hourly_aliases = dict(hourly_aliases or {})
        self.reference_date = reference_date

    # --- daily bars ----------------------------------------------------------------------------

    def last_session(self) -> date | None:
        sessions = self.stocks.frame["session"]
        return None if sessions.empty else sessions.max().date()

    @cached_property
    def stocks(self) -> BarFile:
        return _read_bar_file(self.directory, "stocks")

    @cached_property
    def indices(self) -> BarFile:
        return _read_bar_file(self.directory, "indices")

    def daily_bars(self, sessions: Sequence[date]) -> pd.DataFrame:
        return self.stocks.select(sessions)

    def iter_daily_bars(
        self, sessions: Sequence[date], chunk_sessions: int
    ) -> Iterator[pd.DataFrame]:
        """`daily_bars` in chunks of `chunk_sessions` sessions, oldest first (bounded memory)."""
        if chunk_sessions < 1:
            raise ValueError(f"chunk_sessions must be >= 1, got {chunk_sessions}")
        ordered = _session_index(sessions)
        for start in range(0, len(ordered), chunk_sessions):
            yield self.stocks.select(ordered[start : start + chunk_sessions], undated=start == 0)

    def index_bars(self, sessions: Sequence[date], tickers: Sequence[str]) -> pd.DataFrame:
        unknown = sorted(set(tickers) - self.indices.tickers)
        if unknown:
            raise MarketDataError(
                f"index ticker(s) {unknown} are not in {self.indices.path} "
                f"(it has {sorted(self.indices.tickers)})"
            )
        return self.indices.select(sessions, tickers, undated=True)

    # --- reference -----------------------------------------------------------------------------

    @cached_property
    def screener(self) -> pd.DataFrame:
        return _read_screener(self.directory / "reference.csv")

    def ticker_reference(self, as_of: date) -> pd.DataFrame:
        """One row per stock-file ticker with a bar on or before `as_of` (index ETFs excluded).

        Screener fields are a spring-2024 snapshot (lookahead for earlier dates); tickers absent
        from the screener get nulls. `sector_etf` is the sector's SPDR when the indices file has
        it, else SPY. `shares_outstanding` is the screener's market cap over the ticker's close
        at the snapshot (`reference_date`): dividing by the close at `as_of` would mix a 2024
        value with an older price.
        """
        stocks = self.stocks.frame
        known = stocks.loc[stocks["session"] <= pd.Timestamp(as_of), "ticker"].dropna().unique()
        out = pd.DataFrame({"ticker": pd.Series(sorted(known), dtype="string")})
        out = out.merge(self.screener, on="ticker", how="left")
        available = self.indices.tickers
        out["sector_etf"] = pd.Series(
            [sector_etf(None if pd.isna(s) else s, available) for s in out["sector"]],
            dtype="string",
        )
        closes = self._snapshot_closes().reindex(out["ticker"]).to_numpy()
        out["shares_outstanding"] = out["market_cap"] / closes
        return out[list(REFERENCE_COLUMNS)]

    def _snapshot_closes(self) -> pd.Series:
        """Each ticker's last positive close at or before the screener snapshot."""
        stocks = self.stocks.frame
        rows = stocks.loc[stocks["close"] > 0]
        if self.reference_date is not None:
            rows = rows.loc[rows["session"] <= pd.Timestamp(self.reference_date)]
        return rows.groupby("ticker")["close"].last()

    # --- hourly --------------------------------------------------------------------------------

    def hourly_bars(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """Normalised hourly bars of sessions start..end, reconciled with the stock file."""
        path = self._hourly_path(ticker)
        raw = _read_raw_hourly(path)
        days = raw["date"].astype("string").str.slice(0, 10)
        raw = raw.loc[(days >= start.isoformat()) & (days <= end.isoformat())]
        file_tickers = set(raw["ticker"].dropna().astype(str).str.strip())
        if file_tickers - {ticker}:
            raise MarketDataError(f"{path} holds bars of {sorted(file_tickers)}, not {ticker}")
        daily_ticker = self.hourly_aliases.get(ticker, ticker)
        daily = self.stocks.frame.loc[self.stocks.frame["ticker"] == daily_ticker]
        try:
            return normalise_hourly(raw, daily.assign(ticker=ticker))
        except HourlyDataError as exc:
            raise MarketDataError(f"{path}: {exc}") from exc

    def _hourly_path(self, ticker: str) -> Path:
        if not _TICKER.match(ticker):
            raise MarketDataError(f"not a ticker: {ticker!r}")
        path = self.directory / "hourly_raw" / f"{ticker}.csv"
        if not path.is_file():
            raise MarketDataError(f"no hourly bars for {ticker}: {path} does not exist")
        return path


def _session_index(sessions: Sequence[date]) -> pd.DatetimeIndex:
    """Requested sessions as sorted, unique, naive midnights."""
    return pd.DatetimeIndex(pd.to_datetime(list(sessions))).normalize().unique().sort_values()


def _read_bar_file(directory: Path, stem: str) -> BarFile:
    parquet, csv = directory / f"{stem}.parquet", directory / f"{stem}.csv"
    path = parquet if parquet.is_file() else csv
    if not path.is_file():
        raise MarketDataError(f"no {stem}.parquet or {stem}.csv in {directory}")
    table = _read_table(path)
    missing = sorted(set(FILE_COLUMNS) - set(table.column_names))
    if missing:
        raise MarketDataError(f"{path} lacks columns {missing} (needs {list(FILE_COLUMNS)})")
    frame = table.select(list(FILE_COLUMNS)).to_pandas(date_as_object=False)
    bars = conform_bars(frame.rename(columns={"date": "session"}))
    bars["session"] = bars["session"].astype("datetime64[us]")  # one unit for parquet and CSV
    dated = bars["session"].notna()
    frame = bars.loc[dated].sort_values(["session", "ticker"], kind="stable")
    return BarFile(
        path=path,
        frame=frame.reset_index(drop=True),
        undated=bars.loc[~dated].reset_index(drop=True),
    )


def _read_table(path: Path) -> pa.Table:
    """The file as an Arrow table; any read or parse failure names the file."""
    try:
        if path.suffix == ".parquet":
            return pq.read_table(path)
        convert = pacsv.ConvertOptions(column_types={"ticker": pa.string()})
        return pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise MarketDataError(f"cannot read {path}: {exc}") from exc


def _read_screener(path: Path) -> pd.DataFrame:
    """Screener rows by ticker: blank text -> null, market cap <= 0 or malformed -> null."""
    if not path.is_file():
        raise MarketDataError(f"no reference file: {path} does not exist")
    try:
        raw = pd.read_csv(path, dtype="string", keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise MarketDataError(f"cannot read {path}: {exc}") from exc
    missing = sorted(set(REFERENCE_FILE_COLUMNS) - set(raw.columns))
    if missing:
        raise MarketDataError(f"{path} lacks columns {missing} (screener format)")
    text = raw[["ticker", "name", "sector", "industry"]].apply(lambda c: c.str.strip())
    out = text.mask(text == "")
    cap = pd.to_numeric(raw["market_cap"], errors="coerce").astype("float64")
    out["market_cap"] = cap.where(cap > 0)
    out = out.loc[out["ticker"].notna()].drop_duplicates("ticker", keep="first")
    return out.reset_index(drop=True)


def _read_raw_hourly(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, dtype={"date": "string", "ticker": "string"})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise MarketDataError(f"cannot read {path}: {exc}") from exc
    missing = sorted(set(RAW_COLUMNS) - set(raw.columns))
    if missing:
        raise MarketDataError(f"{path} lacks columns {missing} (raw hourly format)")
    return raw

"""Normalise raw vendor hourly bars into the `core.bars.HOURLY_COLUMNS` contract, or reject them.

The raw format (`hourly_raw/{TICKER}.csv`) is `,date,ticker,data.open,data.high,data.low,
data.close,data.volume,data.is_extended_hours`, newest first, with New York wall-clock times
wrongly labelled `Z`, and NOT split-adjusted. What the real files (2020-04-29 .. 2022-04-29)
look like: only regular-session buckets, labelled by the hour they fall in (09:00 .. 15:00, the
09:00 bucket starting with the 09:30 opening trade, four buckets on early-close days); on some
sessions a tiny (~100 shares) bucket after the close (16:00, or 13:00 on an early close) that the
vendor still flags as regular; no duplicates; volume a few percent of the consolidated daily
volume (one venue), closes within 0.3% of the daily close.

Rules, in order:

1. Columns: the raw columns above are required (the unnamed index is ignored); the frame holds
   one ticker. An empty frame gives an empty result.
2. Time: the designator (`Z` or an offset) is dropped and the wall clock kept as
   America/New_York; `ts` is the vendor's bucket start, never shifted as if it were UTC. If the
   median first bucket of a day is not between 04:00 and 10:00 the clock is not New York's and
   the file is rejected.
3. Bad rows (unparseable time or number, a price <= 0, negative volume, high/low not bounding
   open/close) are dropped; more than `MAX_BAD_ROW_FRACTION` of them rejects the file.
4. Duplicate timestamps keep the bar with the largest volume (a bar published before its hour
   ended is partial, so the complete one has the most volume).
5. `is_extended_hours` is the vendor flag OR "the hour bucket does not overlap the NYSE
   session's [open, close)" (exchange_calendars XNYS, so early closes count).
6. Splits: per session, ratio = last regular bucket close / daily close. A ratio within
   `CLOSE_TOLERANCE` of a split factor (an integer, its reciprocal, or a fraction with
   denominator <= 4 below 3, e.g. 3/2) gives that session's factor; prices are divided and
   volume multiplied by it, so every session matches the split-adjusted daily series, including
   splits after the hourly data ends (TSLA's 2022 3:1 makes its 2020 factors 15 and 3). A run of
   the same factor shorter than `MIN_FACTOR_RUN` sessions between two others is a blip, not a
   split.
7. Reconciliation: sessions without a factor (no daily bar, no ratio fits, a blip) are dropped;
   if they exceed `MAX_UNRECONCILED_FRACTION` of the sessions the ticker is rejected. A ticker
   with no daily series at all (e.g. FB, which the daily set calls META) is rejected: rename the
   daily rows first if you know they are the same company.

Rejections raise `HourlyDataError` naming the ticker and the reason.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from functools import lru_cache

import exchange_calendars as xc
import numpy as np
import pandas as pd

from breakout_assets.core.bars import HOURLY_COLUMNS, PRICE_COLUMNS

NEW_YORK = "America/New_York"
BAR_LENGTH = pd.Timedelta(hours=1)
RAW_COLUMNS = {
    "date": "ts",
    "ticker": "ticker",
    "data.open": "open",
    "data.high": "high",
    "data.low": "low",
    "data.close": "close",
    "data.volume": "volume",
    "data.is_extended_hours": "is_extended_hours",
}
CLOSE_TOLERANCE = 0.01
MAX_UNRECONCILED_FRACTION = 0.02
MAX_BAD_ROW_FRACTION = 0.01
MIN_FACTOR_RUN = 5
MAX_FRACTION_DENOMINATOR = 4
FIRST_BAR_HOURS = (4, 10)
_OHLC_EPS = 1e-9


class HourlyDataError(ValueError):
    """Raw hourly bars that cannot be normalised; the message names the ticker and why."""


def empty_hourly() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticker": pd.Series([], dtype="string"),
            "ts": pd.Series([], dtype=f"datetime64[us, {NEW_YORK}]"),
            **{c: pd.Series([], dtype="float64") for c in PRICE_COLUMNS + ("volume",)},
            "is_extended_hours": pd.Series([], dtype="bool"),
        }
    )[list(HOURLY_COLUMNS)]


def normalise_hourly(raw: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """Chronological, New York-clocked, split-adjusted hourly bars reconciled with `daily`.

    `daily` holds daily bars with `ticker`, `session` (or `date`) and `close`; only the raw
    ticker's rows are used. See the module docstring for the rules.
    """
    missing = sorted(set(RAW_COLUMNS) - set(raw.columns))
    if missing:
        raise HourlyDataError(f"raw hourly frame lacks columns {missing}")
    if raw.empty:
        return empty_hourly()
    bars = _parse(raw)
    ticker = _single_ticker(bars)
    bars = _dedupe(_drop_bad_rows(bars, ticker))
    _check_new_york_clock(bars, ticker)
    bars["is_extended_hours"] = bars["is_extended_hours"] | ~_in_regular_session(bars["ts"])
    factors = _session_factors(bars, _daily_closes(daily, ticker), ticker)
    return _adjust(bars, factors)


def _parse(raw: pd.DataFrame) -> pd.DataFrame:
    """Raw columns renamed and typed; malformed values become NaN/NaT (judged in rule 3)."""
    bars = raw[list(RAW_COLUMNS)].rename(columns=RAW_COLUMNS)
    out = pd.DataFrame({"ticker": bars["ticker"].astype("string").str.strip()})
    out["ts"] = _wall_clock(bars["ts"])
    for col in PRICE_COLUMNS + ("volume",):
        out[col] = pd.to_numeric(bars[col], errors="coerce").astype("float64")
    flag = bars["is_extended_hours"].astype("string").str.strip().str.lower()
    out["is_extended_hours"] = flag.isin(["true", "1", "1.0"]).astype("bool")
    return out


def _wall_clock(values: pd.Series) -> pd.Series:
    """The written clock time as New York time, whatever zone the vendor claimed."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        naive = values.dt.tz_localize(None)
    else:
        text = values.astype("string").str.strip()
        text = text.str.replace(r"(?:Z|[+-]\d{2}:?\d{2})$", "", regex=True)
        naive = pd.to_datetime(text, format="ISO8601", errors="coerce")
    naive = naive.astype("datetime64[us]")
    return naive.dt.tz_localize(NEW_YORK, ambiguous="NaT", nonexistent="NaT")


def _single_ticker(bars: pd.DataFrame) -> str:
    tickers = bars["ticker"].dropna().unique()
    if len(tickers) != 1:
        raise HourlyDataError(f"raw hourly frame must hold one ticker, found {list(tickers)}")
    return str(tickers[0])


def _bad_row_reasons(bars: pd.DataFrame) -> pd.DataFrame:
    prices = bars[list(PRICE_COLUMNS)]
    top = bars[["open", "close", "low"]].max(axis=1)
    bottom = bars[["open", "close", "high"]].min(axis=1)
    return pd.DataFrame(
        {
            "unparseable time": bars["ts"].isna() | bars["ticker"].isna(),
            "missing or non-numeric value": bars[list(PRICE_COLUMNS) + ["volume"]]
            .isna()
            .any(axis=1),
            "price <= 0": (prices <= 0).any(axis=1),
            "negative volume": bars["volume"] < 0,
            "high/low not bounding open/close": (bars["high"] < top * (1 - _OHLC_EPS))
            | (bars["low"] > bottom * (1 + _OHLC_EPS)),
        }
    )


def _drop_bad_rows(bars: pd.DataFrame, ticker: str) -> pd.DataFrame:
    reasons = _bad_row_reasons(bars)
    bad = reasons.any(axis=1)
    if bad.mean() > MAX_BAD_ROW_FRACTION:
        counts = {k: int(v) for k, v in reasons.sum().items() if v}
        raise HourlyDataError(
            f"{ticker}: {int(bad.sum())} of {len(bars)} hourly rows are bad {counts}, more than "
            f"the {MAX_BAD_ROW_FRACTION:.0%} tolerated"
        )
    return bars.loc[~bad]


def _dedupe(bars: pd.DataFrame) -> pd.DataFrame:
    """Chronological, one bar per timestamp: the one with the largest volume."""
    ordered = bars.sort_values(["ts", "volume"], ascending=[True, False], kind="stable")
    return ordered.drop_duplicates("ts", keep="first").reset_index(drop=True)


def _check_new_york_clock(bars: pd.DataFrame, ticker: str) -> None:
    first_hour = bars.groupby(bars["ts"].dt.date)["ts"].min().dt.hour.median()
    low, high = FIRST_BAR_HOURS
    if not low <= first_hour <= high:
        raise HourlyDataError(
            f"{ticker}: the median first bar of a day starts at {first_hour:.0f}:00, not between "
            f"{low}:00 and {high}:00 New York time; the timestamps are not New York wall clock"
        )


@lru_cache(maxsize=1)
def _nyse_schedule() -> pd.DataFrame:
    with warnings.catch_warnings():  # exchange_calendars uses a pandas 3 deprecated accessor
        warnings.simplefilter("ignore", pd.errors.Pandas4Warning)
        schedule = xc.get_calendar("XNYS", start="1990-01-01").schedule
    return schedule[["open", "close"]].apply(lambda col: col.dt.tz_convert(NEW_YORK))


def _in_regular_session(ts: pd.Series) -> pd.Series:
    """Whether each hour bucket starting at `ts` overlaps its day's NYSE [open, close)."""
    hours = _nyse_schedule().reindex(_sessions(ts))
    opens = pd.Series(hours["open"].to_numpy(), index=ts.index)
    closes = pd.Series(hours["close"].to_numpy(), index=ts.index)
    return ((ts < closes) & (ts + BAR_LENGTH > opens)).fillna(False).astype("bool")


def _sessions(ts: pd.Series) -> pd.Series:
    """The local calendar date of each timestamp, as a naive midnight (the session key)."""
    return ts.dt.tz_localize(None).dt.normalize()


def _daily_closes(daily: pd.DataFrame, ticker: str) -> pd.Series:
    session_col = "session" if "session" in daily.columns else "date"
    if not {"ticker", session_col, "close"} <= set(daily.columns):
        raise HourlyDataError(f"{ticker}: daily frame needs ticker, session and close columns")
    rows = daily.loc[daily["ticker"] == ticker]
    if rows.empty:
        raise HourlyDataError(
            f"{ticker}: no daily series for this ticker to reconcile and split-adjust the "
            "hourly bars against (a renamed company, e.g. FB -> META, is not mapped)"
        )
    sessions = pd.to_datetime(rows[session_col], errors="coerce").dt.normalize()
    closes = pd.Series(pd.to_numeric(rows["close"], errors="coerce").to_numpy(), index=sessions)
    closes = closes[np.asarray(closes.index.notna()) & (closes > 0).to_numpy()]
    if closes.empty:
        raise HourlyDataError(f"{ticker}: the daily series has no usable close")
    return closes[~closes.index.duplicated(keep="last")]


def _snap(ratio: float) -> float:
    """The split factor `ratio` is within CLOSE_TOLERANCE of, else NaN."""
    if not np.isfinite(ratio) or ratio <= 0:
        return np.nan
    big = ratio if ratio >= 1 else 1 / ratio
    den = MAX_FRACTION_DENOMINATOR if big < 3 else 1
    candidate = float(Fraction(big).limit_denominator(den))
    factor = candidate if ratio >= 1 else 1 / candidate
    return factor if abs(ratio / factor - 1) <= CLOSE_TOLERANCE else np.nan


def _session_factors(bars: pd.DataFrame, closes: pd.Series, ticker: str) -> pd.Series:
    """Split factor per session (NaN where it cannot be reconciled); rejects past tolerance."""
    regular = bars.loc[~bars["is_extended_hours"]]
    last_close = regular.groupby(_sessions(regular["ts"]))["close"].last()
    ratio = last_close / closes.reindex(last_close.index)
    factors = _drop_blips(ratio.map(_snap))
    all_sessions = _sessions(bars["ts"]).unique()
    unreconciled = [s for s in all_sessions if pd.isna(factors.get(s, np.nan))]
    if len(unreconciled) > MAX_UNRECONCILED_FRACTION * len(all_sessions):
        covered = f"{closes.index.min():%Y-%m-%d} .. {closes.index.max():%Y-%m-%d}"
        raise HourlyDataError(
            f"{ticker}: hourly and daily series cannot be reconciled: {len(unreconciled)} of "
            f"{len(all_sessions)} sessions have no daily bar or a regular-session close off the "
            f"daily close by more than {CLOSE_TOLERANCE:.0%} at any split ratio (e.g. "
            f"{[f'{s:%Y-%m-%d}' for s in unreconciled[:3]]}; daily covers {covered})"
        )
    return factors.dropna()


def _drop_blips(snapped: pd.Series) -> pd.Series:
    """NaN for runs of one factor shorter than MIN_FACTOR_RUN that sit between other runs."""
    known = snapped.dropna()
    if known.empty:
        return snapped
    run = (known != known.shift()).cumsum()
    size = run.map(run.value_counts())
    at_end = (run == run.iloc[0]) | (run == run.iloc[-1])
    return known[(size >= MIN_FACTOR_RUN) | at_end].reindex(snapped.index)


def _adjust(bars: pd.DataFrame, factors: pd.Series) -> pd.DataFrame:
    """Bars of reconciled sessions only, prices / factor and volume * factor."""
    factor = _sessions(bars["ts"]).map(factors)
    out = bars.loc[factor.notna()].copy()
    factor = factor.loc[out.index]
    for col in PRICE_COLUMNS:
        out[col] = out[col] / factor
    out["volume"] = out["volume"] * factor
    return out[list(HOURLY_COLUMNS)].reset_index(drop=True)

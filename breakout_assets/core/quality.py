"""Bar validation: which rows may enter the bar tables and why the others may not.

Pure and vectorised. Every rejected row keeps its values and gets a reason; nothing is dropped
silently: rows dated on a weekend or holiday, or with a date that cannot be read, are
quarantined like any other bad row. Exact duplicates keep one copy; conflicting duplicates are
all rejected, since we cannot tell which one is right.

A session is only replaced when the source delivered something usable for it: `refused_sessions`
names the sessions whose every row was rejected, so the writer can refuse the whole run before
its commit and leave the stored rows as they were.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from breakout_assets.core.bars import BAR_COLUMNS, PRICE_COLUMNS

_TICKER = r"[A-Z][A-Za-z0-9.\-]{0,11}"  # whole string: BRK.A, Polygon preferreds like ABRpD
_UNPRINTABLE = r"[\s\x00-\x1f\x7f-\x9f]"  # whitespace or control characters anywhere

# BRK.A, the highest-priced US share, trades near $1M; the setting BREAKOUT_MAX_BAR_PRICE.
DEFAULT_MAX_BAR_PRICE = 10_000_000.0
# The largest volume a bigint column holds (as a float, the first value beyond it).
_MAX_VOLUME = float(2**63)

NON_SESSION = "date is not a NYSE session (weekend or holiday)"
UNPARSEABLE_DATE = "unparseable date"


class RefusedSessionsError(RuntimeError):
    """A run would have replaced stored sessions with nothing usable; nothing was written."""


@dataclass(frozen=True)
class ValidatedBars:
    valid: pd.DataFrame
    quarantined: pd.DataFrame  # BAR_COLUMNS + reason

    @property
    def reasons(self) -> dict[str, int]:
        counts = self.quarantined["reason"].value_counts()
        return {str(reason): int(n) for reason, n in counts.items()}


def validate_bars(
    bars: pd.DataFrame,
    sessions: Collection[date],
    non_sessions: Collection[date] = (),
    max_price: float = DEFAULT_MAX_BAR_PRICE,
) -> ValidatedBars:
    """Split bars (core.bars contract) into rows fit for the tables and rows to quarantine.

    `sessions` are the sessions being written; `non_sessions` the weekend and holiday dates the
    run answers for (rows dated on them are the source's error, reported by the same run).
    """
    reasons = _row_reasons(bars, sessions, non_sessions, max_price)
    reasons = _duplicate_reasons(bars, reasons)
    bad = reasons.notna().to_numpy()
    valid = bars.loc[~bad, list(BAR_COLUMNS)].copy()
    valid["volume"] = valid["volume"].astype(np.int64)
    quarantined = bars.loc[bad, list(BAR_COLUMNS)].copy()
    quarantined["reason"] = reasons[bad].to_numpy()
    return ValidatedBars(valid.reset_index(drop=True), quarantined.reset_index(drop=True))


def valid_ticker_mask(tickers: pd.Series) -> np.ndarray:
    """True where a ticker may be stored (the bar tables' rule, for reference data too)."""
    return pd.isna(_ticker_reasons(tickers))


def _ticker_reasons(tickers: pd.Series) -> np.ndarray:
    """The ticker rule each row breaks (None: none); the finer reason only for the few rejects."""
    symbols = tickers.astype("string")
    rejected = ~symbols.str.fullmatch(_TICKER).fillna(False).to_numpy(dtype=bool)
    reason = np.full(len(symbols), None, dtype=object)
    reason[rejected] = "malformed ticker"
    if rejected.any():
        unprintable = symbols[rejected].str.contains(_UNPRINTABLE).fillna(False)
        reason[np.flatnonzero(rejected)[unprintable.to_numpy(dtype=bool)]] = (
            "ticker contains whitespace or control characters"
        )
    return reason


def _row_reasons(
    bars: pd.DataFrame,
    sessions: Collection[date],
    non_sessions: Collection[date],
    max_price: float,
) -> pd.Series:
    """The first rule each row breaks (None when it breaks none), in order of severity."""
    o, h, l, c = (bars[col].to_numpy(dtype=np.float64) for col in PRICE_COLUMNS)
    v = bars["volume"].to_numpy(dtype=np.float64)
    days = bars["session"].to_numpy(dtype="datetime64[ns]")
    rules = [
        (np.isnat(days), UNPARSEABLE_DATE),
        (np.isin(days, _days(non_sessions)), NON_SESSION),
        (~np.isin(days, _days(sessions)), "session not requested"),
        (
            ~np.isfinite(np.column_stack([o, h, l, c, v])).all(axis=1),
            "missing or non-numeric value",
        ),
        ((o <= 0) | (h <= 0) | (l <= 0) | (c <= 0), "non-positive price"),
        (
            (o > max_price) | (h > max_price) | (l > max_price) | (c > max_price),
            "price above max_bar_price",
        ),
        (v < 0, "negative volume"),
        (v >= _MAX_VOLUME, "volume out of range"),
        (v != np.floor(v), "fractional volume"),
        (l > h, "low above high"),
        ((o > h) | (c > h), "open or close above high"),
        ((o < l) | (c < l), "open or close below low"),
    ]
    reason = np.full(len(bars), None, dtype=object)
    for broken, why in reversed(rules):  # earlier rules win
        reason[broken] = why
    by_ticker = _ticker_reasons(bars["ticker"])  # the ticker outranks every other rule
    named = pd.notna(by_ticker)
    reason[named] = by_ticker[named]
    return pd.Series(reason, index=bars.index, dtype=object)


def _days(dates: Collection[date]) -> np.ndarray:
    return pd.to_datetime(pd.Index(list(dates))).to_numpy(dtype="datetime64[ns]")


def _duplicate_reasons(bars: pd.DataFrame, reasons: pd.Series) -> pd.Series:
    keys = ["ticker", "session"]
    clean = reasons.isna()
    dup_key = bars.duplicated(keys, keep=False) & clean
    if not dup_key.any():
        return reasons
    candidates = bars[dup_key]
    distinct = candidates.drop_duplicates(list(BAR_COLUMNS))
    versions = distinct.groupby(keys, dropna=False).size()
    conflicting = versions[versions > 1].index
    key_index = pd.MultiIndex.from_frame(candidates[keys])
    is_conflict = pd.Series(key_index.isin(conflicting), index=candidates.index)
    out = reasons.copy()
    out[is_conflict[is_conflict].index] = "conflicting duplicate rows for ticker and session"
    exact = candidates[~is_conflict.to_numpy()]
    extra = exact.index[exact.duplicated(list(BAR_COLUMNS), keep="first").to_numpy()]
    out[extra] = "exact duplicate of another row"
    return out


def refused_sessions(
    sessions: Sequence[date], valid: Mapping[date, int], quarantined: Mapping[date, int]
) -> list[str]:
    """Why each session that has no valid row cannot replace what is stored (empty: none).

    A session must never be emptied by a run: all its rows quarantined, or none delivered.
    """
    refused = []
    for session in sorted(sessions):
        if valid.get(session, 0):
            continue
        rejected = quarantined.get(session, 0)
        refused.append(
            f"{session}: all {rejected} rows quarantined"
            if rejected
            else f"{session}: no rows delivered"
        )
    return refused

"""Bar validation: which rows may enter the bar tables and why the others may not.

Pure and vectorised. Every rejected row keeps its values and gets a reason; nothing is dropped
silently. Exact duplicates keep one copy; conflicting duplicates are all rejected, since we
cannot tell which one is right.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from breakout_assets.core.bars import BAR_COLUMNS, PRICE_COLUMNS

_TICKER = r"^[A-Z][A-Za-z0-9.\-]{0,11}$"  # BRK.A, Polygon preferreds like ABRpD


@dataclass(frozen=True)
class ValidatedBars:
    valid: pd.DataFrame
    quarantined: pd.DataFrame  # BAR_COLUMNS + reason

    @property
    def reasons(self) -> dict[str, int]:
        return self.quarantined["reason"].value_counts().to_dict() if len(self.quarantined) else {}


def validate_bars(bars: pd.DataFrame, sessions: Collection[date]) -> ValidatedBars:
    """Split bars (core.bars contract) into rows fit for the tables and rows to quarantine."""
    reasons = _row_reasons(bars, sessions)
    reasons = _duplicate_reasons(bars, reasons)
    bad = reasons.notna().to_numpy()
    valid = bars.loc[~bad, list(BAR_COLUMNS)].copy()
    valid["volume"] = valid["volume"].astype(np.int64)
    quarantined = bars.loc[bad, list(BAR_COLUMNS)].copy()
    quarantined["reason"] = reasons[bad].to_numpy()
    return ValidatedBars(valid.reset_index(drop=True), quarantined.reset_index(drop=True))


def _row_reasons(bars: pd.DataFrame, sessions: Collection[date]) -> pd.Series:
    """The first rule each row breaks (None when it breaks none), in order of severity."""
    o, h, l, c = (bars[col].to_numpy(dtype=np.float64) for col in PRICE_COLUMNS)
    v = bars["volume"].to_numpy(dtype=np.float64)
    ticker = bars["ticker"].astype("string")
    wanted = pd.to_datetime(pd.Index(list(sessions))).to_numpy(dtype="datetime64[ns]")
    rules = [
        (~ticker.fillna("").str.match(_TICKER).to_numpy(dtype=bool), "malformed ticker"),
        (~np.isin(bars["session"].to_numpy(dtype="datetime64[ns]"), wanted),
         "session not requested"),
        (~np.isfinite(np.column_stack([o, h, l, c, v])).all(axis=1), "missing or non-numeric value"),
        ((o <= 0) | (h <= 0) | (l <= 0) | (c <= 0), "non-positive price"),
        (v < 0, "negative volume"),
        (v != np.floor(v), "fractional volume"),
        (l > h, "low above high"),
        ((o > h) | (c > h), "open or close above high"),
        ((o < l) | (c < l), "open or close below low"),
    ]
    reason = np.full(len(bars), None, dtype=object)
    for broken, why in reversed(rules):  # earlier rules win
        reason[broken] = why
    return pd.Series(reason, index=bars.index, dtype=object)


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

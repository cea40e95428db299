"""The bar frame contract shared by every market-data source and the database tables."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import date, timedelta

import pandas as pd

BAR_COLUMNS = ("ticker", "session", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
HOURLY_COLUMNS = ("ticker", "ts", "open", "high", "low", "close", "volume", "is_extended_hours")
REFERENCE_COLUMNS = (
    "ticker",
    "name",
    "sector",
    "industry",
    "sector_etf",
    "market_cap",
    "shares_outstanding",
)


def empty_bars() -> pd.DataFrame:
    return conform_bars(pd.DataFrame({c: [] for c in BAR_COLUMNS}))


def conform_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """Daily bars in the contract's columns and dtypes: `session` as datetime64 (midnight).

    Values are not validated here (that is `core.quality`): a malformed value becomes NaN so the
    row can be quarantined with its reason instead of failing the whole load.
    """
    out = pd.DataFrame(
        {
            "ticker": frame["ticker"].astype("string"),
            "session": pd.to_datetime(frame["session"], errors="coerce").dt.normalize(),
        }
    )
    for col in PRICE_COLUMNS + ("volume",):
        out[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return out.reset_index(drop=True)


def non_session_days(sessions: Sequence[date], calendar: Sequence[date]) -> list[date]:
    """The weekend and holiday dates the run of `sessions` answers for.

    A session answers for the calendar days since the previous session (Monday for the weekend
    before it), so a bar a source dated on one of them is quarantined by exactly one run.
    `calendar` holds every session from the one before the first of `sessions` on.
    """
    known = sorted(calendar)
    days: list[date] = []
    for session in sorted(set(sessions)):
        position = bisect_left(known, session)
        if position == 0:
            continue
        day = known[position - 1] + timedelta(days=1)
        while day < session:
            days.append(day)
            day += timedelta(days=1)
    return days

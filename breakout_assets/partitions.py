"""Daily partitions that are exactly the NYSE sessions (early closes in, holidays out)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd
from dagster import TimeWindowPartitionsDefinition

EXCHANGE = "XNYS"
TIMEZONE = "America/New_York"
KEY_FORMAT = "%Y-%m-%d"


@lru_cache(maxsize=1)
def nyse_calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar(EXCHANGE)


def calendar_bounds() -> tuple[date, date]:
    """First and last session the exchange calendar knows (a window around today): partitions,
    session ordinals and holidays outside it cannot be computed."""
    cal = nyse_calendar()
    return cal.first_session.date(), cal.last_session.date()


def nyse_sessions(start: date, end: date) -> list[date]:
    cal = nyse_calendar()
    start = max(pd.Timestamp(start), cal.first_session)
    end = min(pd.Timestamp(end), cal.last_session)
    return [ts.date() for ts in cal.sessions_in_range(start, end)]


def is_session(day: date) -> bool:
    return nyse_calendar().is_session(pd.Timestamp(day))


def weekday_holidays(start: date, end: date) -> list[date]:
    """Weekdays the exchange is closed: these are the partition exclusions."""
    weekdays = pd.bdate_range(start, end)
    sessions = set(nyse_sessions(start, end))
    return [d.date() for d in weekdays if d.date() not in sessions]


def session_partitions(start: date) -> TimeWindowPartitionsDefinition:
    """One partition per NYSE session from `start` up to the calendar's last known session."""
    end = nyse_calendar().last_session.date()
    return TimeWindowPartitionsDefinition(
        start=datetime.combine(start, datetime.min.time()),
        fmt=KEY_FORMAT,
        cron_schedule="0 0 * * 1-5",
        timezone=TIMEZONE,
        exclusions=[datetime.combine(d, datetime.min.time()) for d in weekday_holidays(start, end)],
    )


def keys_to_sessions(keys: Iterable[str]) -> list[date]:
    return sorted(datetime.strptime(k, KEY_FORMAT).date() for k in keys)


def sessions_to_keys(sessions: Sequence[date]) -> list[str]:
    return [d.strftime(KEY_FORMAT) for d in sessions]


# Before the calendar's first session: "all stored history".
_EARLIEST = date(1900, 1, 1)


def lookback_start(first: date, lookback: int) -> date:
    """The NYSE session `lookback` sessions before `first` (or all history, calendar short)."""
    earlier = nyse_sessions(first - timedelta(days=2 * lookback + 30), first)
    earlier = [d for d in earlier if d < first]
    return earlier[-lookback] if len(earlier) >= lookback else _EARLIEST


def chunks(sessions: Sequence[date], size: int) -> list[list[date]]:
    """Sorted sessions in consecutive runs of at most `size` (a backfill's statements)."""
    ordered = sorted(sessions)
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


@lru_cache(maxsize=1)
def _calendar_days() -> np.ndarray:
    return nyse_calendar().sessions.values.astype("datetime64[D]")


def session_ordinals(days: np.ndarray) -> np.ndarray:
    """Position of each session in the NYSE calendar: consecutive sessions differ by 1.

    A day that is not a session gets the position of the next session.
    """
    return np.searchsorted(_calendar_days(), np.asarray(days, dtype="datetime64[D]")).astype(np.int64)


def ordinal_sessions(ordinals: np.ndarray) -> np.ndarray:
    """The inverse of `session_ordinals`, as datetime64[D] (clipped to the calendar's range)."""
    days = _calendar_days()
    return days[np.clip(np.asarray(ordinals, dtype=np.int64), 0, len(days) - 1)]


def previous_session(day: date) -> date:
    """The last NYSE session strictly before `day`."""
    return nyse_sessions(day - timedelta(days=10), day - timedelta(days=1))[-1]

"""Daily partitions that are exactly the NYSE sessions (early closes in, holidays out)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path

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


# Each partition's window opens at a session's regular close (16:00 New York): with
# `end_offset=1` the newest partition is the last session whose close has passed, re-evaluated
# by long-running processes (UI, daemon) without a reload. A session's own early close (13:00)
# still opens its partition at 16:00.
CLOSE = time(16)
CRON = "0 16 * * 1-5"
DESCRIPTION = "NYSE sessions (one partition per session; holidays out, early closes in)"


def _at_close(day: date) -> datetime:
    return datetime.combine(day, CLOSE)


def next_session(day: date) -> date:
    """The first NYSE session strictly after `day`."""
    return nyse_sessions(day + timedelta(days=1), day + timedelta(days=10))[0]


def session_partitions(start: date, end: date | None = None) -> TimeWindowPartitionsDefinition:
    """One partition per NYSE session from `start` to `end` (inclusive) or, without `end`, to
    the last session whose close has passed (today's after 16:00 New York)."""
    # The end is exclusive: the next session's window, so the holidays before it are excluded.
    stop = next_session(end) if end else nyse_calendar().last_session.date()
    return TimeWindowPartitionsDefinition(
        start=_at_close(start),
        end=_at_close(stop) if end else None,
        end_offset=0 if end else 1,
        fmt=KEY_FORMAT,
        cron_schedule=CRON,
        timezone=TIMEZONE,
        exclusions=[_at_close(d) for d in weekday_holidays(start, stop)],
    )


def files_last_session(directory: Path) -> date | None:
    """The last session the bar files hold (None without readable files), cached per file
    version: definitions load it on every reload, a full read of the files each time is waste."""
    versions = tuple(
        (f.name, f.stat().st_mtime_ns) for f in sorted(Path(directory).glob("stocks.*"))
    )
    return _files_last_session(str(directory), versions)


@lru_cache(maxsize=8)
def _files_last_session(directory: str, versions: tuple) -> date | None:
    from breakout_assets.resources.market_data.base import MarketDataError
    from breakout_assets.resources.market_data.files import FilesSource

    try:
        return FilesSource(directory).last_session()
    except MarketDataError:
        return None


def partitions_end(settings) -> date | None:
    """Where the partitions stop (`settings`: the BreakoutSettings, which import this module):
    BREAKOUT_END_DATE; with the files source, the files' last session (the bundled sample ends
    in 2024, the UI should not offer years of empty sessions); otherwise None, today's close
    (a live source has today's bars after it)."""
    if settings.end_date is not None:
        return settings.end_date
    if settings.data_source == "files":
        return files_last_session(settings.files_dir)
    return None


def settings_partitions(settings) -> TimeWindowPartitionsDefinition:
    """The project's session partitions as the settings define them."""
    return session_partitions(settings.start_date, partitions_end(settings))


def describe_sessions(description: str | None) -> str:
    """An asset description that names its partitions: the UI shows a time-window partitioning
    as its cron (`0 16 * * 1-5`), which does not say holidays are out."""
    return (
        f"{description.rstrip()}\n\nPartitions: {DESCRIPTION}."
        if description
        else f"Partitions: {DESCRIPTION}."
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
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


@lru_cache(maxsize=1)
def _calendar_days() -> np.ndarray:
    return nyse_calendar().sessions.values.astype("datetime64[D]")


def session_ordinals(days: np.ndarray) -> np.ndarray:
    """Position of each session in the NYSE calendar: consecutive sessions differ by 1.

    A day that is not a session gets the position of the next session.
    """
    return np.searchsorted(_calendar_days(), np.asarray(days, dtype="datetime64[D]")).astype(
        np.int64
    )


def ordinal_sessions(ordinals: np.ndarray) -> np.ndarray:
    """The inverse of `session_ordinals`, as datetime64[D] (clipped to the calendar's range)."""
    days = _calendar_days()
    return days[np.clip(np.asarray(ordinals, dtype=np.int64), 0, len(days) - 1)]


def previous_session(day: date) -> date:
    """The last NYSE session strictly before `day`."""
    return nyse_sessions(day - timedelta(days=10), day - timedelta(days=1))[-1]

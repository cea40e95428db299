"""What every market-data source provides, and the errors it raises.

Sources are plain classes (no Dagster): the Dagster resource in `__init__` picks one by
`BREAKOUT_DATA_SOURCE`. Every frame follows the contract in `core.bars`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import date, timedelta

import pandas as pd

from breakout_assets.core.bars import non_session_days
from breakout_assets.partitions import nyse_sessions


class MarketDataError(RuntimeError):
    """A source could not deliver what was asked for; the message says what and why."""


class MissingDataError(MarketDataError):
    """A session that must have data came back empty (never an empty partition)."""


class AuthenticationError(MarketDataError):
    """The source refused our credentials; the message names the variable to set."""


class VendorPayloadError(MarketDataError):
    """A vendor answered in a shape we cannot read; the message names vendor, endpoint, session."""


def answered_non_sessions(sessions: Sequence[date]) -> list[date]:
    """The weekend and holiday dates a run of `sessions` answers for (see core.bars)."""
    if not sessions:
        return []
    calendar = nyse_sessions(min(sessions) - timedelta(days=15), max(sessions))
    return non_session_days(sessions, calendar)


class MarketDataSource(ABC):
    """A source of bars. Besides the rows of the requested sessions, a source that can hold
    rows dated on a weekend or holiday (`answered_non_sessions`) or with an unreadable date
    (NaT) delivers them too, so the run quarantines them with a reason instead of losing them.
    """

    name: str

    @property
    def origin(self) -> str:
        """Where the bars come from, for messages: the source and its location."""
        return self.name

    @abstractmethod
    def daily_bars(self, sessions: Sequence[date]) -> pd.DataFrame:
        """Daily OHLCV of every US common stock for each session (columns `core.bars.BAR_COLUMNS`).

        Raises MissingDataError when any requested session has no bars at all.
        """

    def iter_daily_bars(
        self, sessions: Sequence[date], chunk_sessions: int
    ) -> Iterator[pd.DataFrame]:
        """`daily_bars` in chunks of sessions, so a multi-year backfill stays memory-bounded."""
        ordered = sorted(sessions)
        for start in range(0, len(ordered), chunk_sessions):
            yield self.daily_bars(ordered[start : start + chunk_sessions])

    def last_session(self) -> date | None:
        """The last session a finite source holds (files); None for live sources."""
        return None

    @abstractmethod
    def index_bars(self, sessions: Sequence[date], tickers: Sequence[str]) -> pd.DataFrame:
        """Daily bars of the index series (SPY, QQQ, sector ETFs, VIX) for the sessions."""

    @abstractmethod
    def hourly_bars(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """1-hour bars, chronological, `ts` = bar start in America/New_York, split-adjusted."""

    @abstractmethod
    def ticker_reference(self, as_of: date) -> pd.DataFrame:
        """One row per ticker (columns `core.bars.REFERENCE_COLUMNS`) as known on `as_of`."""

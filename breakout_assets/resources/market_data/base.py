"""What every market-data source provides, and the errors it raises.

Sources are plain classes (no Dagster): the Dagster resource in `__init__` picks one by
`BREAKOUT_DATA_SOURCE`. Every frame follows the contract in `core.bars`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import date

import pandas as pd


class MarketDataError(RuntimeError):
    """A source could not deliver what was asked for; the message says what and why."""


class MissingDataError(MarketDataError):
    """A session that must have data came back empty (never an empty partition)."""


class AuthenticationError(MarketDataError):
    """The source refused our credentials; the message names the variable to set."""


class MarketDataSource(ABC):
    name: str

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

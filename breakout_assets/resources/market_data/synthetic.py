"""The synthetic market as a market-data source: seeded, offline, any size, with planted setups.

A thin adapter over `simulation.SyntheticMarket`: it puts the generator's frames into the
`core.bars` contract and turns requests the market cannot serve into `MarketDataError`s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

import pandas as pd

from breakout_assets.core.bars import conform_bars
from breakout_assets.resources.market_data.base import (
    MarketDataError,
    MarketDataSource,
    MissingDataError,
)
from breakout_assets.simulation import INDEX_TICKERS, SyntheticMarket


class SyntheticSource(MarketDataSource):
    """Market data from a seeded synthetic market (see `breakout_assets.simulation`)."""

    name = "synthetic"

    def __init__(
        self,
        n_tickers: int = 500,
        seed: int = 7,
        origin: date = date(2015, 1, 2),
        index_tickers: Sequence[str] = INDEX_TICKERS,
    ) -> None:
        self.market = SyntheticMarket(n_tickers, seed, origin)
        self.index_tickers = tuple(index_tickers)

    def daily_bars(self, sessions: Sequence[date]) -> pd.DataFrame:
        """Every synthetic ticker's bars; a date that is not a session it has is missing data."""
        try:
            return conform_bars(self.market.daily_bars(sessions))
        except ValueError as exc:
            raise MissingDataError(str(exc)) from None

    def iter_daily_bars(
        self, sessions: Sequence[date], chunk_sessions: int = 250
    ) -> Iterator[pd.DataFrame]:
        """Daily bars in chunks of sessions, so a long backfill never sits in memory at once."""
        try:
            for chunk in self.market.iter_daily_bars(sessions, chunk_sessions):
                yield conform_bars(chunk)
        except ValueError as exc:
            raise MissingDataError(str(exc)) from None

    def index_bars(self, sessions: Sequence[date], tickers: Sequence[str]) -> pd.DataFrame:
        unknown = sorted(set(tickers) - set(INDEX_TICKERS))
        if unknown:
            raise MarketDataError(
                f"the synthetic source has no series for {unknown}; it has {list(INDEX_TICKERS)}"
            )
        try:
            return conform_bars(self.market.index_bars(sessions, tickers))
        except ValueError as exc:
            raise MissingDataError(str(exc)) from None

    def hourly_bars(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """Regular-session hourly bars that add up exactly to the daily bars."""
        try:
            return self.market.hourly_bars(ticker, start, end)
        except ValueError as exc:
            raise MarketDataError(str(exc)) from None

    def ticker_reference(self, as_of: date) -> pd.DataFrame:
        """Sector ETFs point at the configured index series this source can serve."""
        served = [t for t in self.index_tickers if t in INDEX_TICKERS]
        return self.market.ticker_reference(as_of, served)

    def planted_setups(self, start: date, end: date) -> pd.DataFrame:
        """The ground truth: setups planted with their breakout session in [start, end]."""
        return self.market.planted_setups(start, end)

"""The `model` option-chain source: Black-Scholes quotes on listed strikes and expiries.

For the demo, tests and the options backtest (no option quotes there). The volatility comes
from a lookup the caller gives (the asset's reads the ticker's closes from Postgres); the
exchange's sessions decide which Fridays are holidays (core.model_chain).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta

from breakout_assets.core.config import OptionsConfig
from breakout_assets.core.model_chain import model_chain
from breakout_assets.core.options import OptionChain
from breakout_assets.partitions import nyse_sessions
from breakout_assets.resources.option_chain.base import OptionChainError

VolatilityLookup = Callable[[str, date], float]
SessionLookup = Callable[[date, date], list[date]]


class ModelOptionChain:
    """An OptionChainSource whose quotes are Black-Scholes prices at realised vol x multiplier."""

    name = "model"

    def __init__(
        self,
        config: OptionsConfig,
        volatility: VolatilityLookup,
        sessions: SessionLookup = nyse_sessions,
    ) -> None:
        self.config = config
        self._volatility = volatility
        self._sessions = sessions

    def chain(
        self,
        underlying: str,
        as_of: date,
        underlying_price: float,
        *,
        min_expiry: date,
        max_expiry: date,
    ) -> OptionChain:
        vol = self._volatility(underlying, as_of)
        if not (isinstance(vol, float | int) and math.isfinite(vol) and vol >= 0):
            raise OptionChainError(
                f"{self.name} option chain: {underlying} has no realised volatility on {as_of} "
                f"(got {vol}; it needs {self.config.vol_window + 1} daily closes)"
            )
        # a week either side: the sessions around each Friday decide where its expiry falls
        sessions = self._sessions(min_expiry - timedelta(days=7), max_expiry + timedelta(days=7))
        try:
            return model_chain(
                underlying,
                as_of,
                underlying_price,
                float(vol),
                sessions=sessions,
                min_expiry=min_expiry,
                max_expiry=max_expiry,
                config=self.config,
            )
        except ValueError as exc:
            raise OptionChainError(f"{self.name} option chain: {underlying}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: the model holds no connection."""

"""The option-chain interface: Polygon, IBKR or the Black-Scholes model chain answer alike.

Sources return the domain's `OptionChain` (core.options), so the spread planner and the assets
never see a vendor's objects.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol, runtime_checkable

from breakout_assets.core.options import OptionChain


class OptionChainError(RuntimeError):
    """The source cannot give a chain (unknown underlying, vendor error): names source and
    underlying."""


@runtime_checkable
class OptionChainSource(Protocol):
    name: str

    def chain(
        self,
        underlying: str,
        as_of: date,
        underlying_price: float,
        *,
        min_expiry: date,
        max_expiry: date,
    ) -> OptionChain:
        """The listed calls and puts of `underlying` expiring in [min_expiry, max_expiry], with
        quotes as of `as_of` (the model chain prices them at `underlying_price`)."""
        ...

    def close(self) -> None: ...

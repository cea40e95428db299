"""The options overlay's domain model: option quotes, a chain, a planned vertical debit spread.

Every option-chain source (Polygon, IBKR, the Black-Scholes model chain) answers with an
`OptionChain`; the spread planner (core.spreads) turns a scored signal and a chain into a
`SpreadPlan` or a `SpreadSkip` with its reason; a broker receives a `SpreadOrder`. Prices are
per share (one contract is `CONTRACT_MULTIPLIER` shares), strikes in dollars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Literal

OptionRight = Literal["C", "P"]
Side = Literal["long", "short"]

CONTRACT_MULTIPLIER = 100  # US equity options: 100 shares per contract
CLOSE_SUFFIX = "-close"  # a spread's conditional close carries the ref `<spread ref>-close`


def close_ref(order_ref: str) -> str:
    """The ref of a spread's conditional close: how a re-run knows it reached the broker."""
    return f"{order_ref}{CLOSE_SUFFIX}"


def right_for(side: Side) -> OptionRight:
    """Calls express a long, puts a short."""
    return "C" if side == "long" else "P"


@dataclass(frozen=True)
class OptionQuote:
    """One listed contract as a chain source sees it; NaN where the source has no value."""

    underlying: str
    expiry: date
    strike: float
    right: OptionRight
    bid: float
    ask: float
    open_interest: int = 0
    implied_vol: float = math.nan
    delta: float = math.nan
    symbol: str | None = None  # the OCC symbol, e.g. O:AAPL240119C00150000 (Polygon)
    con_id: int | None = None  # the broker's contract id (IBKR), None elsewhere

    @property
    def mid(self) -> float:
        if not (math.isfinite(self.bid) and math.isfinite(self.ask)) or self.ask < self.bid:
            return math.nan
        return (self.bid + self.ask) / 2

    @property
    def spread_fraction(self) -> float:
        """Bid-ask width as a fraction of the mid (the liquidity filter's measure)."""
        mid = self.mid
        return (self.ask - self.bid) / mid if mid > 0 else math.inf


@dataclass(frozen=True)
class OptionChain:
    """The listed contracts of one underlying on one day."""

    underlying: str
    as_of: date
    underlying_price: float
    quotes: tuple[OptionQuote, ...]
    underlying_con_id: int | None = None  # IBKR: the stock's conId (the close's condition)

    def expiries(self) -> list[date]:
        return sorted({q.expiry for q in self.quotes})

    def strikes(self, expiry: date, right: OptionRight) -> list[float]:
        return sorted({q.strike for q in self.quotes if q.expiry == expiry and q.right == right})

    def quote(self, expiry: date, strike: float, right: OptionRight) -> OptionQuote | None:
        for q in self.quotes:
            if q.expiry == expiry and q.right == right and math.isclose(q.strike, strike):
                return q
        return None


@dataclass(frozen=True)
class SpreadPlan:
    """A vertical debit spread for one signal: buy `long_strike`, sell `short_strike`.

    Calls for a long signal (long strike below the short one), puts for a short (long strike
    above). The net debit is the whole risk; `close_trigger` is the underlying's price at which
    the conditional close sells the combo (longs at the 100% target, shorts at the 75% one).
    """

    ticker: str
    side: Side
    right: OptionRight
    expiry: date
    long_strike: float
    short_strike: float
    net_debit: float  # per share, at mid plus slippage
    contracts: int
    ev: float  # per share: conf x (width - debit) - (1 - conf) x debit
    close_trigger: float

    @property
    def width(self) -> float:
        return abs(self.short_strike - self.long_strike)

    @property
    def max_loss(self) -> float:
        return self.net_debit * CONTRACT_MULTIPLIER * self.contracts

    @property
    def max_gain(self) -> float:
        return (self.width - self.net_debit) * CONTRACT_MULTIPLIER * self.contracts


@dataclass(frozen=True)
class SpreadSkip:
    """No spread for a signal, and why (recorded on the plan row)."""

    ticker: str
    side: Side
    reason: str


@dataclass(frozen=True)
class SpreadOrder:
    """What a broker receives: one combo (BUY the near leg, SELL the far leg) as a limit at the
    net debit, plus a GTC conditional close of the same combo when the underlying trades through
    `close_trigger` (at or above for calls, at or below for puts)."""

    order_ref: str
    ticker: str
    right: OptionRight
    expiry: date
    long_strike: float
    short_strike: float
    contracts: int
    limit_debit: float  # per share
    close_trigger: float
    session: date  # the signal session; the order works from the next session

    def __post_init__(self) -> None:
        if self.contracts <= 0:
            raise ValueError(f"{self.order_ref}: contracts must be positive, got {self.contracts}")
        if not 0 < self.limit_debit < abs(self.short_strike - self.long_strike):
            raise ValueError(
                f"{self.order_ref}: the debit {self.limit_debit} must be above 0 and below the "
                f"width {abs(self.short_strike - self.long_strike)}"
            )
        calls_up = self.right == "C" and self.short_strike > self.long_strike
        puts_down = self.right == "P" and self.short_strike < self.long_strike
        if not (calls_up or puts_down):
            raise ValueError(
                f"{self.order_ref}: a debit {self.right} spread buys the strike nearer the money: "
                f"long {self.long_strike}, short {self.short_strike}"
            )

    @property
    def close_when_above(self) -> bool:
        """The conditional close's direction: calls close when the underlying rises through the
        trigger, puts when it falls through it."""
        return self.right == "C"

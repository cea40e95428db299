"""The broker interface: what the pipeline asks of IBKR or of the simulated broker.

Both implementations take our domain objects (`BracketOrder`) and answer with plain records,
so assets never touch ib_async or the simulator's tables. Every order carries our deterministic
`order_ref`; `find_refs` is how a re-run learns an order already exists (open, completed or
executed) and must not be sent again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Protocol, runtime_checkable

from breakout_assets.core.journal import TradeFill
from breakout_assets.core.options import SpreadOrder

Side = Literal["long", "short"]
EntryType = Literal["limit", "stop"]


class BrokerError(RuntimeError):
    """The broker cannot be reached or refused a request as a whole (not one order)."""


@dataclass(frozen=True)
class BracketOrder:
    """One trade: an entry with a take-profit and a stop that transmit together.

    The entry is a limit (a long buys at or below `entry`) or, with `entry_type='stop'`, a
    stop-entry (a long buys once the market trades at or above `entry`; a short sells at or below
    it). Brackets sharing an `oca_group` are alternatives: the first entry to fill cancels the
    other entries of the group (one-cancels-other), so at most one of them becomes a position.
    """

    order_ref: str
    ticker: str
    side: Side
    quantity: int
    entry: float  # limit price of the parent, or its trigger for a stop-entry
    stop: float
    take_profit: float
    session: date  # the signal session; the order works from the next session
    valid_sessions: int = 1  # sessions the entry limit works (OutcomeConfig.entry_valid_sessions)
    entry_type: EntryType = "limit"
    oca_group: str | None = None  # entries sharing it: the first fill cancels the others

    def __post_init__(self) -> None:
        if self.entry_type not in ("limit", "stop"):
            raise ValueError(
                f"{self.order_ref}: entry_type must be 'limit' or 'stop', got {self.entry_type!r}"
            )
        if self.oca_group == "":
            raise ValueError(f"{self.order_ref}: oca_group must be None or a non-empty name")
        if self.quantity <= 0:
            raise ValueError(f"{self.order_ref}: quantity must be positive, got {self.quantity}")
        sign = 1 if self.side == "long" else -1
        if not (sign * (self.entry - self.stop) > 0 and sign * (self.take_profit - self.entry) > 0):
            raise ValueError(
                f"{self.order_ref}: levels out of order for a {self.side}: "
                f"stop {self.stop}, entry {self.entry}, take-profit {self.take_profit}"
            )


@dataclass(frozen=True)
class AccountSnapshot:
    equity: float
    buying_power: float
    excess_liquidity: float
    open_risk: float  # dollars at risk in open positions and working entries (to their stops)
    open_positions: int


@dataclass(frozen=True)
class PlacedBracket:
    """The broker's answer to one bracket."""

    order_ref: str
    status: Literal["submitted", "rejected", "error"]
    broker_order_ids: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class KnownOrder:
    """An order the broker already has for one of our refs (open, completed or executed)."""

    order_ref: str
    broker_order_ids: list[str]
    state: str  # e.g. 'open', 'filled', 'cancelled', 'executed'


@dataclass(frozen=True)
class Position:
    ticker: str
    quantity: int  # signed: negative is short
    average_price: float
    order_ref: str | None  # the bracket that opened it, when the broker knows
    opened: date | None = None  # the session of the entry fill, when the broker knows


@runtime_checkable
class Broker(Protocol):
    name: str

    def account(self) -> AccountSnapshot: ...

    def find_refs(self, order_refs: list[str]) -> dict[str, KnownOrder]:
        """Our refs the broker already knows, searched in open orders, completed orders and
        executions."""
        ...

    def place_bracket(self, order: BracketOrder) -> PlacedBracket:
        """Send one bracket. A rejection is an answer (status 'rejected'), not an exception."""
        ...

    def place_spread(self, order: SpreadOrder) -> PlacedBracket:
        """Send one vertical debit spread as ONE combo limit order plus its GTC conditional
        close (issue 11). A rejection is an answer (status 'rejected'), not an exception."""
        ...

    def cancel(self, order_ref: str) -> None: ...

    def modify_stop(self, order_ref: str, new_stop: float) -> None: ...

    def modify_take_profit(self, order_ref: str, new_take_profit: float) -> None: ...

    def close_position(self, order_ref: str) -> None:
        """Exit the bracket's position now and cancel its exit orders (expiry)."""
        ...

    def positions(self) -> list[Position]: ...

    def executions(self) -> list[TradeFill]:
        """Every fill the broker still reports, with what it charged, in the journal's terms
        (read-only). The simulated broker keeps all of its fills; IBKR serves the executions of
        the current day (up to seven with TWS's setting): older ones come from a Flex statement
        (resources.flex)."""
        ...

    def sync(self, through: date) -> None:
        """Bring the broker's view up to the close of `through` before acting on it (the
        simulated broker fills its orders on the bars to date; a real broker needs nothing)."""
        ...

    def current_session(self, through: date) -> date:
        """The session whose close the broker stands after once brought up to `through`: an
        order placed now works from the next session. The simulated broker's clock is its
        account's (what `sync(through)` makes it, without syncing); a real broker's is the
        exchange calendar at the wall clock, whatever session the pipeline is running."""
        ...

    def close(self) -> None: ...

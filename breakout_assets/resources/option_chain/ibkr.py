"""Option chains from Interactive Brokers through `ib_async` (2.1): IB Gateway / TWS.

How a chain is read (ib_async 2.1.0):

1. `qualifyContracts(Stock(underlying, "SMART", "USD"))`: the stock's conId (also the conId the
   spread's conditional close watches, kept as `OptionChain.underlying_con_id`).
2. `reqSecDefOptParams(underlying, "", "STK", conId)`: the listed expiries and strikes. Only
   the SMART rows with a 100 multiplier count, and of those the underlying's own trading class
   when IB lists it (adjusted classes after splits or mergers deliver other than 100 shares).
3. Option contracts for every expiry in [min_expiry, max_expiry] and every strike within
   `strike_band` of the price (a fraction: 0.25 keeps price x 0.75 .. price x 1.25), calls and
   puts, `qualifyContracts` in one call: IB lists strikes per trading class, not per expiry, so
   combinations IB does not know come back None and are dropped.
4. `reqTickers` (snapshots) in batches of `batch_size` (within IB's market-data lines): bid,
   ask and the model greeks (implied volatility, delta). IB's -1 "no market" is NaN.
5. Open interest needs generic tick 101, which IB serves only on a streaming subscription:
   with `open_interest_wait_s` > 0 each batch is subscribed (`reqMktData(contract, "101")`),
   read once every contract has its open interest or the wait is over, and cancelled. With 0
   this step is skipped and every quote's open interest is 0: then set the planner's
   `min_open_interest` to 0 or the liquidity filter refuses everything.

The source connects lazily with its own client id (default 18, next to the broker's 17: two
connections cannot share one), read-only, and asks for `market_data_type` (1 live, 3 delayed for
a paper account without subscriptions). Failures are `OptionChainError` naming the vendor, the
gateway (host:port) and the underlying. `ib_factory` is the seam where tests inject a fake IB.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from ib_async import IB, Contract, Option, Stock

from breakout_assets.core.options import CONTRACT_MULTIPLIER, OptionChain, OptionQuote
from breakout_assets.resources.option_chain.base import OptionChainError

OPEN_INTEREST_TICKS = "101"


def _number(value: Any) -> float:
    """An IB price or greek as a float: None, NaN and IB's -1 'no value' are NaN."""
    if value is None:
        return math.nan
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else math.nan


class IbkrOptionChain:
    """`OptionChainSource` over IB Gateway/TWS (see the module docstring for the steps)."""

    name = "ibkr"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4002,
        client_id: int = 18,
        connect_timeout_s: float = 10.0,
        request_timeout_s: float = 15.0,
        strike_band: float = 0.25,
        market_data_type: int = 1,
        open_interest_wait_s: float = 3.0,
        batch_size: int = 50,
        ib_factory: Callable[[], Any] = IB,
    ) -> None:
        if not 0 < strike_band < 1:
            raise ValueError(f"strike_band must be in (0, 1), got {strike_band}")
        if market_data_type not in (1, 2, 3, 4):
            raise ValueError(f"market_data_type must be 1..4, got {market_data_type}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.host, self.port, self.client_id = host, int(port), int(client_id)
        self.connect_timeout_s, self.request_timeout_s = connect_timeout_s, request_timeout_s
        self.strike_band = strike_band
        self.market_data_type = market_data_type
        self.open_interest_wait_s = open_interest_wait_s
        self.batch_size = batch_size
        self._factory = ib_factory
        self._conn: Any = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port} (client id {self.client_id})"

    # -- connection ---------------------------------------------------------------------------

    def _ib(self, underlying: str) -> Any:
        ib = self._conn
        if ib is not None and ib.isConnected():
            return ib
        if ib is None:
            ib = self._conn = self._factory()
            ib.RequestTimeout = self.request_timeout_s  # bounds every blocking request
        try:
            ib.connect(
                self.host,
                self.port,
                self.client_id,
                timeout=self.connect_timeout_s,
                readonly=True,
            )
        except Exception as exc:
            raise OptionChainError(
                f"ibkr option chain of {underlying}: cannot connect to IB Gateway/TWS at "
                f"{self.where}: {type(exc).__name__}: {exc}"
            ) from exc
        if not ib.isConnected():
            raise OptionChainError(
                f"ibkr option chain of {underlying}: IB Gateway/TWS at {self.where} did not "
                f"become ready"
            )
        ib.reqMarketDataType(self.market_data_type)
        return ib

    def close(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None

    @contextmanager
    def _guard(self, underlying: str, what: str) -> Iterator[None]:
        try:
            yield
        except OptionChainError:
            raise
        except Exception as exc:
            raise OptionChainError(
                f"ibkr option chain of {underlying} at {self.where}: {what} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    # -- the chain ----------------------------------------------------------------------------

    def chain(
        self,
        underlying: str,
        as_of: date,
        underlying_price: float,
        *,
        min_expiry: date,
        max_expiry: date,
    ) -> OptionChain:
        if max_expiry < min_expiry:
            raise ValueError(f"max_expiry {max_expiry} is before min_expiry {min_expiry}")
        if not underlying_price > 0:
            raise ValueError(f"{underlying}: the price must be positive, got {underlying_price}")
        ib = self._ib(underlying)
        with self._guard(underlying, "stock qualification (qualifyContracts)"):
            stock = Stock(underlying, "SMART", "USD")
            qualified = ib.qualifyContracts(stock)
        if not qualified or qualified[0] is None or not stock.conId:
            raise OptionChainError(f"ibkr knows no unique US stock {underlying} at {self.where}")
        with self._guard(underlying, "option parameters (reqSecDefOptParams)"):
            params = ib.reqSecDefOptParams(underlying, "", "STK", stock.conId)
        trading_class, expiries, strikes = self._listing(
            underlying, params, underlying_price, min_expiry, max_expiry
        )
        wanted = [
            Option(
                underlying,
                expiry.strftime("%Y%m%d"),
                strike,
                right,
                "SMART",
                multiplier=str(CONTRACT_MULTIPLIER),
                currency="USD",
                tradingClass=trading_class,
            )
            for expiry in expiries
            for right in ("C", "P")
            for strike in strikes
        ]
        with self._guard(underlying, f"qualifying {len(wanted)} option contracts"):
            known = [c for c in ib.qualifyContracts(*wanted) if c is not None and c.conId]
        if not known:
            raise OptionChainError(
                f"ibkr qualified none of {underlying}'s {len(wanted)} options expiring "
                f"{min_expiry}..{max_expiry} at {self.where}"
            )
        quotes: list[OptionQuote] = []
        for start in range(0, len(known), self.batch_size):
            batch = known[start : start + self.batch_size]
            with self._guard(underlying, "option quotes (reqTickers)"):
                tickers = ib.reqTickers(*batch)
            with self._guard(underlying, "open interest (reqMktData tick 101)"):
                interest = self._open_interest(ib, batch)
            by_con = {t.contract.conId: t for t in tickers if t.contract is not None}
            quotes += [
                self._quote(underlying, c, by_con.get(c.conId), interest.get(c.conId))
                for c in batch
            ]
        quotes.sort(key=lambda q: (q.expiry, q.right, q.strike))
        return OptionChain(
            underlying,
            as_of,
            float(underlying_price),
            tuple(quotes),
            underlying_con_id=int(stock.conId),
        )

    def _listing(
        self,
        underlying: str,
        params: Sequence[Any],
        price: float,
        min_expiry: date,
        max_expiry: date,
    ) -> tuple[str, list[date], list[float]]:
        """(trading class, expiries in the window, strikes in the band) from IB's parameters."""
        rows = [
            p
            for p in params
            if p.exchange == "SMART" and str(p.multiplier) == str(CONTRACT_MULTIPLIER)
        ]
        own = [p for p in rows if p.tradingClass == underlying]
        rows = own or rows
        if not rows:
            raise OptionChainError(
                f"ibkr lists no SMART 100-share options of {underlying} at {self.where}"
            )
        trading_class = rows[0].tradingClass
        rows = [p for p in rows if p.tradingClass == trading_class]
        expiries = sorted(
            {
                day
                for p in rows
                for e in p.expirations
                if min_expiry
                <= (day := datetime.strptime(str(e)[:8], "%Y%m%d").date())
                <= max_expiry
            }
        )
        low, high = price * (1 - self.strike_band), price * (1 + self.strike_band)
        strikes = sorted({float(s) for p in rows for s in p.strikes if low <= float(s) <= high})
        if not expiries or not strikes:
            raise OptionChainError(
                f"ibkr lists no {underlying} options expiring {min_expiry}..{max_expiry} with "
                f"strikes in {low:.2f}..{high:.2f} at {self.where}"
            )
        return trading_class, expiries, strikes

    def _open_interest(self, ib: Any, contracts: Sequence[Contract]) -> dict[int, int]:
        """conId -> open interest from a short streaming subscription to generic tick 101 (calls
        report `callOpenInterest`, puts `putOpenInterest`); {} when switched off."""
        if self.open_interest_wait_s <= 0:
            return {}
        tickers = {c.conId: ib.reqMktData(c, OPEN_INTEREST_TICKS, False, False) for c in contracts}

        def read() -> dict[int, int]:
            out = {}
            for con_id, t in tickers.items():
                right = (t.contract.right or "")[:1] if t.contract is not None else ""
                value = _number(t.callOpenInterest if right == "C" else t.putOpenInterest)
                if math.isfinite(value):
                    out[con_id] = int(value)
            return out

        try:
            deadline = time.monotonic() + self.open_interest_wait_s
            got = read()
            while len(got) < len(tickers) and (left := deadline - time.monotonic()) > 0:
                ib.waitOnUpdate(timeout=left)
                got = read()
            return got
        finally:
            for c in contracts:
                ib.cancelMktData(c)

    @staticmethod
    def _quote(
        underlying: str, contract: Contract, ticker: Any, open_interest: int | None
    ) -> OptionQuote:
        greeks = ticker.modelGreeks if ticker is not None else None
        return OptionQuote(
            underlying,
            datetime.strptime(contract.lastTradeDateOrContractMonth[:8], "%Y%m%d").date(),
            float(contract.strike),
            "C" if contract.right.startswith("C") else "P",
            _number(ticker.bid) if ticker is not None else math.nan,
            _number(ticker.ask) if ticker is not None else math.nan,
            open_interest=open_interest or 0,
            implied_vol=_number(greeks.impliedVol) if greeks is not None else math.nan,
            delta=float(greeks.delta)
            if greeks is not None and greeks.delta is not None
            else math.nan,
            symbol=contract.localSymbol or None,
            con_id=int(contract.conId),
        )


__all__ = ["IbkrOptionChain"]

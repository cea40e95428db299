"""Option chains from Polygon (now "Massive") through the official `massive` client (2.9.1).

Two endpoints, both paginated by massive (it follows `next_url`):

* `/v3/reference/options/contracts` (`RESTClient.list_options_contracts`): the listed contracts
  of the underlying with expiry in [min_expiry, max_expiry] (and strike within `strike_band` of
  the price) as of `as_of`: which contracts exist, whatever their quotes.
* `/v3/snapshot/options/{underlying}` (`RESTClient.list_snapshot_options_chain`): the chain
  snapshot, same filters: the last quote's bid/ask, implied volatility, delta and open interest.
  A snapshot is the latest Polygon has (it is not historical): `as_of` only dates the chain.

Each contract becomes one `OptionQuote` (symbol = the OCC ticker, e.g. O:AAPL240816C00190000);
a listed contract without a snapshot row keeps NaN quotes (the planner's liquidity filter drops
it). Contracts whose deliverable is not 100 shares (adjusted after a split or a merger) are left
out: their prices do not fit the 100-share arithmetic of a spread.

The HTTP side is the bars source's (market_data.polygon): its urllib3 `Retry` (429 and 5xx with
exponential backoff, Retry-After honoured and capped), its pool wrapper (no `apiKey` in URLs,
a final 4xx classified by status) and the key only in the Authorization header. Every failure
is an `OptionChainError` naming the vendor, the endpoint (path only) and the underlying, with
the key scrubbed from anything a server sent back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import urllib3
from massive.exceptions import AuthError, BadResponse
from urllib3.exceptions import MaxRetryError, NewConnectionError, ResponseError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from breakout_assets.core.options import CONTRACT_MULTIPLIER, OptionChain, OptionQuote
from breakout_assets.resources.market_data.polygon import (
    KEY_ENV_VAR,
    _GuardedPool,
    _HTTPStatusError,
    _path_of,
    rest_client,
)
from breakout_assets.resources.option_chain.base import OptionChainError

CONTRACTS_PATH = "/v3/reference/options/contracts"
SNAPSHOT_PATH = "/v3/snapshot/options/{underlying}"
_CONTRACTS_PAGE = 1000  # the reference endpoint's maximum
_SNAPSHOT_PAGE = 250  # the snapshot endpoint's maximum
_RIGHTS = {"call": "C", "put": "P"}
_SHAPE_FAULTS = (AttributeError, KeyError, TypeError, ValueError)


class PolygonOptionChain:
    """`OptionChainSource` over Polygon's options reference and chain snapshot."""

    name = "polygon"

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.massive.com",
        timeout_s: float = 10.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        strike_band: float | None = 0.5,
    ) -> None:
        """`strike_band`: only strikes within price x (1 -/+ band) are asked for (None: all)."""
        if not api_key:
            raise OptionChainError(f"polygon option chain: no API key: set {KEY_ENV_VAR}")
        if strike_band is not None and not 0 < strike_band < 1:
            raise ValueError(f"strike_band must be in (0, 1) or None, got {strike_band}")
        self._key = api_key
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self.strike_band = strike_band
        try:
            self._client = rest_client(api_key, self._base_url, timeout_s, max_retries, backoff_s)
        except AuthError as exc:
            raise OptionChainError(f"polygon option chain: no API key: set {KEY_ENV_VAR}") from exc
        self._client.client = _GuardedPool(self._client.client, self._redact)

    def __repr__(self) -> str:  # never the key
        return f"PolygonOptionChain(base_url={self._base_url!r})"

    def close(self) -> None:
        self._client.client.clear()

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
        window = {
            "expiration_date_gte": min_expiry.isoformat(),
            "expiration_date_lte": max_expiry.isoformat(),
        }
        if self.strike_band is not None and underlying_price > 0:
            window["strike_price_gte"] = str(round(underlying_price * (1 - self.strike_band), 2))
            window["strike_price_lte"] = str(round(underlying_price * (1 + self.strike_band), 2))
        listed = self._listed(underlying, as_of, window)
        quoted = self._snapshot(underlying, window)
        quotes: dict[str, OptionQuote] = {}
        for q in [*listed, *quoted]:  # a snapshot row replaces its listed contract's NaN quotes
            if q is not None and min_expiry <= q.expiry <= max_expiry and q.symbol:
                quotes[q.symbol] = q
        if not quotes:
            raise OptionChainError(
                f"polygon lists no options of {underlying} expiring {min_expiry}..{max_expiry} "
                f"(GET {CONTRACTS_PATH}, GET {SNAPSHOT_PATH.format(underlying=underlying)}): an "
                f"unknown underlying, or none listed in that window"
            )
        ordered = sorted(quotes.values(), key=lambda q: (q.expiry, q.right, q.strike))
        return OptionChain(underlying, as_of, float(underlying_price), tuple(ordered))

    # --- endpoints -------------------------------------------------------------------------

    def _listed(
        self, underlying: str, as_of: date, window: dict[str, str]
    ) -> list[OptionQuote | None]:
        with self._errors(CONTRACTS_PATH, underlying):
            return [
                _from_contract(c, underlying)
                for c in self._client.list_options_contracts(
                    underlying_ticker=underlying,
                    as_of=as_of.isoformat(),
                    limit=_CONTRACTS_PAGE,
                    **window,
                )
            ]

    def _snapshot(self, underlying: str, window: dict[str, str]) -> list[OptionQuote | None]:
        params: dict[str, Any] = {
            re.sub(r"_(gte|lte)$", r".\1", k): v for k, v in window.items()
        }  # the snapshot takes its filters as raw query parameters (expiration_date.gte, ...)
        params["limit"] = _SNAPSHOT_PAGE
        endpoint = SNAPSHOT_PATH.format(underlying=underlying)
        with self._errors(endpoint, underlying):
            return [
                _from_snapshot(s, underlying)
                for s in self._client.list_snapshot_options_chain(underlying, params=params)
            ]

    # --- errors ----------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        text = text.replace(self._key, "***")
        return re.sub(r"(?i)(apikey=)[^&\s'\"]+", r"\1***", text)

    @contextmanager
    def _errors(self, endpoint: str, underlying: str) -> Iterator[None]:
        """Any failure of one endpoint as an OptionChainError naming vendor, endpoint and
        underlying (the key never in it; vendor texts are scrubbed and the cause chain cut)."""
        where = f"polygon option chain of {underlying} (GET {endpoint})"
        try:
            yield
        except _HTTPStatusError as exc:
            detail = self._redact(exc.detail)
            hint = (
                f": set {KEY_ENV_VAR} to a valid key"
                + (" whose plan covers options" if exc.status == 403 else "")
                if exc.status in (401, 403)
                else ""
            )
            raise OptionChainError(
                f"{where} failed: HTTP {exc.status} for GET {exc.path}: {detail}{hint}"
            ) from None
        except MaxRetryError as exc:
            raise OptionChainError(
                self._redact(
                    f"{where} failed after {self._max_retries} retries "
                    f"(GET {_path_of(exc.url)}): {self._describe(exc.reason)}"
                )
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise OptionChainError(self._redact(f"{where} failed: {exc}")) from None
        except BadResponse as exc:
            raise OptionChainError(self._redact(f"{where} failed: {exc}")) from None
        except _SHAPE_FAULTS as exc:
            raise OptionChainError(
                self._redact(
                    f"{where} answered in an unexpected shape: {type(exc).__name__}: "
                    f"{str(exc)[:200]}"
                )
            ) from None

    def _describe(self, reason: BaseException | None) -> str:
        if isinstance(reason, ResponseError):
            status = re.search(r"\b(\d{3})\b", str(reason))
            return f"the server kept answering HTTP {status.group(1) if status else '429/5xx'}"
        if isinstance(reason, NewConnectionError):
            return f"could not connect to {self._base_url}"
        if isinstance(reason, Urllib3Timeout):
            return f"timed out (no answer within {self._timeout_s:g} s)"
        return self._redact(f"{type(reason).__name__}: {reason}")


def _number(value: Any) -> float:
    """A vendor number as a float, NaN when absent (a string or object is a malformed body)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__} {str(value)[:40]!r}")
    return float(value)


def _contract_fields(
    ticker: Any, kind: Any, expiration: Any, strike: Any, shares: Any
) -> tuple[str, str, date, float] | None:
    """(OCC ticker, right, expiry, strike), None for a non-standard deliverable; malformed
    fields raise (the caller names the endpoint)."""
    if not isinstance(ticker, str) or not ticker:
        raise ValueError(f"a contract without a ticker ({ticker!r})")
    if kind not in _RIGHTS:
        raise ValueError(f"{ticker}: contract_type {kind!r} is neither call nor put")
    if not isinstance(expiration, str):
        raise ValueError(f"{ticker}: expiration_date {expiration!r} is not a YYYY-MM-DD date")
    strike_price = _number(strike)
    if not math.isfinite(strike_price) or strike_price <= 0:
        raise ValueError(f"{ticker}: strike_price {strike!r} is not a positive number")
    if shares is not None and _number(shares) != CONTRACT_MULTIPLIER:
        return None  # an adjusted contract (split, merger): not 100 shares
    return ticker, _RIGHTS[kind], date.fromisoformat(expiration), strike_price


def _from_contract(contract: Any, underlying: str) -> OptionQuote | None:
    """A listed contract, quotes unknown (NaN) until the snapshot fills them."""
    if contract.underlying_ticker not in (None, underlying):
        return None
    fields = _contract_fields(
        contract.ticker,
        contract.contract_type,
        contract.expiration_date,
        contract.strike_price,
        contract.shares_per_contract,
    )
    if fields is None:
        return None
    ticker, right, expiry, strike = fields
    return OptionQuote(underlying, expiry, strike, right, math.nan, math.nan, symbol=ticker)  # type: ignore[arg-type]


def _from_snapshot(snap: Any, underlying: str) -> OptionQuote | None:
    """A snapshot row: bid/ask of the last quote, IV, delta, open interest (NaN/0 if absent)."""
    details = snap.details
    if details is None:
        raise ValueError("a snapshot row without `details`")
    fields = _contract_fields(
        details.ticker,
        details.contract_type,
        details.expiration_date,
        details.strike_price,
        details.shares_per_contract,
    )
    if fields is None:
        return None
    ticker, right, expiry, strike = fields
    quote, greeks = snap.last_quote, snap.greeks
    bid = _number(quote.bid) if quote is not None else math.nan
    ask = _number(quote.ask) if quote is not None else math.nan
    interest = _number(snap.open_interest)
    return OptionQuote(
        underlying,
        expiry,
        strike,
        right,  # type: ignore[arg-type]
        bid,
        ask,
        open_interest=int(interest) if math.isfinite(interest) else 0,
        implied_vol=_number(snap.implied_volatility),
        delta=_number(greeks.delta) if greeks is not None else math.nan,
        symbol=ticker,
    )


__all__ = ["CONTRACTS_PATH", "SNAPSHOT_PATH", "PolygonOptionChain"]

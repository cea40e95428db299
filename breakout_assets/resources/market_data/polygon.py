"""Market data from Polygon (now "Massive") through the official `massive` REST client.

Design notes (see the massive 2.9.1 source):

* massive retries inside urllib3 (`Retry` set on the pool) and turns every other non-200 answer
  into `BadResponse(body)`, which carries no status code. We therefore replace its `Retry` with
  ours (429 and every 5xx, `max_retries`, exponential backoff starting at `backoff_s`) and wrap
  its urllib3 pool so a final 4xx is classified by status (401/403 -> AuthenticationError)
  before massive sees it.
* The API key travels only in the `Authorization` header. Should a `next_url` ever carry an
  `apiKey` query parameter, the pool wrapper drops it before urllib3 logs or raises with the URL;
  every message we build is also scrubbed of the key.
* Grouped daily bodies (~10,000 rows per session) are decoded from the raw JSON straight into a
  frame, skipping 10,000 massive model objects per session.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from itertools import takewhile
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd
import urllib3
from massive import RESTClient
from massive.exceptions import AuthError, BadResponse
from urllib3.exceptions import (
    MaxRetryError,
    NewConnectionError,
    ResponseError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

from breakout_assets.core.bars import (
    BAR_COLUMNS,
    HOURLY_COLUMNS,
    REFERENCE_COLUMNS,
    conform_bars,
    empty_bars,
)
from breakout_assets.core.sectors import sector_etf
from breakout_assets.resources.market_data.base import (
    AuthenticationError,
    MarketDataError,
    MarketDataSource,
    MissingDataError,
    VendorPayloadError,
    answered_non_sessions,
)
from breakout_assets.settings import DEFAULT_INDEX_TICKERS

log = logging.getLogger(__name__)

NEW_YORK = "America/New_York"
KEY_ENV_VAR = "BREAKOUT_POLYGON_API_KEY"

# Our name for an index series -> Polygon's ticker. ETFs (SPY, XLK, ...) are plain stock tickers.
INDEX_SYMBOLS: dict[str, str] = {
    "VIX": "I:VIX",
    "VIX3M": "I:VIX3M",
    "VVIX": "I:VVIX",
    "SPX": "I:SPX",
    "NDX": "I:NDX",
    "RUT": "I:RUT",
    "DJI": "I:DJI",
}

# SIC description keyword (matched at a word start, case-insensitive) -> NASDAQ screener sector.
# Checked in this order, first match wins: e.g. "REAL ESTATE INVESTMENT TRUSTS" is Real Estate
# before "INVESTMENT" makes it Finance, "RETAIL-GROCERY STORES" is Consumer Staples before
# "RETAIL" makes it Consumer Discretionary. Unmatched descriptions are "Miscellaneous".
SIC_SECTOR_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Health Care",
        (
            "PHARMACEUTICAL",
            "BIOLOGICAL",
            "DIAGNOSTIC",
            "MEDICAL",
            "ELECTROMEDICAL",
            "HOSPITAL",
            "HEALTH",
            "SURGICAL",
            "DENTAL",
            "OPHTHALMIC",
        ),
    ),
    ("Real Estate", ("REAL ESTATE", "REAL PROPERTY", "OPERATORS OF")),
    (
        "Finance",
        (
            "BANK",
            "SAVINGS INSTITUTION",
            "INSURANCE",
            "INVESTMENT",
            "SECURITY BROKERS",
            "FINANCE",
            "CREDIT",
            "LOAN",
            "MORTGAGE",
            "BLANK CHECK",
            "COMMODITY CONTRACTS",
            "ASSET-BACKED",
        ),
    ),
    (
        "Utilities",
        (
            "ELECTRIC SERVICES",
            "ELECTRIC & OTHER SERVICES",
            "WATER SUPPLY",
            "NATURAL GAS TRANSMISSION",
            "NATURAL GAS DISTRIBUTION",
            "GAS & OTHER SERVICES",
            "COGENERATION",
        ),
    ),
    ("Energy", ("PETROLEUM", "CRUDE", "OIL", "DRILLING", "NATURAL GAS", "COAL")),
    (
        "Telecommunications",
        (
            "TELEPHONE",
            "RADIOTELEPHONE",
            "TELEGRAPH",
            "COMMUNICATIONS SERVICES",
            "COMMUNICATIONS EQUIPMENT",
            "CABLE",
            "BROADCASTING",
        ),
    ),
    (
        "Technology",
        (
            "SOFTWARE",
            "COMPUTER",
            "SEMICONDUCTOR",
            "ELECTRONIC",
            "DATA PROCESSING",
            "INFORMATION RETRIEVAL",
        ),
    ),
    (
        "Consumer Staples",
        (
            "FOOD",
            "BEVERAGE",
            "GROCER",
            "TOBACCO",
            "CIGARETTE",
            "SOAP",
            "COSMETIC",
            "PERFUME",
            "MALT",
            "DISTILLED",
            "DAIRY",
            "MEAT",
        ),
    ),
    (
        "Consumer Discretionary",
        (
            "RETAIL",
            "EATING",
            "RESTAURANT",
            "HOTEL",
            "MOTEL",
            "AMUSEMENT",
            "RECREATION",
            "APPAREL",
            "MOTOR VEHICLE",
            "HOUSEHOLD",
            "FURNITURE",
            "CATALOG",
            "ADVERTISING",
            "OPERATIVE BUILDERS",
        ),
    ),
    (
        "Basic Materials",
        (
            "CHEMICAL",
            "MINING",
            "ORES",
            "METAL",
            "STEEL",
            "GOLD",
            "PAPER",
            "LUMBER",
            "PLASTIC",
            "AGRICULTURAL",
        ),
    ),
    (
        "Industrials",
        (
            "AIRCRAFT",
            "MACHINERY",
            "CONSTRUCTION",
            "TRUCKING",
            "RAILROAD",
            "AIR TRANSPORTATION",
            "AIR COURIER",
            "ENGINE",
            "INDUSTRIAL",
            "EQUIPMENT",
            "ELECTRICAL",
            "TRANSPORTATION",
            "WASTE",
            "REFUSE",
            "ENGINEERING",
            "SHIP",
            "ORDNANCE",
        ),
    ),
)
MISC_SECTOR = "Miscellaneous"

_SIC_PATTERNS = tuple(
    (sector, re.compile("|".join(rf"\b{re.escape(k)}" for k in keywords), re.IGNORECASE))
    for sector, keywords in SIC_SECTOR_KEYWORDS
)
_RETRY_STATUSES = frozenset([429, *range(500, 600)])
_RETRY_AFTER_CAP_S = 60.0
_AGGS_LIMIT = 50_000
_TICKERS_PAGE = 1000
_GROUPED_PATH = "/v2/aggs/grouped/locale/us/market/stocks/{day}"
_AGGS_PATH = "/v2/aggs/ticker/{symbol}/range/1/{span}/{first}/{last}"
_SHAPE_FAULTS = (AttributeError, KeyError, TypeError, ValueError)


def sic_sector(sic_description: str | None) -> str | None:
    """NASDAQ sector for a SIC description (None when Polygon has none for the ticker)."""
    if not sic_description:
        return None
    for sector, pattern in _SIC_PATTERNS:
        if pattern.search(sic_description):
            return sector
    return MISC_SECTOR


def ms_to_new_york(epoch_ms: Iterable[int | None]) -> pd.Series:
    """Epoch milliseconds (UTC by definition) as tz-aware New York timestamps (index kept)."""
    ms = epoch_ms if isinstance(epoch_ms, pd.Series) else pd.Series(list(epoch_ms))
    return pd.to_datetime(ms.astype("Int64"), unit="ms", utc=True).dt.tz_convert(NEW_YORK)


def ms_to_session(epoch_ms: Iterable[int | None]) -> pd.Series:
    """The New York calendar date of each timestamp, as naive midnight (a daily bar's session).

    Polygon stamps a daily bar at 00:00 New York (04:00/05:00 UTC): the UTC date would be right
    too, but only the New York date is right for any stamp within the session.
    """
    return ms_to_new_york(epoch_ms).dt.tz_localize(None).dt.normalize()


def _strip_api_key(url: str) -> str:
    """The URL without any `apiKey` query parameter (the key belongs in the header only)."""
    if "apikey" not in url.lower():
        return url
    parts = urlsplit(url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "apikey"
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _as_date(value: date) -> date:
    """A plain date: a Timestamp/datetime would put a time into Polygon URLs (or epoch ms)."""
    return pd.Timestamp(value).date() if isinstance(value, datetime) else value


def _path_of(url: str | None) -> str:
    """The path of a URL without its query: what we may show in messages and logs."""
    return urlsplit(url or "").path or "?"


class _HTTPStatusError(Exception):
    """A final non-retryable HTTP error (massive would only tell us the body)."""

    def __init__(self, status: int, path: str, detail: str) -> None:
        super().__init__(f"HTTP {status} for GET {path}: {detail}")
        self.status, self.path, self.detail = status, path, detail


class _BackoffRetry(Retry):
    """urllib3 Retry with a real first backoff (urllib3 sleeps 0 s before the first retry),
    a cap on server-sent Retry-After, and a log line per retry without the query string."""

    def get_backoff_time(self) -> float:
        history = reversed(self.history)
        errors = len(list(takewhile(lambda h: h.redirect_location is None, history)))
        if errors == 0:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (errors - 1)))

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, _RETRY_AFTER_CAP_S)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        cause = f"HTTP {response.status}" if response is not None else type(error).__name__
        log.warning("Polygon GET %s got %s; retrying (%s left)", _path_of(url), cause, new.total)
        return new


def rest_client(
    api_key: str, base_url: str, timeout_s: float, max_retries: int, backoff_s: float
) -> RESTClient:
    """The official client with our retry policy (429, 5xx and timeouts, backing off and
    honouring Retry-After); raises the client's AuthError without a key."""
    retry = _BackoffRetry(
        total=max_retries,
        status_forcelist=_RETRY_STATUSES,
        backoff_factor=backoff_s,
        raise_on_status=True,
        respect_retry_after_header=True,
    )
    return RESTClient(
        api_key=api_key,
        base=base_url,
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries=max_retries,
        pagination=True,
        connection_pool_kw={"retries": retry},
    )


class _GuardedPool:
    """Wraps massive's urllib3 pool: drops `apiKey` from URLs and classifies final 4xx."""

    def __init__(self, inner: urllib3.PoolManager, redact: Callable[[str], str]) -> None:
        self._inner = inner
        self._redact = redact

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self._inner.request(method, _strip_api_key(url), **kwargs)
        if response.status >= 400:
            body = self._redact(response.data.decode("utf-8", errors="replace"))
            raise _HTTPStatusError(response.status, _path_of(url), _error_detail(body))
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _error_detail(body: str) -> str:
    """Polygon's error text from a JSON error body (`error` or `message`), else the raw body."""
    match = re.search(r'"(?:error|message)"\s*:\s*"([^"]*)"', body)
    return (match.group(1) if match else body.strip())[:300]


class PolygonSource(MarketDataSource):
    """US stocks, indices and reference data from Polygon, with retries and clear errors."""

    name = "polygon"

    @property
    def origin(self) -> str:
        return f"polygon at {self._base_url}"

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.massive.com",
        timeout_s: float = 10.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        index_tickers: Sequence[str] = DEFAULT_INDEX_TICKERS,
        details_for: Sequence[str] | None = None,
    ) -> None:
        if not api_key:
            raise AuthenticationError(f"No Polygon API key: set {KEY_ENV_VAR}")
        self._key = api_key
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self.index_tickers = tuple(index_tickers)
        self.details_for = tuple(details_for or ())
        try:
            self._client = rest_client(api_key, self._base_url, timeout_s, max_retries, backoff_s)
        except AuthError as exc:
            raise AuthenticationError(f"No Polygon API key: set {KEY_ENV_VAR}") from exc
        guarded = _GuardedPool(self._client.client, self._redact)
        self._client.client = guarded  # type: ignore[assignment]

    # --- daily bars ------------------------------------------------------------------------

    def daily_bars(self, sessions: Sequence[date]) -> pd.DataFrame:
        frames = list(self.iter_daily_bars(sessions, chunk_sessions=len(sessions) or 1))
        return frames[0] if frames else empty_bars()

    def iter_daily_bars(
        self, sessions: Sequence[date], chunk_sessions: int = 20
    ) -> Iterator[pd.DataFrame]:
        """One frame per `chunk_sessions` sessions, so a multi-year backfill stays small in RAM."""
        if chunk_sessions < 1:
            raise ValueError("chunk_sessions must be >= 1")
        ordered = sorted({_as_date(s) for s in sessions})
        for start in range(0, len(ordered), chunk_sessions):
            chunk = ordered[start : start + chunk_sessions]
            yield conform_bars(pd.concat([self._grouped_day(s) for s in chunk], ignore_index=True))

    def _grouped_day(self, session: date) -> pd.DataFrame:
        """All US stocks (OTC excluded) for one session: exactly one request.

        Decoded from the raw JSON: no per-row model objects, and a garbled body is an error
        (massive's own decoding would log it and return [] silently).
        """
        day = session.isoformat()
        with self._errors(f"grouped daily bars for {day}"):
            response = self._client.get_grouped_daily_aggs(
                day, adjusted=True, include_otc=False, raw=True
            )
        endpoint = _GROUPED_PATH.format(day=day)
        try:
            body = json.loads(response.data)  # type: ignore[union-attr]
        except ValueError as exc:
            raise VendorPayloadError(
                f"Polygon sent an unreadable body for GET {endpoint} (session {day})"
            ) from exc
        raw = pd.DataFrame(
            _grouped_results(body, endpoint, day), columns=["T", "o", "h", "l", "c", "v", "otc"]
        )
        raw = raw[raw["otc"].ne(True)]
        if raw.empty:
            raise MissingDataError(f"Polygon returned no daily bars for session {day}")
        frame = raw.drop(columns="otc").set_axis(["ticker", *BAR_COLUMNS[2:]], axis=1)
        frame.insert(1, "session", pd.Timestamp(session).as_unit("us"))  # as parsed strings
        return frame

    # --- index series ----------------------------------------------------------------------

    def index_bars(self, sessions: Sequence[date], tickers: Sequence[str]) -> pd.DataFrame:
        """One paginated request series per ticker over min..max of the sessions.

        Raises MissingDataError when a series has no bar at all in that span: a wrong symbol
        or one the plan does not cover, never a legitimately empty answer.
        """
        if not sessions or not tickers:
            return empty_bars()
        wanted = pd.DatetimeIndex(sorted({pd.Timestamp(_as_date(s)) for s in sessions}))
        frames = [self._index_series(t, wanted) for t in dict.fromkeys(tickers)]
        return conform_bars(pd.concat(frames, ignore_index=True))

    def _index_series(self, ticker: str, wanted: pd.DatetimeIndex) -> pd.DataFrame:
        """Daily bars of one series over the sessions' span, stored under our name (VIX)."""
        symbol = INDEX_SYMBOLS.get(ticker, ticker)
        first, last = wanted[0].date(), wanted[-1].date()
        endpoint = _AGGS_PATH.format(symbol=symbol, span="day", first=first, last=last)
        with (
            self._errors(f"daily bars of {symbol} {first}..{last}"),
            _shape(endpoint, f"sessions {first}..{last}"),
        ):
            frame = _aggs_frame(
                list(
                    self._client.list_aggs(
                        symbol, 1, "day", first, last, adjusted=True, sort="asc", limit=_AGGS_LIMIT
                    )
                )
            )
            frame["session"] = ms_to_session(frame.pop("timestamp"))
        # Bars of sessions not asked for belong to other runs; a weekend, holiday or unreadable
        # stamp is kept for the quality layer to quarantine with its reason.
        strays = pd.DatetimeIndex(answered_non_sessions([d.date() for d in wanted]))
        frame = frame[frame["session"].isin(wanted.append(strays)) | frame["session"].isna()]
        if not frame["session"].isin(wanted).any():
            raise MissingDataError(
                f"Polygon returned no daily bars for {symbol} between {first} and {last}"
            )
        frame.insert(0, "ticker", ticker)
        return frame

    # --- hourly bars -----------------------------------------------------------------------

    def hourly_bars(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """Extended-hours bars included (flagged): the caller decides what to keep."""
        start, end = _as_date(start), _as_date(end)
        endpoint = _AGGS_PATH.format(symbol=ticker, span="hour", first=start, last=end)
        with (
            self._errors(f"hourly bars of {ticker} {start}..{end}"),
            _shape(endpoint, f"sessions {start}..{end}"),
        ):
            frame = _aggs_frame(
                list(
                    self._client.list_aggs(
                        ticker, 1, "hour", start, end, adjusted=True, sort="asc", limit=_AGGS_LIMIT
                    )
                )
            )
        frame.insert(0, "ticker", pd.array([ticker] * len(frame), dtype="string"))
        frame.insert(1, "ts", ms_to_new_york(frame.pop("timestamp")))
        frame = frame.dropna(subset=["ts"]).sort_values("ts").drop_duplicates("ts", keep="last")
        minutes = frame["ts"].dt.hour * 60 + frame["ts"].dt.minute
        frame["is_extended_hours"] = ((minutes < 9 * 60 + 30) | (minutes >= 16 * 60)).astype(bool)
        return frame.loc[:, list(HOURLY_COLUMNS)].reset_index(drop=True)

    # --- reference -------------------------------------------------------------------------

    def ticker_reference(
        self, as_of: date, details_for: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """Common stocks listed on `as_of`; sector/size only for `details_for` (one call each).

        `details_for` defaults to the constructor's list (empty: no detail calls), because
        details cost one request per ticker and the universe has ~5,000 of them.
        """
        as_of = _as_date(as_of)
        names = self._list_common_stocks(as_of)
        wanted = self.details_for if details_for is None else details_for
        enrich = [t for t in dict.fromkeys(wanted) if t in names]
        details = {t: self._details(t, as_of) for t in enrich}
        rows = [self._reference_row(t, names[t], details.get(t)) for t in sorted(names)]
        frame = pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS))
        for col in ("ticker", "name", "sector", "industry", "sector_etf"):
            frame[col] = frame[col].astype("string")
        for col in ("market_cap", "shares_outstanding"):
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        return frame

    def _list_common_stocks(self, as_of: date) -> dict[str, str | None]:
        """Ticker -> name of every active common stock on `as_of` (paginated by massive)."""
        with self._errors(f"ticker list as of {as_of}"):
            listed = list(
                self._client.list_tickers(
                    market="stocks",
                    type="CS",
                    active=True,
                    date=as_of.isoformat(),
                    limit=_TICKERS_PAGE,
                )
            )
        return {t.ticker: t.name for t in listed if t.ticker}  # type: ignore[union-attr]

    def _details(self, ticker: str, as_of: date) -> Any | None:
        """Ticker details, or None when Polygon has none for it (404): a gap, not a failure."""
        try:
            with self._errors(f"ticker details of {ticker}", passthrough=(404,)):
                return self._client.get_ticker_details(ticker, date=as_of.isoformat())
        except _HTTPStatusError:
            log.warning("Polygon has no ticker details for %s as of %s", ticker, as_of)
            return None

    def _reference_row(self, ticker: str, name: str | None, details: Any | None) -> tuple:
        if details is None:
            return (ticker, name, None, None, sector_etf(None, self.index_tickers), None, None)
        sector = sic_sector(details.sic_description)
        shares = details.share_class_shares_outstanding or details.weighted_shares_outstanding
        return (
            ticker,
            details.name or name,
            sector,
            details.sic_description,
            sector_etf(sector, self.index_tickers),
            details.market_cap,
            shares,
        )

    # --- errors ----------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        """The text with the API key (and any apiKey=... parameter) removed."""
        text = text.replace(self._key, "***")
        return re.sub(r"(?i)(apikey=)[^&\s'\"]+", r"\1***", text)

    @contextmanager
    def _errors(self, what: str, passthrough: tuple[int, ...] = ()) -> Iterator[None]:
        """Turn urllib3/massive failures of one call into our errors, saying what failed."""
        try:
            yield
        except _HTTPStatusError as exc:
            if exc.status in passthrough:
                raise
            raise self._status_error(what, exc) from None
        except MaxRetryError as exc:
            reason = self._describe(exc.reason)
            raise MarketDataError(
                self._redact(
                    f"Polygon {what} failed after {self._max_retries} retries "
                    f"(GET {_path_of(exc.url)}): {reason}"
                )
            ) from exc
        except urllib3.exceptions.HTTPError as exc:  # URLs reach urllib3 without the key
            raise MarketDataError(self._redact(f"Polygon {what} failed: {exc}")) from exc
        except BadResponse as exc:  # a body we did not produce: keep it out of the chain
            raise MarketDataError(self._redact(f"Polygon {what} failed: {exc}")) from None

    def _status_error(self, what: str, exc: _HTTPStatusError) -> MarketDataError:
        detail = self._redact(exc.detail)
        if exc.status in (401, 403):
            plan = " whose plan covers this data" if exc.status == 403 else ""
            return AuthenticationError(
                f"Polygon refused the API key for {what} (HTTP {exc.status}, GET {exc.path}: "
                f"{detail}): set {KEY_ENV_VAR} to a valid key{plan}"
            )
        return MarketDataError(
            f"Polygon {what} failed: HTTP {exc.status} for GET {exc.path}: {detail}"
        )

    def _describe(self, reason: BaseException | None) -> str:
        """Why urllib3 gave up, in words (the exception texts carry pool and URL details)."""
        if isinstance(reason, ResponseError):
            status = re.search(r"\b(\d{3})\b", str(reason))
            code = status.group(1) if status else "429/5xx"
            return f"the server kept answering HTTP {code}"
        if isinstance(reason, NewConnectionError):
            return f"could not connect to {urlsplit(self._base_url).netloc}"
        if isinstance(reason, Urllib3Timeout):
            return f"timed out (no answer within {self._timeout_s:g} s)"
        return self._redact(f"{type(reason).__name__}: {reason}")


def _grouped_results(body: Any, endpoint: str, day: str) -> list[dict[str, Any]]:
    """The `results` rows of a grouped daily body: a list of objects, or absent when empty."""
    where = f"Polygon GET {endpoint} (session {day})"
    if not isinstance(body, dict):
        raise VendorPayloadError(f"{where} answered a JSON {type(body).__name__}, not an object")
    results = body.get("results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise VendorPayloadError(
            f"{where}: `results` is a {type(results).__name__}, not a list of bars"
        )
    odd = next((r for r in results if not isinstance(r, dict)), None)
    if odd is not None:
        raise VendorPayloadError(
            f"{where}: `results` holds a {type(odd).__name__} ({str(odd)[:40]!r}), not bar objects"
        )
    return results


@contextmanager
def _shape(endpoint: str, what: str) -> Iterator[None]:
    """An answer massive or we could not take apart becomes an error naming the endpoint."""
    try:
        yield
    except _SHAPE_FAULTS as exc:
        raise VendorPayloadError(
            f"Polygon GET {endpoint} ({what}) answered in an unexpected shape: "
            f"{type(exc).__name__}: {str(exc)[:200]}"
        ) from None


def _aggs_frame(aggs: Sequence[Any]) -> pd.DataFrame:
    """OHLCV + epoch-ms timestamp of massive `Agg` objects (an empty frame when none)."""
    return pd.DataFrame(
        [(a.open, a.high, a.low, a.close, a.volume, a.timestamp) for a in aggs],
        columns=["open", "high", "low", "close", "volume", "timestamp"],
    )


__all__ = [
    "INDEX_SYMBOLS",
    "SIC_SECTOR_KEYWORDS",
    "PolygonSource",
    "ms_to_new_york",
    "ms_to_session",
    "sic_sector",
]

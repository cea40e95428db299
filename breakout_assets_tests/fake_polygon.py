"""A scriptable fake of the Polygon REST API, so the real `massive` client can be tested offline.

Serves the four endpoints `PolygonSource` uses and the two `PolygonOptionChain` uses (options
contracts reference, option chain snapshot; both filtered and paginated), in Polygon's JSON
shapes, from a threaded stdlib server on 127.0.0.1 (ephemeral port). Per test you can set the
data, force status codes ("429 then success": `fail(prefix, 429)`), add a delay (timeouts) and
inspect every request received::

    with FakePolygon(api_key="k") as fake:
        fake.grouped["2024-01-02"] = [grouped_row("AAPL", 1, 2, 0.5, 1.5, 1e6, day="2024-01-02")]
        fake.fail("/v2/aggs/grouped", 429)            # next grouped request gets a 429
        ...  PolygonSource(api_key="k", base_url=fake.base_url, ...)
        assert len(fake.requests_to("/v2/aggs/grouped")) == 2
"""

from __future__ import annotations

import json
import random
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest

NEW_YORK = ZoneInfo("America/New_York")

_GROUPED = re.compile(r"^/v2/aggs/grouped/locale/us/market/stocks/(\d{4}-\d{2}-\d{2})$")
_AGGS = re.compile(r"^/v2/aggs/ticker/([^/]+)/range/(\d+)/(\w+)/([^/]+)/([^/]+)$")
_TICKERS = "/v3/reference/tickers"
_DETAILS = re.compile(r"^/v3/reference/tickers/([^/]+)$")
_OPTION_CONTRACTS = "/v3/reference/options/contracts"
_OPTION_SNAPSHOT = re.compile(r"^/v3/snapshot/options/([^/]+)$")

_ERROR_TEXT = {
    401: "Unknown API Key",
    403: "You are not entitled to this data. Please upgrade your plan.",
    404: "Not found.",
    429: "You've exceeded the maximum requests per minute, please wait or upgrade.",
}


def ny_ms(local: str | datetime) -> int:
    """Epoch milliseconds of a New York wall-clock time ("2024-01-02 09:30" or a naive datetime)."""
    moment = datetime.fromisoformat(local) if isinstance(local, str) else local
    return int(moment.replace(tzinfo=NEW_YORK).timestamp() * 1000)


def agg_row(t_ms: int, o: float, h: float, low: float, c: float, v: float) -> dict[str, Any]:
    """One aggregate as Polygon sends it (`/v2/aggs/ticker/...`)."""
    return {"o": o, "h": h, "l": low, "c": c, "v": v, "vw": (h + low) / 2, "t": t_ms, "n": 1}


def daily_agg_row(
    day: str | date, o: float, h: float, low: float, c: float, v: float
) -> dict[str, Any]:
    """A daily aggregate, stamped like Polygon's: 00:00 New York of the session."""
    return agg_row(ny_ms(f"{day} 00:00"), o, h, low, c, v)


def grouped_row(
    ticker: str,
    o: float,
    h: float,
    low: float,
    c: float,
    v: float,
    *,
    day: str | date,
    otc: bool = False,
) -> dict[str, Any]:
    """One grouped-daily result, stamped like Polygon's: 16:00 New York (the close)."""
    row = {"T": ticker, **agg_row(ny_ms(f"{day} 16:00"), o, h, low, c, v)}
    if otc:
        row["otc"] = True
    return row


def make_grouped_rows(n: int, day: str | date, seed: int = 0) -> list[dict[str, Any]]:
    """`n` plausible grouped-daily results (tickers T00000...), e.g. for a benchmark."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        close = round(rng.uniform(2, 500), 2)
        rows.append(
            grouped_row(
                f"T{i:05d}",
                close * 0.99,
                close * 1.02,
                close * 0.97,
                close,
                float(rng.randint(10_000, 5_000_000)),
                day=day,
            )
        )
    return rows


def occ_ticker(underlying: str, expiry: str | date, right: str, strike: float) -> str:
    """Polygon's option ticker: O:<root><YYMMDD><C|P><strike x 1000, 8 digits>."""
    day = date.fromisoformat(expiry) if isinstance(expiry, str) else expiry
    return f"O:{underlying}{day:%y%m%d}{right}{round(strike * 1000):08d}"


def option_contract_row(
    underlying: str, expiry: str | date, right: str, strike: float, shares: float = 100
) -> dict[str, Any]:
    """One options contract as `/v3/reference/options/contracts` lists it."""
    return {
        "cfi": "OCASPS" if right == "C" else "OPASPS",
        "contract_type": "call" if right == "C" else "put",
        "exercise_style": "american",
        "expiration_date": str(expiry),
        "primary_exchange": "BATO",
        "shares_per_contract": shares,
        "strike_price": strike,
        "ticker": occ_ticker(underlying, expiry, right, strike),
        "underlying_ticker": underlying,
    }


def option_snapshot_row(
    underlying: str,
    expiry: str | date,
    right: str,
    strike: float,
    *,
    bid: float,
    ask: float,
    iv: float | None = 0.3,
    delta: float | None = 0.5,
    open_interest: float | None = 1000,
    underlying_price: float = 100.0,
) -> dict[str, Any]:
    """One contract of `/v3/snapshot/options/{underlying}` (None leaves a field out, as
    Polygon does for contracts without trades or greeks)."""
    row: dict[str, Any] = {
        "break_even_price": strike + (bid + ask) / 2,
        "day": {"close": (bid + ask) / 2, "volume": 10, "last_updated": 1},
        "details": {
            "contract_type": "call" if right == "C" else "put",
            "exercise_style": "american",
            "expiration_date": str(expiry),
            "shares_per_contract": 100,
            "strike_price": strike,
            "ticker": occ_ticker(underlying, expiry, right, strike),
        },
        "last_quote": {
            "ask": ask,
            "ask_size": 10,
            "bid": bid,
            "bid_size": 10,
            "last_updated": 1,
            "midpoint": (bid + ask) / 2,
            "timeframe": "REAL-TIME",
        },
        "underlying_asset": {"ticker": underlying, "price": underlying_price},
    }
    if iv is not None:
        row["implied_volatility"] = iv
    if delta is not None:
        row["greeks"] = {"delta": delta, "gamma": 0.01, "theta": -0.02, "vega": 0.1}
    if open_interest is not None:
        row["open_interest"] = open_interest
    return row


def _option_filters(query: dict[str, str]) -> dict[str, str]:
    """The options endpoints' filters of a query (kept in next_url, as Polygon's cursor does)."""
    names = ("underlying_ticker", "contract_type", "expiration_date", "strike_price", "as_of")
    return {k: v for k, v in query.items() if k.split(".")[0] in names}


def _option_match(details: dict[str, Any], underlying: str | None, query: dict[str, str]) -> bool:
    """Whether a contract passes the query's filters (expiry and strike ranges, type)."""
    if underlying is not None and details.get("underlying_ticker", underlying) != underlying:
        return False
    kind = query.get("contract_type")
    if kind and details.get("contract_type") != kind:
        return False
    expiry, strike = str(details.get("expiration_date")), details.get("strike_price")
    for op, ok in (
        ("gte", lambda a, b: a >= b),
        ("lte", lambda a, b: a <= b),
        ("gt", lambda a, b: a > b),
        ("lt", lambda a, b: a < b),
    ):
        if f"expiration_date.{op}" in query and not ok(expiry, query[f"expiration_date.{op}"]):
            return False
        if f"strike_price.{op}" in query and not ok(
            float(strike), float(query[f"strike_price.{op}"])
        ):
            return False
    return True


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Forced:
    prefix: str
    status: int
    remaining: int | None  # None: forever
    body: Any


@dataclass
class _Delay:
    prefix: str
    seconds: float
    remaining: int | None


@dataclass
class FakePolygon:
    """The fake server; configure its public dicts/lists, then point `base_url` at it."""

    api_key: str | None = "test-key"  # None: accept any credentials
    page_size: int = 5000  # results per page for aggregates and the ticker list
    next_url_api_key: bool = False  # append apiKey=<key> to next_url (as some proxies do)
    honor_include_otc: bool = True  # False: serve OTC rows whatever include_otc says
    grouped: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # date -> rows
    aggs: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    tickers: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    option_contracts: list[dict[str, Any]] = field(default_factory=list)  # option_contract_row
    option_snapshots: list[dict[str, Any]] = field(default_factory=list)  # option_snapshot_row
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._forced: list[_Forced] = []
        self._delays: list[_Delay] = []
        self._encoded: dict[tuple[str, bool, int, int], bytes] = {}
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting -------------------------------------------------------------------------

    def fail(
        self, prefix: str, status: int, times: int | None = 1, body: dict[str, Any] | None = None
    ) -> None:
        """The next `times` requests whose path starts with `prefix` get `status` (None: all)."""
        with self._lock:
            self._forced.append(_Forced(prefix, status, times, body))

    def answer(self, prefix: str, body: Any, times: int | None = None) -> None:
        """Answer requests under `prefix` with HTTP 200 and `body` as JSON (a misshapen payload)."""
        with self._lock:
            self._forced.append(_Forced(prefix, 200, times, body))

    def delay(self, seconds: float, prefix: str = "/", times: int | None = None) -> None:
        """Answer requests under `prefix` only after `seconds` (to provoke client timeouts)."""
        with self._lock:
            self._delays.append(_Delay(prefix, seconds, times))

    def requests_to(self, prefix: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakePolygon is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakePolygon:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakePolygon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- request handling (called from server threads) -------------------------------------

    def handle(self, raw_path: str, headers: dict[str, str]) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        path, query = unquote(parts.path), dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.requests.append(RecordedRequest(path, query, headers))
            forced, pause = self._take_forced(path), self._take_delay(path)
        if pause:
            self._stopping.wait(pause)
        if forced is not None:
            body = _error_body(forced.status) if forced.body is None else forced.body
            return forced.status, body
        if not self._authorized(headers, query):
            return 401, _error_body(401)
        return self._route(path, query)

    def _take_forced(self, path: str) -> _Forced | None:
        for forced in self._forced:
            if path.startswith(forced.prefix) and forced.remaining != 0:
                if forced.remaining is not None:
                    forced.remaining -= 1
                return forced
        return None

    def _take_delay(self, path: str) -> float:
        for pause in self._delays:
            if path.startswith(pause.prefix) and pause.remaining != 0:
                if pause.remaining is not None:
                    pause.remaining -= 1
                return pause.seconds
        return 0.0

    def _authorized(self, headers: dict[str, str], query: dict[str, str]) -> bool:
        if self.api_key is None:
            return True
        bearer = headers.get("authorization", "")
        return bearer == f"Bearer {self.api_key}" or query.get("apiKey") == self.api_key

    def _route(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any] | bytes]:
        if m := _GROUPED.match(path):
            return 200, self._grouped(m.group(1), query)
        if m := _AGGS.match(path):
            ticker, _mult, timespan, start, end = m.groups()
            return 200, self._aggs(path, ticker, timespan, start, end, query)
        if path == _TICKERS:
            return 200, self._page(path, self.tickers, query, int(query.get("limit", 100)))
        if path == _OPTION_CONTRACTS:
            rows = [
                r
                for r in self.option_contracts
                if _option_match(r, query.get("underlying_ticker"), query)
            ]
            size = int(query.get("limit", 10))
            return 200, self._page(path, rows, query, size, keep=_option_filters(query))
        if m := _OPTION_SNAPSHOT.match(path):
            underlying = m.group(1)
            rows = [
                r
                for r in self.option_snapshots
                if r.get("underlying_asset", {}).get("ticker") == underlying
                and _option_match(r.get("details", {}), None, query)
            ]
            size = int(query.get("limit", 10))
            return 200, self._page(path, rows, query, size, keep=_option_filters(query))
        if m := _DETAILS.match(path):
            found = self.details.get(m.group(1))
            if found is None:
                return 404, {
                    "status": "NOT_FOUND",
                    "request_id": "fake",
                    "message": "Ticker not found.",
                }
            return 200, {"status": "OK", "request_id": "fake", "results": found}
        return 404, _error_body(404)

    def _grouped(self, day: str, query: dict[str, str]) -> bytes:
        """The day's body, encoded once per (day, otc flag, row list): fast for benchmarks.

        Rows already served are cached: assign a new list to change a day's data.
        """
        rows = self.grouped.get(day, [])
        otc = query.get("include_otc") == "true" or not self.honor_include_otc
        key = (day, otc, id(rows), len(rows))
        with self._lock:
            cached = self._encoded.get(key)
        if cached is None:
            kept = rows if otc else [r for r in rows if not r.get("otc")]
            body: dict[str, Any] = {
                "queryCount": len(kept),
                "resultsCount": len(kept),
                "adjusted": True,
                "status": "OK",
                "request_id": "fake",
            }
            if kept:  # like Polygon: no "results" key at all when there are none
                body["results"] = kept
            cached = json.dumps(body).encode()
            with self._lock:
                self._encoded[key] = cached
        return cached

    def _aggs(
        self, path: str, ticker: str, timespan: str, start: str, end: str, query: dict[str, str]
    ) -> dict[str, Any]:
        lo, hi = _bound_ms(start, end_of_day=False), _bound_ms(end, end_of_day=True)
        rows = sorted(
            (r for r in self.aggs.get((ticker, timespan), []) if lo <= r["t"] <= hi),
            key=lambda r: r["t"],
            reverse=query.get("sort") == "desc",
        )
        body = self._page(path, rows, query, self.page_size)
        return {"ticker": ticker, "adjusted": True, **body}

    def _page(
        self,
        path: str,
        rows: list[dict[str, Any]],
        query: dict[str, str],
        size: int,
        keep: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One page of `rows` from the `cursor` offset, with a next_url when more remain (the
        `keep` query parameters carried into it, as Polygon's cursor carries the filters)."""
        offset = int(query.get("cursor", 0))
        size = max(1, min(size, self.page_size))
        page = rows[offset : offset + size]
        body: dict[str, Any] = {
            "status": "OK",
            "request_id": "fake",
            "count": len(page),
            "resultsCount": len(page),
            "results": page,
        }
        if offset + size < len(rows):
            nxt: dict[str, Any] = {**(keep or {}), "cursor": offset + size, "limit": size}
            if self.next_url_api_key and self.api_key:
                nxt["apiKey"] = self.api_key
            body["next_url"] = f"{self.base_url}{path}?{urlencode(nxt)}"
        return body


def _bound_ms(value: str, end_of_day: bool) -> int:
    """A `from`/`to` path segment (YYYY-MM-DD in New York, or epoch ms) as epoch ms."""
    if value.isdigit():
        return int(value)
    day = date.fromisoformat(value) + timedelta(days=1 if end_of_day else 0)
    return ny_ms(datetime.combine(day, time())) - (1 if end_of_day else 0)


def _error_body(status: int) -> dict[str, Any]:
    text = _ERROR_TEXT.get(status, "Internal server error." if status >= 500 else "Error.")
    kind = "NOT_AUTHORIZED" if status == 403 else "ERROR"
    return {"status": kind, "request_id": "fake", "error": text}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakePolygon

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout test) is expected; anything else is a fake bug."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API: no reconnect per request
    disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms ACK stalls
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body = self.server.fake.handle(self.path, headers)
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silent: pytest output stays readable."""


@pytest.fixture
def fake_polygon() -> Iterator[FakePolygon]:
    """A running FakePolygon expecting the API key "test-key"."""
    with FakePolygon() as fake:
        yield fake

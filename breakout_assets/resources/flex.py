"""IBKR Flex statements: the account's trades, from a file or the Flex Web Service.

IB's API serves the executions of the current day only; a Flex query (Trades section,
execution level of detail, with the order reference, order type, open/close indicator and
commission) holds the history. ib_async's `FlexReport` loads it from a file or downloads it
(SendRequest with the token and query id, then GetStatement at the URL the answer names); the
base URL is a setting so tests can point it at a local server.

The token comes from the environment only, read when a statement is fetched (never kept on the
object, shown in a repr or a message): any error is re-raised with the token masked.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ib_async import FlexReport

from breakout_assets.core.journal import Purpose, TradeFill, combo_fill
from breakout_assets.core.options import CONTRACT_MULTIPLIER
from breakout_assets.resources.broker.base import BrokerError
from breakout_assets.resources.broker.ibkr import journal_ref, order_purpose

EXCHANGE_TZ = ZoneInfo("America/New_York")
FLEX_URL = "https://ndcdyn.interactivebrokers.com/AccountManagement/FlexWebService/SendRequest?"


class FlexStatementError(BrokerError):
    """The statement could not be fetched or read (the message never holds the token)."""


class _Report(FlexReport):
    """ib_async's FlexReport with the service's base URL given, not read from the process
    environment (IB_FLEXREPORT_URL)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url

    def get_url(self) -> str:
        return self._url


class FlexStatement:
    """Where the statement comes from: a file, or the web service (query id + the token's
    environment variable)."""

    def __init__(
        self,
        path: Path | None = None,
        query_id: str | None = None,
        token_variable: str = "BREAKOUT_IBKR_FLEX_TOKEN",
        url: str = FLEX_URL,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        if path is None and not query_id:
            raise ValueError("a Flex statement needs a file or a query id")
        self.path, self.query_id, self.url = path, query_id, url
        self.token_variable = token_variable
        self._environ = environ

    def __repr__(self) -> str:
        where = str(self.path) if self.path else f"query {self.query_id} at {self.url}"
        return f"FlexStatement({where})"

    def report(self) -> FlexReport:
        if self.path is not None:
            try:
                return FlexReport(path=str(self.path))
            except Exception as exc:
                raise FlexStatementError(
                    f"cannot read the Flex statement {self.path}: {type(exc).__name__}: {exc}"
                ) from exc
        token = self._environ.get(self.token_variable, "")
        if not token:
            raise FlexStatementError(
                f"no Flex token: set {self.token_variable} to fetch query {self.query_id}"
            )
        report = _Report(self.url)
        try:
            report.download(token, self.query_id)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}".replace(token, "***")
            raise FlexStatementError(
                f"Flex query {self.query_id} at {self.url} failed: {message}"
            ) from None  # the cause's traceback may hold the URL, token included
        return report

    def fills(self) -> list[TradeFill]:
        return statement_fills(self.report())


def _when(trade: Any) -> tuple[date, datetime | None]:
    """The trade's session and time: `dateTime` (yyyyMMdd;HHmmss) or `tradeDate` (+
    `tradeTime`), in the exchange's time zone (the statement's for a US account)."""
    stamp = getattr(trade, "dateTime", "") or ""
    day, _, clock = stamp.partition(";")
    day = day or trade.tradeDate
    clock = clock or getattr(trade, "tradeTime", "") or ""
    session = datetime.strptime(day, "%Y%m%d").date()
    at = (
        datetime.strptime(day + clock, "%Y%m%d%H%M%S").replace(tzinfo=EXCHANGE_TZ)
        if clock
        else None
    )
    return session, at


def _exec_id(trade: Any) -> str:
    """IB's execution id (the API's execId), else the statement's trade id."""
    return getattr(trade, "ibExecID", "") or f"flex:{trade.tradeID}"


def statement_fills(report: FlexReport) -> list[TradeFill]:
    """The statement's executions (Trade rows at EXECUTION level; order-level summaries and
    other asset classes skipped) in the journal's terms: stocks one by one, a spread's option
    legs grouped by order into one combo fill (bought on an opening, sold on a closing)."""
    found: list[TradeFill] = []
    combos: dict[tuple[str, Purpose | None, str, str], list[Any]] = defaultdict(list)
    for trade in report.extract("Trade", parseNumbers=False):
        if getattr(trade, "levelOfDetail", "EXECUTION") != "EXECUTION":
            continue
        category = trade.assetCategory
        ref, purpose = journal_ref(getattr(trade, "orderReference", "") or "")
        opening = {"O": True, "C": False}.get(getattr(trade, "openCloseIndicator", "")[:1])
        session, at = _when(trade)
        if category == "OPT":
            order = getattr(trade, "ibOrderID", "") or getattr(trade, "orderID", "")
            combos[(ref, purpose or ("entry" if opening else None), order, str(session))].append(
                trade
            )
            continue
        if category != "STK":
            continue
        found.append(
            TradeFill(
                order_ref=ref,
                ticker=trade.symbol,
                action="BUY" if trade.buySell.upper().startswith("BUY") else "SELL",
                quantity=abs(int(float(trade.quantity))),
                price=float(trade.tradePrice),
                session=session,
                purpose=purpose or order_purpose(getattr(trade, "orderType", None), opening),
                time=at,
                commission=abs(float(getattr(trade, "ibCommission", 0) or 0)),
                fill_id=_exec_id(trade),
            )
        )
    for (ref, purpose, _, _), legs in combos.items():
        session, at = _when(legs[-1])
        found.append(
            combo_fill(
                ref,
                getattr(legs[0], "underlyingSymbol", "") or legs[0].symbol.split()[0],
                "BUY" if purpose == "entry" else "SELL",
                purpose,
                [
                    (
                        int(float(t.quantity)),  # signed: bought legs positive
                        float(t.tradePrice),
                        int(float(getattr(t, "multiplier", "") or CONTRACT_MULTIPLIER)),
                        abs(float(getattr(t, "ibCommission", 0) or 0)),
                    )
                    for t in legs
                ],
                session,
                at,
                "+".join(sorted(_exec_id(t) for t in legs)),
            )
        )
    return sorted(
        found, key=lambda f: (f.session, f.time.timestamp() if f.time else 0.0, f.order_ref)
    )

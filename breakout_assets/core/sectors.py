"""Sector names (NASDAQ screener's, not GICS) and the sector ETF that stands for each."""

from __future__ import annotations

from collections.abc import Iterable

MARKET_ETF = "SPY"

SECTOR_ETF = {
    "Technology": "XLK",
    "Finance": "XLF",
    "Health Care": "XLV",
    "Energy": "XLE",
    "Industrials": "XLI",
    "Consumer Discretionary": "XLY",
    "Consumer Staples": "XLP",
    "Utilities": "XLU",
    "Basic Materials": "XLB",
    "Real Estate": "XLRE",
    "Telecommunications": "XLC",
}


def sector_etf(sector: str | None, available: Iterable[str]) -> str:
    """The sector's SPDR when we have its series, else the market ETF (XLB, XLC, XLRE, unknown)."""
    etf = SECTOR_ETF.get(sector or "")
    return etf if etf is not None and etf in set(available) else MARKET_ETF

"""The bar frame contract shared by every market-data source and the database tables."""

from __future__ import annotations

import pandas as pd

BAR_COLUMNS = ("ticker", "session", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
HOURLY_COLUMNS = ("ticker", "ts", "open", "high", "low", "close", "volume", "is_extended_hours")
REFERENCE_COLUMNS = (
    "ticker", "name", "sector", "industry", "sector_etf", "market_cap", "shares_outstanding",
)


def empty_bars() -> pd.DataFrame:
    return conform_bars(pd.DataFrame({c: [] for c in BAR_COLUMNS}))


def conform_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """Daily bars in the contract's columns and dtypes: `session` as datetime64 (midnight).

    Values are not validated here (that is `core.quality`): a malformed value becomes NaN so the
    row can be quarantined with its reason instead of failing the whole load.
    """
    out = pd.DataFrame(
        {
            "ticker": frame["ticker"].astype("string"),
            "session": pd.to_datetime(frame["session"], errors="coerce").dt.normalize(),
        }
    )
    for col in PRICE_COLUMNS + ("volume",):
        out[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return out.reset_index(drop=True)

"""Market data: three interchangeable sources, one Dagster resource class per source.

`BREAKOUT_DATA_SOURCE` picks Polygon (the official `massive` client), a directory of files, or
the seeded synthetic market; `definitions.market_data_resource` turns that choice into the
resource (see `resource`).
"""

from __future__ import annotations

from breakout_assets.resources.market_data.base import (
    AuthenticationError,
    MarketDataError,
    MarketDataSource,
    MissingDataError,
)
from breakout_assets.resources.market_data.resource import (
    FilesMarketData,
    MarketDataResource,
    PolygonMarketData,
    SyntheticMarketData,
)

__all__ = [
    "AuthenticationError",
    "FilesMarketData",
    "MarketDataError",
    "MarketDataResource",
    "MarketDataSource",
    "MissingDataError",
    "PolygonMarketData",
    "SyntheticMarketData",
]

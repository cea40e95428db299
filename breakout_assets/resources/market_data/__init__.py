"""MarketDataResource: one door to market data, three interchangeable sources.

`BREAKOUT_DATA_SOURCE` picks Polygon (the official `massive` client), a directory of files, or
the seeded synthetic market. Sources are built once per process and reused, so the files
source reads its parquet once and the synthetic source draws its universe once.
"""

from __future__ import annotations

from functools import lru_cache

from dagster import ConfigurableResource
from pydantic import Field

from breakout_assets.resources.market_data.base import (
    AuthenticationError,
    MarketDataError,
    MarketDataSource,
    MissingDataError,
)

__all__ = [
    "AuthenticationError", "MarketDataError", "MarketDataResource", "MarketDataSource",
    "MissingDataError",
]


class MarketDataResource(ConfigurableResource):
    source_name: str = Field(description="files | polygon | synthetic")
    files_dir: str = ""
    index_tickers: list[str] = Field(default_factory=list)
    hourly_aliases: dict[str, str] = Field(default_factory=dict)
    polygon_api_key: str | None = Field(default=None, description="From BREAKOUT_POLYGON_API_KEY")
    polygon_base_url: str = "https://api.massive.com"
    polygon_timeout_s: float = 10.0
    polygon_max_retries: int = 5
    polygon_backoff_s: float = 0.5
    synthetic_tickers: int = 500
    synthetic_seed: int = 7
    synthetic_origin: str = "2015-01-02"

    def source(self) -> MarketDataSource:
        return _build_source(self.model_dump_json())


@lru_cache(maxsize=8)
def _build_source(config_json: str) -> MarketDataSource:
    config = MarketDataResource.model_validate_json(config_json)
    if config.source_name == "files":
        from breakout_assets.resources.market_data.files import FilesSource

        return FilesSource(config.files_dir, hourly_aliases=config.hourly_aliases)
    if config.source_name == "polygon":
        from breakout_assets.resources.market_data.polygon import PolygonSource

        return PolygonSource(
            api_key=config.polygon_api_key or "",
            base_url=config.polygon_base_url,
            timeout_s=config.polygon_timeout_s,
            max_retries=config.polygon_max_retries,
            backoff_s=config.polygon_backoff_s,
            index_tickers=config.index_tickers,
        )
    if config.source_name == "synthetic":
        from datetime import date

        from breakout_assets.resources.market_data.synthetic import SyntheticSource

        return SyntheticSource(
            n_tickers=config.synthetic_tickers,
            seed=config.synthetic_seed,
            origin=date.fromisoformat(config.synthetic_origin),
        )
    raise MarketDataError(f"unknown BREAKOUT_DATA_SOURCE {config.source_name!r}")

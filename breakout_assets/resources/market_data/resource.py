"""The market-data resources: one ConfigurableResource per source, all with `source()`.

Each class carries only its own source's fields, so the UI shows what a run really uses and a
test swaps the whole resource. Which one a deployment uses is chosen in one place
(`definitions.market_data_resource`). Sources are built once per process per configuration and
reused, so the files source reads its parquet once and the synthetic source draws its universe
once.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import date

from dagster import ConfigurableResource
from pydantic import Field

from breakout_assets.resources.market_data.base import MarketDataSource
from breakout_assets.resources.postgres import env_resolved


class MarketDataResource(ConfigurableResource):
    """What assets ask for: any market-data resource (annotate with this base)."""

    def source(self) -> MarketDataSource:
        return _cached_source(self)

    @abstractmethod
    def build_source(self) -> MarketDataSource:
        """A new source for this configuration (`source()` caches it)."""


def _cached_source(resource: MarketDataResource) -> MarketDataSource:
    # Keyed by class and configuration (an EnvVar by its name); built from the resource itself,
    # whose EnvVars build_source reads.
    key = (type(resource), resource.model_dump_json())
    if key not in _SOURCES:
        if len(_SOURCES) >= 8:
            _SOURCES.pop(next(iter(_SOURCES)))
        _SOURCES[key] = resource.build_source()
    return _SOURCES[key]


_SOURCES: dict[tuple[type, str], MarketDataSource] = {}


class FilesMarketData(MarketDataResource):
    """Bars and reference data from a directory of parquet/CSV files."""

    files_dir: str = Field(description="Directory of the files (BREAKOUT_FILES_DIR).")
    hourly_aliases: dict[str, str] = Field(
        default_factory=dict, description="Ticker -> the name its 1-hour file is stored under."
    )

    def build_source(self) -> MarketDataSource:
        from breakout_assets.resources.market_data.files import FilesSource

        return FilesSource(self.files_dir, hourly_aliases=self.hourly_aliases)


class PolygonMarketData(MarketDataResource):
    """Polygon (Massive) REST API through the official client; the key from the environment."""

    api_key: str = Field(description="Set as an EnvVar: the UI shows the variable, not the key.")
    base_url: str = "https://api.massive.com"
    timeout_s: float = 10.0
    max_retries: int = 5
    backoff_s: float = 0.5
    index_tickers: list[str] = Field(default_factory=list)

    def build_source(self) -> MarketDataSource:
        from breakout_assets.resources.market_data.polygon import PolygonSource

        return PolygonSource(
            api_key=env_resolved(self.api_key) or "",
            base_url=self.base_url,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            index_tickers=self.index_tickers,
        )


class SyntheticMarketData(MarketDataResource):
    """The seeded synthetic market: same seed, same bars, on any machine."""

    tickers: int = 500
    seed: int = 7
    origin: str = Field(default="2015-01-02", description="First session of the market.")

    def build_source(self) -> MarketDataSource:
        from breakout_assets.resources.market_data.synthetic import SyntheticSource

        return SyntheticSource(
            n_tickers=self.tickers, seed=self.seed, origin=date.fromisoformat(self.origin)
        )

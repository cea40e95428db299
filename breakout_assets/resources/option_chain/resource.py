"""The option-chain resources: one ConfigurableResource per source, all with `build()`/`session()`.

Like the broker resources: each class carries only its own source's fields (the Polygon key and
nothing else as an EnvVar, so the UI shows the variable, not the key), a test swaps the whole
resource, and which one a deployment uses is chosen in one place (BREAKOUT_OPTIONS__CHAIN_SOURCE).
A source may hold a connection (IBKR), so `session()` closes what `build()` opened.

The model chain prices from the ticker's realised volatility, which only the asset can read (it
has the bars): `build(volatility=...)` passes that lookup; the vendor sources ignore it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import ClassVar

from dagster import ConfigurableResource
from pydantic import Field

from breakout_assets.core.config import OptionsConfig
from breakout_assets.resources.option_chain.base import OptionChainError, OptionChainSource
from breakout_assets.resources.postgres import env_resolved

VolatilityLookup = Callable[[str, date], float]

_MODEL_DEFAULTS = OptionsConfig()


class OptionChainResource(ConfigurableResource):
    """What assets ask for: any option-chain resource (annotate with this base). `kind` names
    the source in rows, metadata and messages."""

    kind: ClassVar[str]

    @abstractmethod
    def build(self, volatility: VolatilityLookup | None = None) -> OptionChainSource:
        """A new source (connecting on first use); the caller closes it (see `session`).
        `volatility(ticker, session)` is the realised volatility the model chain prices with."""

    @contextmanager
    def session(self, volatility: VolatilityLookup | None = None) -> Iterator[OptionChainSource]:
        source = self.build(volatility)
        try:
            yield source
        finally:
            source.close()


class PolygonOptionChainResource(OptionChainResource):
    """Polygon's options reference and chain snapshot through the official client."""

    kind: ClassVar[str] = "polygon"
    api_key: str = Field(description="Set as an EnvVar: the UI shows the variable, not the key.")
    base_url: str = "https://api.massive.com"
    timeout_s: float = 10.0
    max_retries: int = 5
    backoff_s: float = 0.5
    strike_band: float = Field(
        default=0.5, gt=0, lt=1, description="Only strikes within price x (1 -/+ this) are fetched."
    )

    def build(self, volatility: VolatilityLookup | None = None) -> OptionChainSource:
        from breakout_assets.resources.option_chain.polygon import PolygonOptionChain

        return PolygonOptionChain(
            api_key=env_resolved(self.api_key) or "",
            base_url=self.base_url,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            strike_band=self.strike_band,
        )


class IbkrOptionChainResource(OptionChainResource):
    """IB Gateway / TWS through ib_async, on a client id of its own (not the broker's)."""

    kind: ClassVar[str] = "ibkr"
    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = Field(default=18, description="Not the broker's client id: two connections.")
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 15.0
    strike_band: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description="Only strikes within price x (1 -/+ this) are qualified.",
    )
    market_data_type: int = Field(
        default=1, description="1 live, 2 frozen, 3 delayed, 4 delayed frozen."
    )
    open_interest_wait_s: float = Field(
        default=3.0,
        ge=0,
        description="Seconds to wait for tick 101 (open interest); 0: skip, OI 0.",
    )
    batch_size: int = Field(
        default=50, ge=1, description="Contracts per market-data request batch."
    )

    def build(self, volatility: VolatilityLookup | None = None) -> OptionChainSource:
        from breakout_assets.resources.option_chain.ibkr import IbkrOptionChain

        return IbkrOptionChain(
            host=self.host,
            port=self.port,
            client_id=self.client_id,
            connect_timeout_s=self.connect_timeout_s,
            request_timeout_s=self.request_timeout_s,
            strike_band=self.strike_band,
            market_data_type=self.market_data_type,
            open_interest_wait_s=self.open_interest_wait_s,
            batch_size=self.batch_size,
        )


class ModelOptionChainResource(OptionChainResource):
    """The Black-Scholes model chain (demo, tests, backtests): its OptionsConfig model fields."""

    kind: ClassVar[str] = "model"
    iv_multiplier: float = _MODEL_DEFAULTS.iv_multiplier
    vol_window: int = _MODEL_DEFAULTS.vol_window
    rate: float = _MODEL_DEFAULTS.rate
    model_half_spread: float = _MODEL_DEFAULTS.model_half_spread
    model_min_half_spread: float = _MODEL_DEFAULTS.model_min_half_spread
    model_open_interest: int = _MODEL_DEFAULTS.model_open_interest
    model_strike_range: float = _MODEL_DEFAULTS.model_strike_range
    model_weeklies: bool = _MODEL_DEFAULTS.model_weeklies

    def options_config(self) -> OptionsConfig:
        """The OptionsConfig the model chain prices with (other settings at their defaults)."""
        return OptionsConfig(
            iv_multiplier=self.iv_multiplier,
            vol_window=self.vol_window,
            rate=self.rate,
            model_half_spread=self.model_half_spread,
            model_min_half_spread=self.model_min_half_spread,
            model_open_interest=self.model_open_interest,
            model_strike_range=self.model_strike_range,
            model_weeklies=self.model_weeklies,
        )

    def build(self, volatility: VolatilityLookup | None = None) -> OptionChainSource:
        if volatility is None:
            raise OptionChainError(
                "model option chain: needs the realised-volatility lookup (build(volatility=...))"
            )
        from breakout_assets.resources.option_chain.model import ModelOptionChain

        return ModelOptionChain(self.options_config(), volatility)


def option_chain_resource(
    options: OptionsConfig,
    *,
    polygon_key: str | None = None,
    ibkr_host: str = "127.0.0.1",
    ibkr_port: int = 4002,
    ibkr_client_id: int = 18,
) -> OptionChainResource:
    """The resource `options.chain_source` names. `polygon_key` is the key's EnvVar (pass
    `EnvVar(settings.polygon_key_variable())`, never the value)."""
    if options.chain_source == "polygon":
        if polygon_key is None:
            raise OptionChainError("polygon option chain: no API key variable given")
        return PolygonOptionChainResource(api_key=polygon_key)
    if options.chain_source == "ibkr":
        return IbkrOptionChainResource(host=ibkr_host, port=ibkr_port, client_id=ibkr_client_id)
    return ModelOptionChainResource(
        iv_multiplier=options.iv_multiplier,
        vol_window=options.vol_window,
        rate=options.rate,
        model_half_spread=options.model_half_spread,
        model_min_half_spread=options.model_min_half_spread,
        model_open_interest=options.model_open_interest,
        model_strike_range=options.model_strike_range,
        model_weeklies=options.model_weeklies,
    )

"""The broker resources: one ConfigurableResource per broker, all with `build()`/`session()`.

Each class carries only its own broker's fields; which one a deployment uses is chosen in one
place (`definitions.broker_resource`), and a test swaps the whole resource.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from dagster import ConfigurableResource
from pydantic import Field

from breakout_assets.core.config import OptionsConfig
from breakout_assets.core.outcomes import OutcomeConfig
from breakout_assets.resources.broker.base import Broker
from breakout_assets.resources.postgres import PostgresResource, env_resolved

_OPTIONS = OptionsConfig()


class BrokerResource(ConfigurableResource):
    """What assets ask for: any broker resource (annotate with this base). `kind` names the
    broker in order rows, metadata and messages."""

    kind: ClassVar[str]

    @abstractmethod
    def build(self) -> Broker:
        """A new connected-on-demand broker adapter; the caller closes it (see `session`)."""

    @contextmanager
    def session(self) -> Iterator[Broker]:
        broker = self.build()
        try:
            yield broker
        finally:
            broker.close()


class SimulatedBrokerResource(BrokerResource):
    """The built-in broker: fills replayed on the stored bars, its account kept in Postgres."""

    kind: ClassVar[str] = "simulated"
    postgres: PostgresResource
    starting_equity: float = 100_000.0
    entry_valid_sessions: int = 1
    max_holding_sessions: int = 20
    # how it prices option combos (BREAKOUT_OPTIONS__*: the model chain's own settings)
    options_iv_multiplier: float = _OPTIONS.iv_multiplier
    options_vol_window: int = _OPTIONS.vol_window
    options_rate: float = _OPTIONS.rate
    options_slippage: float = _OPTIONS.slippage

    def build(self) -> Broker:
        from breakout_assets.resources.broker.simulated import SimulatedBroker

        return SimulatedBroker(
            self.postgres.engine,
            starting_equity=self.starting_equity,
            config=OutcomeConfig(
                entry_valid_sessions=self.entry_valid_sessions,
                max_holding_sessions=self.max_holding_sessions,
            ),
            options=OptionsConfig(
                iv_multiplier=self.options_iv_multiplier,
                vol_window=self.options_vol_window,
                rate=self.options_rate,
                slippage=self.options_slippage,
            ),
        )


class IbkrBrokerResource(BrokerResource):
    """Interactive Brokers through IB Gateway / TWS (ib_async)."""

    kind: ClassVar[str] = "ibkr"
    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = 17
    account: str = Field(description="Set as an EnvVar: the UI shows the variable, not the id.")
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 15.0

    def build(self) -> Broker:
        from breakout_assets.resources.broker.ibkr import IbkrBroker

        return IbkrBroker(
            host=self.host,
            port=self.port,
            client_id=self.client_id,
            account=env_resolved(self.account) or "",
            connect_timeout_s=self.connect_timeout_s,
            request_timeout_s=self.request_timeout_s,
        )

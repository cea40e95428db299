"""`BrokerResource`: the one door to a broker; which one is a setting (simulated by default)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import ConfigurableResource
from pydantic import Field

from breakout_assets.core.outcomes import OutcomeConfig
from breakout_assets.resources.broker.base import Broker
from breakout_assets.resources.postgres import PostgresResource


class BrokerResource(ConfigurableResource):
    kind: str = Field(default="simulated", description="simulated | ibkr")
    postgres: PostgresResource
    simulated_starting_equity: float = 100_000.0
    entry_valid_sessions: int = 1
    max_holding_sessions: int = 20
    ibkr_host: str = "127.0.0.1"
    ibkr_port: int = 4002
    ibkr_client_id: int = 17
    ibkr_account: str | None = None
    ibkr_connect_timeout_s: float = 10.0
    ibkr_request_timeout_s: float = 15.0

    def build(self) -> Broker:
        if self.kind == "ibkr":
            from breakout_assets.resources.broker.ibkr import IbkrBroker

            return IbkrBroker(
                host=self.ibkr_host, port=self.ibkr_port, client_id=self.ibkr_client_id,
                account=self.ibkr_account or "", connect_timeout_s=self.ibkr_connect_timeout_s,
                request_timeout_s=self.ibkr_request_timeout_s)
        from breakout_assets.resources.broker.simulated import SimulatedBroker

        return SimulatedBroker(
            self.postgres.engine, starting_equity=self.simulated_starting_equity,
            config=OutcomeConfig(entry_valid_sessions=self.entry_valid_sessions,
                                 max_holding_sessions=self.max_holding_sessions))

    @contextmanager
    def session(self) -> Iterator[Broker]:
        broker = self.build()
        try:
            yield broker
        finally:
            broker.close()

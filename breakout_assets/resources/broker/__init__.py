"""Brokers: IBKR through ib_async, and the simulated broker (the default); one resource each."""

from breakout_assets.resources.broker.resource import (
    BrokerResource,
    IbkrBrokerResource,
    SimulatedBrokerResource,
)

__all__ = ["BrokerResource", "IbkrBrokerResource", "SimulatedBrokerResource"]

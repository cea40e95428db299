"""Brokers: IBKR through ib_async, and the simulated broker (the default)."""

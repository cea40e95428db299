"""Option-chain sources for the options overlay (issue 11): polygon, ibkr, model."""

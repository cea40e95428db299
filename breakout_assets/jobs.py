"""Jobs: what runs together."""

from __future__ import annotations

from dagster import AssetSelection, TimeWindowPartitionsDefinition, define_asset_job

from breakout_assets.assets.features import GROUP as FEATURES
from breakout_assets.assets.market_data import GROUP as MARKET_DATA
from breakout_assets.assets.models import GROUP as MODELS
from breakout_assets.assets.outcomes import GROUP as OUTCOMES
from breakout_assets.assets.signals import GROUP as SIGNALS


def build_daily_pipeline(partitions_def: TimeWindowPartitionsDefinition):
    """Everything a session needs after the close; grows as the pipeline grows."""
    return define_asset_job(
        "daily_pipeline",
        selection=AssetSelection.groups(MARKET_DATA, FEATURES, SIGNALS, OUTCOMES),
        description="After the close: market data, features, breakout signals and their outcomes.",
    )


def build_train_models():
    """Both sides' models; run config (per asset) overrides the training settings."""
    return define_asset_job(
        "train_models",
        selection=AssetSelection.groups(MODELS),
        description="Tune, train, evaluate and (by rule) promote the long and short models.",
    )

"""Jobs: what runs together.

An asset that can send, change or cancel an order carries the broker tag (BROKER_ASSET_TAGS in
assets/orders.py) and runs only in jobs with the same run tag: one broker run at a time, and
the kill-switch sensor cancels them. Selections therefore go by that tag, never by group alone
(the trading group holds both the plans and the orders that send them).
"""

from __future__ import annotations

from dagster import AssetSelection, TimeWindowPartitionsDefinition, define_asset_job

from breakout_assets.assets.common import OBSERVE_GROUP
from breakout_assets.assets.market_data import GROUP as DATA
from breakout_assets.assets.trading import GROUP as TRADING
from breakout_assets.sensors import BROKER_TAG

BROKER_ASSETS = AssetSelection.tag(BROKER_TAG, "true")
# The research group also holds the backtests, which read the models: they run on their own.
MODELS = ("long_model", "short_model")


def build_daily_pipeline(partitions_def: TimeWindowPartitionsDefinition):
    """Everything a session needs after the close; grows as the pipeline grows."""
    return define_asset_job(
        "daily_pipeline",
        selection=AssetSelection.groups(DATA, TRADING, OBSERVE_GROUP) - BROKER_ASSETS,
        description="After the close: market data, features, signals, outcomes, scores, the "
        "trade plan and the opposing book's fades awaiting approval (nothing that "
        "sends an order), then the journal, the daily report and the drift watch.",
    )


def build_train_models():
    """Both sides' models; run config (per asset) overrides the training settings."""
    return define_asset_job(
        "train_models",
        selection=AssetSelection.assets(*MODELS),
        description="Tune, train, evaluate and (by rule) promote the long and short models.",
    )


def build_submit_orders():
    """Before the open: management of open positions, then the approved plans (one such run
    at a time)."""
    return define_asset_job(
        "submit_orders",
        selection=BROKER_ASSETS,
        tags={BROKER_TAG: "true"},
        description="Send the approved brackets (dry-run by default); the kill switch cancels it.",
    )

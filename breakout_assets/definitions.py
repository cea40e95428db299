"""The Dagster code location: assets, checks, resources, jobs and schedules.

Settings are read and validated here, when the definitions load: a wrong BREAKOUT_* value stops
the code location with a message that names the variable.
"""

from __future__ import annotations

import os

from dagster import AssetsDefinition, BackfillPolicy, Definitions, EnvVar

from breakout_assets.alerts import build_alert_sensors
from breakout_assets.approvals import approve_trades
from breakout_assets.assets.backtests import build_backtest_assets
from breakout_assets.assets.drift import build_drift_assets, build_drift_sensors
from breakout_assets.assets.features import build_feature_assets
from breakout_assets.assets.journal import build_journal_assets
from breakout_assets.assets.management import build_management_assets
from breakout_assets.assets.market_data import build_market_data_assets
from breakout_assets.assets.models import build_model_assets
from breakout_assets.assets.opposing import build_opposing_assets
from breakout_assets.assets.options import build_option_assets
from breakout_assets.assets.options_backtest import build_options_backtest_assets
from breakout_assets.assets.orders import build_order_assets
from breakout_assets.assets.outcomes import build_outcome_assets
from breakout_assets.assets.report import build_report_assets
from breakout_assets.assets.signals import build_signal_assets
from breakout_assets.assets.trading import build_trading_assets
from breakout_assets.jobs import build_daily_pipeline, build_submit_orders, build_train_models
from breakout_assets.partitions import describe_sessions, settings_partitions
from breakout_assets.resources.broker import (
    BrokerResource,
    IbkrBrokerResource,
    SimulatedBrokerResource,
)
from breakout_assets.resources.kill_switch import KillSwitch
from breakout_assets.resources.mailer import mailer_resource
from breakout_assets.resources.market_data import (
    FilesMarketData,
    MarketDataResource,
    PolygonMarketData,
    SyntheticMarketData,
)
from breakout_assets.resources.model_store import ModelStore
from breakout_assets.resources.option_chain.resource import option_chain_resource
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.run_guard import guarded_executor
from breakout_assets.schedules import build_daily_schedule, build_pre_open_schedule
from breakout_assets.sensors import build_dead_runs_sensor, build_kill_switch_sensor
from breakout_assets.settings import BreakoutSettings, get_settings
from breakout_assets.trading_checks import build_trading_checks


def from_environment(settings: BreakoutSettings, field: str) -> str | None:
    """A setting as the resource config holds it: by variable name (EnvVar) when the value came
    from the environment, so the UI and run config show the name, never the value. A value
    given in code (tests, scripts) has no variable to name and stays as given."""
    value = getattr(settings, field)
    variable = settings.env_name(field)
    if value is not None and (os.environ.get(variable) or "").strip() == value:
        return EnvVar(variable)
    return value


def market_data_resource(settings: BreakoutSettings) -> MarketDataResource:
    """The one place BREAKOUT_DATA_SOURCE picks the market-data resource."""
    if settings.data_source == "polygon":
        # The key is passed by name, never by value: it stays out of the UI and run config. The
        # name is the variable the settings read it from (BREAKOUT_POLYGON_API_KEY or an alias).
        return PolygonMarketData(
            api_key=EnvVar(settings.polygon_key_variable()),
            base_url=settings.polygon_base_url,
            timeout_s=settings.polygon_timeout_s,
            max_retries=settings.polygon_max_retries,
            backoff_s=settings.polygon_backoff_s,
            index_tickers=list(settings.index_tickers),
        )
    if settings.data_source == "synthetic":
        return SyntheticMarketData(
            tickers=settings.synthetic_tickers,
            seed=settings.synthetic_seed,
            origin=settings.synthetic_origin.isoformat(),
        )
    return FilesMarketData(
        files_dir=str(settings.files_dir), hourly_aliases=settings.hourly_aliases
    )


def broker_resource(settings: BreakoutSettings, postgres: PostgresResource) -> BrokerResource:
    """The one place BREAKOUT_BROKER picks the broker resource."""
    if settings.broker == "ibkr":
        return IbkrBrokerResource(
            host=settings.ibkr_host,
            port=settings.ibkr_port,
            client_id=settings.ibkr_client_id,
            account=from_environment(settings, "ibkr_account"),
            connect_timeout_s=settings.ibkr_connect_timeout_s,
            request_timeout_s=settings.ibkr_request_timeout_s,
        )
    return SimulatedBrokerResource(
        postgres=postgres,
        starting_equity=settings.simulated_starting_equity,
        entry_valid_sessions=settings.outcomes.entry_valid_sessions,
        max_holding_sessions=settings.outcomes.max_holding_sessions,
        options_iv_multiplier=settings.options.iv_multiplier,
        options_vol_window=settings.options.vol_window,
        options_rate=settings.options.rate,
        options_slippage=settings.options.slippage,
    )


def build_resources(settings: BreakoutSettings) -> dict:
    postgres = PostgresResource(
        database_url=from_environment(settings, "database_url"),
        local_data_dir=str(settings.pg_data_dir),
        database_url_variable=settings.env_name("database_url"),
    )
    return {
        "postgres": postgres,
        "market_data": market_data_resource(settings),
        "model_store": ModelStore(root=str(settings.model_store_dir)),
        "broker": broker_resource(settings, postgres),
        "option_chain": option_chain_resource(
            settings.options,
            polygon_key=EnvVar(settings.polygon_key_variable())
            if settings.options.chain_source == "polygon"
            else None,
            ibkr_host=settings.ibkr_host,
            ibkr_port=settings.ibkr_port,
        ),
        "mailer": mailer_resource(settings),
    }


def build_assets(settings: BreakoutSettings) -> list:
    partitions_def = settings_partitions(settings)
    assets = [
        *build_market_data_assets(partitions_def, settings),
        *build_feature_assets(partitions_def, settings),
        *build_signal_assets(partitions_def, settings),
        *build_outcome_assets(partitions_def, settings),
        *build_model_assets(settings),
        *build_trading_assets(partitions_def, settings),
        *build_order_assets(partitions_def, settings),
        *build_option_assets(partitions_def, settings),
        *build_management_assets(partitions_def, settings),
        *build_opposing_assets(partitions_def, settings),
        *build_backtest_assets(settings),
        *build_options_backtest_assets(settings),
        *build_journal_assets(partitions_def, settings),
        *build_report_assets(partitions_def, settings),
        *build_drift_assets(partitions_def, settings),
    ]
    return [
        chunked(
            asset.map_asset_specs(
                lambda spec: spec.replace_attributes(
                    description=describe_sessions(spec.description)
                )
            ),
            settings.backfill_chunk_sessions,
        )
        if asset.partitions_def is not None
        else asset
        for asset in assets
    ]


def chunked(asset: AssetsDefinition, chunk_sessions: int | None) -> AssetsDefinition:
    """BREAKOUT_BACKFILL_CHUNK_SESSIONS: a backfill runs as ranges of that many sessions
    (Dagster's multi-run policy) instead of one run; the assets' history dependencies
    (assets/common.py) keep every chunk's reads written before it starts."""
    if chunk_sessions is None:
        return asset
    return asset.with_attributes(backfill_policy=BackfillPolicy.multi_run(chunk_sessions))


def build_definitions(settings: BreakoutSettings) -> Definitions:
    daily_pipeline = build_daily_pipeline(settings_partitions(settings))
    submit_orders = build_submit_orders()
    return Definitions(
        assets=build_assets(settings),
        asset_checks=build_trading_checks(settings),
        jobs=[daily_pipeline, build_train_models(), submit_orders, approve_trades],
        schedules=[build_daily_schedule(daily_pipeline), build_pre_open_schedule(submit_orders)],
        sensors=[
            build_kill_switch_sensor(KillSwitch(settings.kill_switch_path)),
            build_dead_runs_sensor(),
            *build_alert_sensors(settings),
            *build_drift_sensors(settings),
        ],
        resources=build_resources(settings),
        executor=guarded_executor,  # dead runs recovered before any step waits for a slot
    )


defs = build_definitions(get_settings())

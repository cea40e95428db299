"""Shared test helpers: build assets against a settings object, read tables back."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from dagster import AssetsDefinition, materialize
from sqlalchemy import create_engine, text

from breakout_assets.assets.market_data import build_market_data_assets
from breakout_assets.definitions import build_assets, build_resources
from breakout_assets.partitions import session_partitions
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.settings import BreakoutSettings

# Set by conftest's `dagster_instance` fixture: the Postgres-backed instance tests run in.
DEFAULT_INSTANCE = None

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def market_assets(settings: BreakoutSettings) -> list[AssetsDefinition]:
    return build_market_data_assets(session_partitions(settings.start_date), settings)


def _selected(settings: BreakoutSettings, select: Sequence[str]) -> list[AssetsDefinition]:
    return [a for a in build_assets(settings) if a.key.to_user_string() in select]


def run_assets(
    settings: BreakoutSettings,
    select: Sequence[str],
    first: str,
    last: str | None = None,
    resources: dict | None = None,
    raise_on_error: bool = True,
):
    """Materialise `select` for one session or a range (as ONE run, like a backfill)."""
    assets = _selected(settings, select)
    tags = {RANGE_START: first, RANGE_END: last} if last else None
    return materialize(
        assets,
        resources=resources or build_resources(settings),
        partition_key=None if last else first,
        tags=tags,
        raise_on_error=raise_on_error,
        instance=DEFAULT_INSTANCE,
    )


def read_table(url: str, sql: str) -> pd.DataFrame:
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.connect() as conn:
        frame = pd.read_sql(text(sql), conn)
    engine.dispose()
    return frame


HAND_BUILT_SIGNAL = "TEST:2024-01-02:long"


def seed_hand_built(url: str, bars: Sequence[tuple], extra_sql: Sequence[str] = ()) -> None:
    """Hand-built daily bars of TEST and one long signal on 2024-01-02 (entry 100, stop 96,
    R = 4, targets 104 / 106 / 108, booked 104), plus any extra statements."""
    engine = create_engine(with_driver(url, "psycopg"))
    with engine.begin() as conn:
        for session, o, h, lo, c in bars:
            conn.execute(
                text("""INSERT INTO market_bars (ticker, session, open, high, low,
                                 close, volume) VALUES ('TEST', :s, :o, :h, :l, :c, 1000000)"""),
                {"s": session, "o": o, "h": h, "l": lo, "c": c},
            )
        conn.execute(
            text("""
            INSERT INTO breakout_signals (signal_id, ticker, session, side, rally_start,
                rally_end, consol_start, consol_end, rally_high, rally_low, move_height, entry,
                stop, stop_rule, atr, atr_window, target_50, target_75, target_100,
                booked_target, adjusted_entry, risk, reward_risk)
            VALUES (:id, 'TEST', '2024-01-02', 'long', '2023-11-01', '2023-11-20',
                '2023-11-21', '2024-01-01', 99, 91, 8, 100, 96, 'atr', 2, 30, 104, 106, 108,
                104, false, 4, 1)"""),
            {"id": HAND_BUILT_SIGNAL},
        )
        for statement in extra_sql:
            conn.execute(text(statement))
    engine.dispose()


def run_totals(result, asset: str) -> dict:
    """The figures an asset reported for its whole run: the materialisation's metadata for one
    session, the run's one observation for a range (assets/common.py `range_result`)."""
    observations = result.asset_observations_for_node(asset)
    events = observations or result.asset_materializations_for_node(asset)
    return {key: value.value for key, value in events[0].metadata.items()}


def train_and_serve(settings: BreakoutSettings, url: str, config: dict) -> None:
    """Both models trained on what is stored (a quick `config`), each served past the promotion
    rules: the tests need a serving model, not an edge."""
    from breakout_assets.model_admin import promote

    models = [a for a in build_assets(settings) if a.key.to_user_string().endswith("_model")]
    materialize(
        models,
        resources=build_resources(settings),
        instance=DEFAULT_INSTANCE,
        run_config={"ops": {f"{s}_model": {"config": config} for s in ("long", "short")}},
    )
    for experiment in read_table(url, "SELECT experiment_id FROM model_experiments").itertuples():
        promote(settings, experiment.experiment_id, force=True)

"""What the assets share: the session-asset decorator and Dagster metadata helpers."""

import base64
import warnings
from collections.abc import Mapping

import pandas as pd
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    BackfillPolicy,
    BetaWarning,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
    asset,
)

from breakout_assets.partitions import keys_to_sessions
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query

# The observe layer (journal, daily report, drift watch): it reads what the day left behind.
OBSERVE_GROUP = "observe"


def session_asset(partitions_def: TimeWindowPartitionsDefinition, group: str, **kwargs):
    """A session-partitioned asset whose backfill of any length is ONE run (range-aware)."""
    return asset(
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=group,
        **kwargs,
    )


def with_history(key: str, sessions: int) -> AssetDep:
    """A dependency on `key`'s partitions from `sessions` before a session through the session
    itself: the lookback the asset reads from the database. In a chunked backfill Dagster starts
    a chunk only once the chunks it reads are written, so any chunking gives one run's rows."""
    with warnings.catch_warnings():  # the parameter is beta in Dagster 1.13; tested here
        warnings.simplefilter("ignore", BetaWarning)
        mapping = TimeWindowPartitionMapping(
            start_offset=-sessions, allow_nonexistent_upstream_partitions=True
        )
    return AssetDep(AssetKey(key), partition_mapping=mapping)


def after_previous_session(key: str) -> AssetDep:
    """A dependency of an asset on its own previous session: it continues state from earlier
    sessions (Wilder sums, pending outcomes carried forward), so chunks of a backfill run in
    session order, as the sessions of one run do."""
    return AssetDep(
        AssetKey(key),
        partition_mapping=TimeWindowPartitionMapping(start_offset=-1, end_offset=-1),
    )


def png_metadata(png: bytes, caption: str) -> MetadataValue:
    return MetadataValue.md(f"![{caption}](data:image/png;base64,{base64.b64encode(png).decode()})")


def table_metadata(frame: pd.DataFrame) -> MetadataValue:
    return MetadataValue.md(frame.round(4).to_markdown(index=False))


def rows_by_session(
    postgres: PostgresResource, table: str, context: AssetExecutionContext
) -> dict[str, dict]:
    """{partition key: {"rows": n}} of the run's sessions in `table` (sql/queries/session_rows)."""
    with postgres.transaction() as conn:
        counts = conn.execute(
            query(f"session_rows.{table}"), {"sessions": keys_to_sessions(context.partition_keys)}
        ).all()
    by_day = {str(session): n for session, n in counts}
    return {key: {"rows": by_day.get(key, 0)} for key in context.partition_keys}


def range_result(
    context: AssetExecutionContext,
    totals: Mapping,
    per_session: Mapping[str, Mapping] | None = None,
    **kwargs,
) -> MaterializeResult:
    """The run's MaterializeResult with metadata where it belongs.

    One session: its figures are the totals. A range: Dagster copies a MaterializeResult's
    metadata into every session's materialisation (thousands of copies of the range's totals),
    so each session gets only its own figures and the totals are recorded once, as one
    asset-level observation of the run.
    """
    keys = context.partition_keys if context.has_partition_key_range else []
    if len(keys) <= 1:
        return MaterializeResult(metadata=dict(totals), **kwargs)
    span = f"{keys[0]}..{keys[-1]}"
    for key in keys:
        context.add_asset_metadata(
            {**(per_session or {}).get(key, {}), "range": span}, partition_key=key
        )
    context.log_event(
        AssetObservation(asset_key=context.asset_key, metadata={"range": span, **totals})
    )
    return MaterializeResult(**kwargs)

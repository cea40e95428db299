"""What the assets share: the session-asset decorator and Dagster metadata helpers."""

import base64

import pandas as pd
from dagster import BackfillPolicy, MetadataValue, TimeWindowPartitionsDefinition, asset


def session_asset(partitions_def: TimeWindowPartitionsDefinition, group: str, **kwargs):
    """A session-partitioned asset whose backfill of any length is ONE run (range-aware)."""
    return asset(partitions_def=partitions_def, backfill_policy=BackfillPolicy.single_run(),
                 group_name=group, **kwargs)


def png_metadata(png: bytes, caption: str) -> MetadataValue:
    return MetadataValue.md(f"![{caption}](data:image/png;base64,{base64.b64encode(png).decode()})")


def table_metadata(frame: pd.DataFrame) -> MetadataValue:
    return MetadataValue.md(frame.round(4).to_markdown(index=False))

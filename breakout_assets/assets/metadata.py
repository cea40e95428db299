"""Dagster metadata helpers shared by the assets: tables and PNG plots as markdown."""

import base64

import pandas as pd
from dagster import MetadataValue


def png_metadata(png: bytes, caption: str) -> MetadataValue:
    return MetadataValue.md(f"![{caption}](data:image/png;base64,{base64.b64encode(png).decode()})")


def table_metadata(frame: pd.DataFrame) -> MetadataValue:
    return MetadataValue.md(frame.round(4).to_markdown(index=False))

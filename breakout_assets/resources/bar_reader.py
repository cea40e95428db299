"""Reading a window of bars back out of Postgres, fast: COPY TO STDOUT parsed by pyarrow.

A scan over 10,000 tickers with a year of lookback reads millions of rows; row-by-row fetching
through a DBAPI cursor would dominate the run, COPY + a columnar parser does not.
"""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection

from breakout_assets.resources.sql import raw_query

_BAR_TYPES = {
    "ticker": pa.string(), "session": pa.date32(), "open": pa.float64(), "high": pa.float64(),
    "low": pa.float64(), "close": pa.float64(), "volume": pa.float64(),
}


def copy_out(conn: Connection, statement: str, params: dict) -> bytes:
    cursor = conn.connection.driver_connection.cursor()
    buffer = io.BytesIO()
    with cursor.copy(raw_query(statement), params) as copy:
        for block in copy:
            buffer.write(block)
    return buffer.getvalue()


def read_bar_window(conn: Connection, statement: str, start: date, end: date) -> pd.DataFrame:
    """Bars with start <= session <= end in the `core.bars` contract (session as datetime64)."""
    payload = copy_out(conn, statement, {"start": start, "end": end})
    table = pa_csv.read_csv(
        io.BytesIO(payload), convert_options=pa_csv.ConvertOptions(column_types=_BAR_TYPES)
    )
    frame = table.to_pandas()
    frame["session"] = pd.to_datetime(frame["session"])
    return frame

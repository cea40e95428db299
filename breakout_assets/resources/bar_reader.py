"""Reading a window of bars back out of Postgres, fast.

A scan over 10,000 tickers with a year and a half of history reads ~4M bars; any per-row Python
step (a DBAPI cursor, even COPY's one message per row) would dominate the run. The market window
comes back as one packed binary string per ticker, decoded by numpy in one call; the small index
window uses COPY.
"""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection

from breakout_assets.core.outcomes import BarPaths
from breakout_assets.partitions import ordinal_sessions, session_ordinals
from breakout_assets.resources.sql import query, raw_query

_BAR_TYPES = {
    "ticker": pa.string(),
    "session": pa.date32(),
    "open": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "close": pa.float64(),
    "volume": pa.float64(),
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


_PG_EPOCH = np.datetime64("2000-01-01", "D")
_ARRAY_HEADER = 20  # ndim, has-nulls flag, element type, length, lower bound (int32 each)
_BAR_RECORD = np.dtype(
    [
        ("day", ">i4"),
        ("open", ">f8"),
        ("high", ">f8"),
        ("low", ">f8"),
        ("close", ">f8"),
        ("volume", ">f8"),
    ]
)  # signals.window_bars_by_ticker


def _unpack(payload: bytes | None, value_type: str) -> np.ndarray:
    """A 1-D Postgres binary array without NULLs -> numpy (each element: int32 length + value)."""
    if payload is None:
        return np.empty(0, dtype=value_type.replace(">", "="))
    cells = np.frombuffer(
        payload, dtype=[("length", ">i4"), ("value", value_type)], offset=_ARRAY_HEADER
    )
    return cells["value"].astype(value_type.replace(">", "="))


def read_market_window(
    conn: Connection,
    start: date,
    first: date,
    end: date,
    sessions: list[date],
    tickers: list[str] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """History start..end of `tickers` (default: every ticker trading in first..end), as dense
    (ticker x session) arrays over `sessions`: (tickers, {open, high, low, close, volume}), NaN
    where no bar.
    """
    if tickers is None:
        tickers = (
            conn.execute(query("signals.window_tickers"), {"first": first, "end": end})
            .scalars()
            .all()
        )
    tickers = np.array(sorted(tickers), dtype=object)
    shape = (len(tickers), len(sessions))
    arrays = {name: np.full(shape, np.nan) for name in ("open", "high", "low", "close", "volume")}
    if not len(tickers):
        return tickers, arrays
    conn.execute(query("signals.window_work_mem"))
    packed = conn.execute(
        query("signals.window_bars_by_ticker"),
        {"start": start, "end": end, "tickers": list(tickers)},
    ).all()
    position = {ticker: i for i, ticker in enumerate(tickers)}
    records = np.frombuffer(b"".join(row.bars for row in packed), dtype=_BAR_RECORD)
    rows = np.repeat(
        np.array([position[row.ticker] for row in packed], dtype=np.int64),
        [len(row.bars) // _BAR_RECORD.itemsize for row in packed],
    )
    grid = (np.array(sessions, dtype="datetime64[D]") - _PG_EPOCH).astype(np.int32)
    days = records["day"]
    columns = np.searchsorted(grid, days)
    inside = (columns < len(grid)) & (grid[np.minimum(columns, len(grid) - 1)] == days)
    for name in arrays:
        arrays[name][rows[inside], columns[inside]] = records[name][inside]
    return tickers, arrays


def read_bar_paths(
    conn: Connection, tickers: list[str], after: list[date], until: list[date]
) -> dict[str, np.ndarray]:
    """Bars of tickers[i] with after[i] < session <= until[i], tagged with i (any order)."""
    packed = conn.execute(
        query("outcomes.outcome_bars_packed"), {"tickers": tickers, "after": after, "until": until}
    ).one()
    rows = {
        "signal_row": _unpack(packed.signal_row, ">i4").astype(np.int64) - 1,
        "session": _PG_EPOCH + _unpack(packed.day, ">i4").astype("timedelta64[D]"),
    }
    for name in ("open", "high", "low", "close"):
        rows[name] = _unpack(getattr(packed, name), ">f8")
    return rows


def read_signal_paths(conn: Connection, signals: pd.DataFrame, until_ord: np.ndarray) -> BarPaths:
    """Each signal's (`ticker`, `session` columns) stored bars after its session up to session
    ordinal `until_ord` (one per signal), grouped per signal in time order."""
    until = pd.to_datetime(ordinal_sessions(np.asarray(until_ord))).date.tolist()
    bars = read_bar_paths(conn, signals["ticker"].tolist(), signals["session"].tolist(), until)
    return BarPaths.from_rows(
        bars["signal_row"],
        session_ordinals(bars["session"]),
        len(signals),
        **{k: bars[k] for k in ("open", "high", "low", "close")},
    )

"""`breakout_signals`: the whole-market scanner (core.scanner) over each session range.

For each chunk of the range the asset reads the bars of the chunk plus the scanner's lookback,
scans them as dense arrays, and replaces the chunk's signals, all inside one transaction. The
scanner only emits breakouts on the chunk's sessions and reads nothing after them, so a session
gets the same signals whether it is run alone, inside a backfill, or live.
"""

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
)
from sqlalchemy import Connection

from breakout_assets.assets.common import (
    range_result,
    rows_by_session,
    session_asset,
    with_history,
)
from breakout_assets.core.scanner import MarketArrays, ScannerConfig, index_close_arrays, scan
from breakout_assets.core.sectors import MARKET_ETF
from breakout_assets.partitions import chunks, keys_to_sessions, lookback_start, nyse_sessions
from breakout_assets.resources.bar_reader import read_bar_window, read_market_window
from breakout_assets.resources.pg_copy import copy_payload, encode_csv
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query, raw_query
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

GROUP = "data"
_INTEGER_COLUMNS = ("atr_window", "entry_month")

SIGNAL_CHECKS = [
    AssetCheckSpec(
        "geometry_invariants",
        asset="breakout_signals",
        blocking=True,
        description="Levels in order, targets and stops from entry, ATR window <= 50, R:R "
        "consistent, base >= 1.5 x rally: for every row written.",
    )
]


def history_sessions(config: ScannerConfig) -> int:
    """Sessions before a breakout that detection and the pattern features may read."""
    return config.lookback_bars + config.feature_lookback_bars + config.volume_baseline_bars


# Up to this many sessions, a scan first asks Postgres which tickers can break out at all (a
# live day reads ~1 ticker in 10); a long backfill chunk would gain nothing from it.
PREFILTER_MAX_SESSIONS = 20


def breakout_candidates(
    conn: Connection, first: date, last: date, config: ScannerConfig
) -> list[str]:
    cmin = config.min_consol_bars
    return list(
        conn.execute(
            query("signals.breakout_candidates"),
            {
                "base_start": lookback_start(first, cmin),
                "first": first,
                "last": last,
                "cmin": cmin,
            },
        ).scalars()
    )


def scan_sessions(
    conn: Connection, sessions: Sequence[date], config: ScannerConfig
) -> pd.DataFrame:
    """Signals breaking out on `sessions` (contiguous), as rows of the breakout_signals table."""
    first, last = sessions[0], sessions[-1]
    start = lookback_start(first, history_sessions(config))
    window = nyse_sessions(start, last)
    candidates = (
        breakout_candidates(conn, first, last, config)
        if len(sessions) <= PREFILTER_MAX_SESSIONS
        else None
    )
    tickers, bars = read_market_window(conn, start, first, last, window, candidates)
    if not len(tickers):
        return pd.DataFrame()
    arrays = MarketArrays(tickers, np.array(window, dtype="datetime64[D]"), **bars)
    indices = read_bar_window(conn, "signals.copy_index_bars_window", start, last)
    etf_of = dict(conn.execute(query("signals.sector_etfs")).all())
    setups = scan(
        arrays,
        config,
        emit_from=window.index(first),
        end=window.index(last) + 1,
        index_close=index_close_arrays(indices, arrays.sessions),
        sector_etf_of_ticker=np.array([etf_of.get(t, MARKET_ETF) for t in arrays.tickers]),
    )
    return signal_rows(setups.to_frame(arrays))


def signal_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Scanner output -> table rows: a deterministic signal_id, contract dtypes."""
    if frame.empty:
        return frame
    frame = frame.copy()
    frame["signal_id"] = (
        frame["ticker"].astype(str)
        + ":"
        + frame["session"].dt.strftime("%Y-%m-%d")
        + ":"
        + frame["side"]
    )
    for column in _INTEGER_COLUMNS:
        frame[column] = frame[column].astype(np.int64)
    return frame


def write_signals(conn: Connection, sessions: Sequence[date], rows: pd.DataFrame) -> None:
    conn.execute(query("signals.delete_signals"), {"sessions": list(sessions)})
    if rows.empty:
        return
    columns = list(conn.execute(query("signals.signal_columns")).scalars())
    copy_payload(conn, raw_query("signals.copy_signals"), encode_csv(rows[columns]))


def geometry_check(
    conn: Connection, sessions: Sequence[date], config: ScannerConfig
) -> AssetCheckResult:
    f50, f75, f100 = config.target_fractions
    violations = conn.execute(
        query("signals.geometry_violations"),
        {
            "sessions": list(sessions),
            "consol_ratio": config.consol_min_ratio,
            "f50": f50,
            "f75": f75,
            "f100": f100,
            "stop_multiple": config.stop_atr_multiple,
            "atr_max_bars": config.atr_max_bars,
            "adjusted_fraction": config.adjusted_target_fraction,
        },
    ).all()
    return AssetCheckResult(
        check_name="geometry_invariants",
        passed=not violations,
        metadata={
            "violations_shown": len(violations),
            "examples": MetadataValue.json([f"{s}: {r}" for s, r in violations[:20]]),
        },
    )


def build_signal_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    config = settings.scanner

    @session_asset(
        partitions_def,
        GROUP,
        kinds={"postgres"},
        deps=[
            with_history("market_bars", history_sessions(settings.scanner)),
            with_history("index_bars", history_sessions(settings.scanner)),
            AssetKey("ticker_reference"),
        ],
        check_specs=SIGNAL_CHECKS,
        **versioned(settings, ("scanner",), ("signals",)),
    )
    def breakout_signals(
        context: AssetExecutionContext, postgres: PostgresResource
    ) -> MaterializeResult:
        """Rally -> consolidation -> breakout setups (and the short mirror) confirmed on each
        session, with entry, stop, targets, R, R:R and the pattern features."""
        sessions = keys_to_sessions(context.partition_keys)
        total = 0
        with postgres.transaction() as conn:
            for chunk in chunks(sessions, settings.signal_chunk_sessions):
                rows = scan_sessions(conn, chunk, config)
                write_signals(conn, chunk, rows)
                total += len(rows)
                context.log.info(f"breakout_signals: {chunk[0]}..{chunk[-1]}: {len(rows)} signals")
            check = geometry_check(conn, sessions, config)
            by_side = {
                r.side: r
                for r in conn.execute(query("signals.signal_counts"), {"sessions": list(sessions)})
            }
        metadata = {
            "signals": total,
            "sessions": len(sessions),
            "first_session": str(sessions[0]),
            "last_session": str(sessions[-1]),
            "history_sessions": history_sessions(config),
        }
        for side in ("long", "short"):
            row = by_side.get(side)
            metadata[f"{side}_signals"] = row.signals if row else 0
            metadata[f"{side}_median_reward_risk"] = (
                round(float(row.median_reward_risk), 3) if row else 0.0
            )
        return range_result(
            context,
            metadata,
            rows_by_session(postgres, "breakout_signals", context),
            check_results=[check],
        )

    return [breakout_signals]

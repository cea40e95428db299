"""Feature assets: per ticker-session market features computed in Postgres by `sql/features/`.

`daily_features` covers whatever partition range its run was launched for (one session or years
of them, as one run): it deletes the range's rows and recomputes them from the bar tables with
one set-based statement per chunk of sessions (each reading a lookback of earlier sessions), all
inside one transaction, so a re-run gives identical rows and a failure leaves the previous rows.
Each ticker's ATR / RSI sums continue from the Wilder state stored on its previous bar's row
when there is one, so the daily run costs the same with one year stored or twenty.
The definitions of the features are the header of `sql/features/daily_features.sql`.
"""

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
)
from sqlalchemy import Connection

from breakout_assets.assets.common import (
    after_previous_session,
    range_result,
    rows_by_session,
    session_asset,
    with_history,
)
from breakout_assets.ml.features import MARKET_FEATURES
from breakout_assets.partitions import chunks, keys_to_sessions, lookback_start, nyse_sessions
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.shadow_stages import ShadowStages
from breakout_assets.resources.sql import query, raw_query
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

GROUP = "data"
_SQL = "features/daily_features"
# The longest Wilder chain, in rows: the closed-form weights (13/14)^-k stay finite to ~9,000, and
# 7,000 is what the largest lookback + chunk settings already reach. A longer chain folds afresh.
WILDER_MAX_ROW = 7_000
_TAIL_ROWS = 20  # bars before a session that its 5/20-row windows read (the SQL's tail)

# the columns daily_features writes: the ATR the scanner reads, then the models' market features
FEATURE_COLUMNS = ("atr_14", *MARKET_FEATURES)


@dataclass
class FeatureStats:
    rows: int = 0
    tickers: int = 0
    sessions: int = 0
    nulls: dict[str, int] = field(default_factory=dict)
    lookback_starts: list[date] = field(default_factory=list)
    bulk: bool = False
    seconds: float = 0.0


def compute_daily_features(
    conn: Connection, sessions: Sequence[date], settings: BreakoutSettings
) -> FeatureStats:
    """Replace the features of `sessions` inside the caller's transaction; return what landed.

    The sessions are computed in chunks of `feature_chunk_sessions`, each one statement reading
    `feature_lookback_sessions` earlier sessions. When the sessions are a contiguous range that
    holds every stored row (a first backfill or a full rebuild) the table is truncated and its
    indexes rebuilt once at the end, as the bar writer does; either way it is one transaction.
    That bulk path spreads its chunks over `bulk_load_connections` connections, each computing
    into a stage of its own (resources/shadow_stages.py), and moves the stages in before
    building the indexes.
    Outside that bulk path (whose dropped indexes make stored rows slow to find) each ticker's
    Wilder sums continue from its previous bar's stored row (the previous chunk's included), and
    only tickers without one fold their lookback. A one-session chunk (the daily run) reads its
    21 sessions as one session-index range and sums them in one pass: ~1 s for 10,000 tickers
    with any history stored (benchmarks/bench_features.py).
    """
    started = time.perf_counter()
    ordered = sorted(sessions)
    first, last = ordered[0], ordered[-1]
    bounds = {"first_session": first, "last_session": last}
    stats = FeatureStats()
    conn.execute(query(f"{_SQL}.set_work_mem"), {"work_mem": settings.feature_work_mem})
    stats.bulk = (
        ordered == nyse_sessions(first, last)
        and not conn.execute(query(f"{_SQL}.rows_outside"), bounds).scalar()
    )
    parts = chunks(ordered, settings.feature_chunk_sessions)
    staged = _stages(conn, len(parts), settings) if stats.bulk else None
    lookback = settings.feature_lookback_sessions
    stats.lookback_starts = [lookback_start(chunk[0], lookback) for chunk in parts]
    jobs = [partial(_compute_chunk, chunk=c, settings=settings, bulk=stats.bulk) for c in parts]
    if staged is not None:
        staged.run(conn, jobs)  # before the truncate: the stages read the table's shape
    if stats.bulk:
        conn.execute(query(f"{_SQL}.truncate"))
        conn.exec_driver_sql(raw_query(f"{_SQL}.drop_indexes"))
    else:
        conn.execute(query(f"{_SQL}.delete_sessions"), {"sessions": ordered})
    if staged is not None:
        staged.move_in(conn)
    else:
        for job in jobs:
            job(conn)
    if stats.bulk:
        conn.exec_driver_sql(raw_query(f"{_SQL}.create_indexes"))
    row = conn.execute(query(f"{_SQL}.range_stats"), {"sessions": ordered}).mappings().one()
    stats.rows, stats.tickers, stats.sessions = row["rows"], row["tickers"], row["sessions"]
    stats.nulls = {c: int(row[c]) for c in FEATURE_COLUMNS}
    stats.seconds = time.perf_counter() - started
    return stats


def _stages(conn: Connection, n_chunks: int, settings: BreakoutSettings) -> ShadowStages | None:
    """A bulk rewrite of several chunks spreads them over the bulk-load connections
    (shadow_stages.py): one window statement runs on one backend. The same statements run
    either way, so the rows do not depend on the number of connections."""
    connections = min(settings.bulk_load_connections, n_chunks)
    return ShadowStages(conn.engine, "daily_features", connections) if connections > 1 else None


def _compute_chunk(
    conn: Connection, *, chunk: Sequence[date], settings: BreakoutSettings, bulk: bool
) -> None:
    """One statement: the chunk's rows from its lookback (a bulk chunk folds its own; otherwise
    each ticker's Wilder sums continue from its stored previous row)."""
    conn.execute(query(f"{_SQL}.set_work_mem"), {"work_mem": settings.feature_work_mem})
    conn.execute(
        query(f"{_SQL}.compute"),
        {
            "sessions": list(chunk),
            "lookback_start": lookback_start(chunk[0], settings.feature_lookback_sessions),
            "first_session": chunk[0],
            "last_session": chunk[-1],
            "sp500_cap_per_spy": settings.sp500_cap_per_spy,
            "continue_chain": not bulk,
            "max_chain_row": WILDER_MAX_ROW - len(chunk),
            "one_session": len(chunk) == 1,
            "recent_start": lookback_start(chunk[0], _TAIL_ROWS),
            "prev_session": lookback_start(chunk[0], 1),
        },
    )


def write_daily_features(
    postgres: PostgresResource, sessions: Sequence[date], settings: BreakoutSettings
) -> FeatureStats:
    """The whole range in one transaction: every session's features land, or none do."""
    try:
        with postgres.transaction() as conn:
            return compute_daily_features(conn, sessions, settings)
    except BaseException:
        # the run's own error is the one to see; a stage left now is dropped by the next
        with contextlib.suppress(Exception):
            ShadowStages(postgres.engine, "daily_features", settings.bulk_load_connections).drop()
        raise


def build_feature_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    @session_asset(
        partitions_def,
        GROUP,
        kinds={"postgres"},
        deps=[
            with_history("market_bars", settings.feature_lookback_sessions),
            with_history("index_bars", settings.feature_lookback_sessions),
            AssetKey("ticker_reference"),
            after_previous_session("daily_features"),
        ],
        **versioned(
            settings,
            ("feature_lookback_sessions", "sp500_cap_per_spy"),
            ("features/daily_features",),
        ),
    )
    def daily_features(
        context: AssetExecutionContext, postgres: PostgresResource
    ) -> MaterializeResult:
        """Per ticker-session market features (ATR, RSI, stochastic, SMA distances, volatility,
        trend, VIX, sector-relative and size features), computed in SQL from the bar tables."""
        sessions = keys_to_sessions(context.partition_keys)
        context.log.info(f"daily_features: {len(sessions)} sessions {sessions[0]}..{sessions[-1]}")
        stats = write_daily_features(postgres, sessions, settings)
        context.log.info(f"daily_features: wrote {stats.rows} rows in {stats.seconds:.2f}s")
        return range_result(
            context,
            per_session=rows_by_session(postgres, "daily_features", context),
            totals={
                "rows": stats.rows,
                "tickers": stats.tickers,
                "sessions": len(sessions),
                "sessions_with_rows": stats.sessions,
                "first_session": str(sessions[0]),
                "last_session": str(sessions[-1]),
                "lookback_start": str(stats.lookback_starts[0]),
                "lookback_sessions": settings.feature_lookback_sessions,
                "statements": len(stats.lookback_starts),
                "bulk_load": stats.bulk,
                "seconds": round(stats.seconds, 3),
                "rows_per_second": round(stats.rows / stats.seconds) if stats.seconds > 0 else 0,
                "null_counts": MetadataValue.json(stats.nulls),
            },
        )

    return [daily_features]

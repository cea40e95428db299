"""Market-data assets: fetch through the market-data resource, validate, write to Postgres.

Each run covers whatever partition range it was launched for (one session or years of them, as
one run) and writes it atomically; metadata says what landed and what was quarantined. The
quality checks run before the commit: a run that would empty a session or fails a blocking
check changes nothing, so bad data never replaces good data.
"""

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
    asset,
)
from sqlalchemy import Connection

from breakout_assets.assets.common import range_result, rows_by_session
from breakout_assets.checks import (
    INDEX_BARS_CHECKS,
    MARKET_BARS_CHECKS,
    index_bars_checks,
    market_bars_checks,
    refuse_failed_blocking,
)
from breakout_assets.core.quality import ValidatedBars, valid_ticker_mask, validate_bars
from breakout_assets.partitions import keys_to_sessions
from breakout_assets.resources.bar_store import BarTableName, WriteStats, write_bar_chunks
from breakout_assets.resources.market_data import MarketDataResource, MarketDataSource
from breakout_assets.resources.market_data.base import answered_non_sessions
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

GROUP = "data"

# 1-hour bars are read from the market-data source when a backtest needs them, never stored:
# an external asset, so the lineage shows what opposing_backtest reads.
HOURLY_BARS = AssetSpec(
    "hourly_bars",
    group_name=GROUP,
    description="1-hour bars of the market-data source (files or Polygon), read on demand by "
    "opposing_backtest; not materialised by this project.",
)


def _validated(
    frames: Iterator[pd.DataFrame],
    sessions: Sequence[date],
    max_price: float,
    log: Callable[[str], None],
) -> Iterator[ValidatedBars]:
    wanted, strays = set(sessions), set(answered_non_sessions(sessions))
    for frame in frames:
        checked = validate_bars(frame, wanted, strays, max_price)
        if len(checked.quarantined):
            log(f"quarantined {len(checked.quarantined)} rows: {checked.reasons}")
        yield checked


def _write_metadata(stats: WriteStats, sessions: Sequence[date], source: str, seconds: float):
    return {
        "rows": stats.rows,
        "tickers": len(stats.tickers),
        "sessions": len(sessions),
        "first_session": str(min(sessions)),
        "last_session": str(max(sessions)),
        "source": source,
        "quarantined": stats.quarantined,
        "quarantine_reasons": MetadataValue.json(stats.reasons),
        "bulk_load": stats.bulk,
        "seconds": round(seconds, 3),
        "rows_per_second": round(stats.rows / seconds) if seconds > 0 else 0,
    }


def _load(
    context: AssetExecutionContext,
    postgres: PostgresResource,
    table: BarTableName,
    source: MarketDataSource,
    frames: Callable[[Sequence[date]], Iterator[pd.DataFrame]],
    checks: Callable[[Connection, Sequence[date]], list[AssetCheckResult]],
    max_price: float,
    connections: int,
) -> tuple[dict, list[AssetCheckResult]]:
    """Write the run's sessions; the checks run inside the write, before its commit."""
    sessions = keys_to_sessions(context.partition_keys)
    context.log.info(
        f"{table}: {len(sessions)} sessions {sessions[0]}..{sessions[-1]} from {source.origin}"
    )
    results: list[AssetCheckResult] = []
    specs = context.assets_def.check_specs

    def verify(conn: Connection) -> None:
        results.extend(checks(conn, sessions))
        refuse_failed_blocking(table, source.origin, list(specs), results)

    started = time.perf_counter()
    stats = write_bar_chunks(
        postgres,
        table,
        sessions,
        source.name,
        _validated(frames(sessions), sessions, max_price, context.log.warning),
        origin=source.origin,
        verify=verify,
        on_wait=context.log.info,
        connections=connections,
    )
    seconds = time.perf_counter() - started
    context.log.info(f"{table}: wrote {stats.rows} rows in {seconds:.2f}s")
    return _write_metadata(stats, sessions, source.name, seconds), results


def build_market_data_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition | AssetSpec]:
    common = dict(
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=GROUP,
        kinds={"postgres"},
    )

    @asset(
        check_specs=MARKET_BARS_CHECKS,
        **common,
        **versioned(settings, ("data_source", "max_bar_price"), ("bars",)),
    )
    def market_bars(
        context: AssetExecutionContext, postgres: PostgresResource, market_data: MarketDataResource
    ) -> MaterializeResult:
        """Daily OHLCV of every US common stock (OTC excluded), one row per ticker and session."""
        source = market_data.source()
        metadata, checks = _load(
            context,
            postgres,
            "market_bars",
            source,
            lambda s: source.iter_daily_bars(s, settings.write_chunk_sessions),
            lambda conn, s: market_bars_checks(conn, s, settings),
            settings.max_bar_price,
            settings.bulk_load_connections,
        )
        return range_result(
            context,
            metadata,
            rows_by_session(postgres, "market_bars", context),
            check_results=checks,
        )

    @asset(
        check_specs=INDEX_BARS_CHECKS,
        **common,
        **versioned(settings, ("data_source", "index_tickers", "max_bar_price"), ("bars",)),
    )
    def index_bars(
        context: AssetExecutionContext, postgres: PostgresResource, market_data: MarketDataResource
    ) -> MaterializeResult:
        """SPY, QQQ, IWM, DIA, the sector SPDRs and VIX: the market context of every session."""
        source = market_data.source()
        tickers = list(settings.index_tickers)
        metadata, checks = _load(
            context,
            postgres,
            "index_bars",
            source,
            lambda s: iter([source.index_bars(s, tickers)]),
            lambda conn, s: index_bars_checks(conn, s, tickers),
            settings.max_bar_price,
            settings.bulk_load_connections,
        )
        return range_result(
            context,
            metadata,
            rows_by_session(postgres, "index_bars", context),
            check_results=checks,
        )

    @asset(**common, **versioned(settings, ("data_source",), ("bars",)))
    def ticker_reference(
        context: AssetExecutionContext, postgres: PostgresResource, market_data: MarketDataResource
    ) -> MaterializeResult:
        """Name, sector, industry, sector ETF and size of every ticker, as of the range's end."""
        source = market_data.source()
        as_of = keys_to_sessions(context.partition_keys)[-1]
        reference = source.ticker_reference(as_of)
        malformed = ~valid_ticker_mask(reference["ticker"])
        if malformed.any():  # the same symbols are quarantined from the bar tables
            shown = [repr(t) for t in reference.loc[malformed, "ticker"].head(5)]
            context.log.warning(
                f"ticker_reference: skipped {int(malformed.sum())} malformed "
                f"ticker(s) from {source.origin}, e.g. {', '.join(shown)}"
            )
            reference = reference.loc[~malformed]
        rows = _reference_rows(reference, source.name, as_of)
        with postgres.transaction() as conn:
            if rows:
                conn.execute(query("bars.upsert_ticker"), rows)
        sectors = reference["sector"].fillna("unknown").value_counts().to_dict()
        return MaterializeResult(
            metadata={
                "rows": len(rows),
                "tickers": reference["ticker"].nunique(),
                "as_of": str(as_of),
                "source": source.name,
                "sectors": MetadataValue.json(sectors),
            }
        )

    return [market_bars, index_bars, ticker_reference, HOURLY_BARS]


def _reference_rows(reference: pd.DataFrame, source: str, as_of: date) -> list[dict]:
    frame = reference.astype(object).where(reference.notna(), None)
    return [{**row, "source": source, "as_of": as_of} for row in frame.to_dict("records")]

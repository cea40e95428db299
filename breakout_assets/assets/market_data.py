"""Market-data assets: fetch through the market-data resource, validate, write to Postgres.

Each run covers whatever partition range it was launched for (one session or years of them, as
one run) and writes it atomically; metadata says what landed and what was quarantined.
"""


import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
    asset,
)

from breakout_assets.checks import (
    INDEX_BARS_CHECKS,
    MARKET_BARS_CHECKS,
    index_bars_checks,
    market_bars_checks,
)
from breakout_assets.core.quality import ValidatedBars, validate_bars
from breakout_assets.partitions import keys_to_sessions
from breakout_assets.resources.bar_store import BarTableName, WriteStats, write_bar_chunks
from breakout_assets.resources.market_data import MarketDataResource
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings

GROUP = "market_data"


def _validated(
    frames: Iterator[pd.DataFrame], sessions: Sequence[date], log: Callable[[str], None]
) -> Iterator[ValidatedBars]:
    wanted = set(sessions)
    for frame in frames:
        checked = validate_bars(frame, wanted)
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
    source: str,
    frames: Callable[[Sequence[date]], Iterator[pd.DataFrame]],
) -> tuple[list[date], dict]:
    sessions = keys_to_sessions(context.partition_keys)
    context.log.info(f"{table}: {len(sessions)} sessions {sessions[0]}..{sessions[-1]} from {source}")
    started = time.perf_counter()
    stats = write_bar_chunks(
        postgres, table, sessions, source, _validated(frames(sessions), sessions, context.log.warning)
    )
    seconds = time.perf_counter() - started
    context.log.info(f"{table}: wrote {stats.rows} rows in {seconds:.2f}s")
    return sessions, _write_metadata(stats, sessions, source, seconds)


def build_market_data_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    common = dict(
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        group_name=GROUP,
        kinds={"postgres"},
    )

    @asset(check_specs=MARKET_BARS_CHECKS, **common)
    def market_bars(
        context: AssetExecutionContext, postgres: PostgresResource, market_data: MarketDataResource
    ) -> MaterializeResult:
        """Daily OHLCV of every US common stock (OTC excluded), one row per ticker and session."""
        source = market_data.source()
        sessions, metadata = _load(
            context, postgres, "market_bars", source.name,
            lambda s: source.iter_daily_bars(s, settings.write_chunk_sessions),
        )
        with postgres.transaction() as conn:
            checks = market_bars_checks(conn, sessions, settings)
        return MaterializeResult(metadata=metadata, check_results=checks)

    @asset(check_specs=INDEX_BARS_CHECKS, **common)
    def index_bars(
        context: AssetExecutionContext, postgres: PostgresResource, market_data: MarketDataResource
    ) -> MaterializeResult:
        """SPY, QQQ, IWM, DIA, the sector SPDRs and VIX: the market context of every session."""
        source = market_data.source()
        tickers = list(settings.index_tickers)
        sessions, metadata = _load(
            context, postgres, "index_bars", source.name,
            lambda s: iter([source.index_bars(s, tickers)]),
        )
        with postgres.transaction() as conn:
            checks = index_bars_checks(conn, sessions, tickers)
        return MaterializeResult(metadata=metadata, check_results=checks)

    @asset(**common)
    def ticker_reference(
        context: AssetExecutionContext, postgres: PostgresResource, market_data: MarketDataResource
    ) -> MaterializeResult:
        """Name, sector, industry, sector ETF and size of every ticker, as of the range's end."""
        source = market_data.source()
        as_of = keys_to_sessions(context.partition_keys)[-1]
        reference = source.ticker_reference(as_of)
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

    return [market_bars, index_bars, ticker_reference]


def _reference_rows(reference: pd.DataFrame, source: str, as_of: date) -> list[dict]:
    frame = reference.astype(object).where(reference.notna(), None)
    return [{**row, "source": source, "as_of": as_of} for row in frame.to_dict("records")]

"""Data-quality checks on the bar tables, evaluated on the sessions a run is writing.

They run inside the asset's write transaction, after the new rows are in place and before the
commit, so they describe exactly the rows written; a failing blocking check refuses the run
(`refuse_failed_blocking`): the transaction rolls back, the stored rows stay as they were and
nothing downstream of the partitions runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue
from sqlalchemy import Connection

from breakout_assets.core.quality import RefusedSessionsError
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings

_EXAMPLES = 20

MARKET_BARS_CHECKS = [
    AssetCheckSpec(
        "no_duplicate_bars",
        asset="market_bars",
        blocking=True,
        description="At most one bar per ticker and session.",
    ),
    AssetCheckSpec(
        "ohlc_consistent",
        asset="market_bars",
        blocking=True,
        description="low <= open, close <= high; prices > 0; volume >= 0.",
    ),
    AssetCheckSpec(
        "session_coverage",
        asset="market_bars",
        blocking=True,
        description="Tickers per session within tolerance of the previous session.",
    ),
    AssetCheckSpec(
        "overnight_jumps",
        asset="market_bars",
        blocking=False,
        description="Opens far from the previous close (possible unadjusted splits).",
    ),
]

INDEX_BARS_CHECKS = [
    AssetCheckSpec(
        "index_coverage",
        asset="index_bars",
        blocking=False,
        description="Every configured index series present on every session.",
    ),
]


def _bounds(sessions: Sequence[date]) -> dict:
    return {
        "sessions": list(sessions),
        "first_session": min(sessions),
        "last_session": max(sessions),
    }


def market_bars_checks(
    conn: Connection, sessions: Sequence[date], settings: BreakoutSettings
) -> list[AssetCheckResult]:
    return [
        _no_duplicates(conn, sessions),
        _ohlc_consistent(conn, sessions),
        _session_coverage(conn, sessions, settings.coverage_tolerance),
        _overnight_jumps(conn, sessions, settings.jump_threshold),
    ]


def _no_duplicates(conn: Connection, sessions: Sequence[date]) -> AssetCheckResult:
    duplicates = conn.execute(query("bars.market_bars_duplicates"), _bounds(sessions)).scalar_one()
    return AssetCheckResult(
        check_name="no_duplicate_bars", passed=duplicates == 0, metadata={"duplicates": duplicates}
    )


def _ohlc_consistent(conn: Connection, sessions: Sequence[date]) -> AssetCheckResult:
    bad = (
        conn.execute(
            query("bars.market_bars_ohlc_violations"), {**_bounds(sessions), "limit": _EXAMPLES}
        )
        .mappings()
        .all()
    )
    return AssetCheckResult(
        check_name="ohlc_consistent",
        passed=not bad,
        metadata={"violations_shown": len(bad), "examples": MetadataValue.json(_jsonable(bad))},
    )


def _session_coverage(
    conn: Connection, sessions: Sequence[date], tolerance: float
) -> AssetCheckResult:
    counts = conn.execute(query("bars.market_bars_session_counts"), _bounds(sessions)).all()
    by_session = dict(counts)
    missing = [str(s) for s in sessions if s not in by_session]
    jumps = []
    ordered = sorted(by_session.items())
    for (_, before), (session, now) in zip(ordered, ordered[1:], strict=False):
        change = now / before - 1
        if abs(change) > tolerance:
            jumps.append(
                {
                    "session": str(session),
                    "tickers": now,
                    "previous": before,
                    "change": round(change, 4),
                }
            )
    return AssetCheckResult(
        check_name="session_coverage",
        passed=not missing and not jumps,
        metadata={
            "sessions_without_bars": MetadataValue.json(missing[:_EXAMPLES]),
            "coverage_breaks": MetadataValue.json(jumps[:_EXAMPLES]),
            "tolerance": tolerance,
            "min_tickers": min(by_session.values(), default=0),
            "max_tickers": max(by_session.values(), default=0),
        },
    )


def _overnight_jumps(
    conn: Connection, sessions: Sequence[date], threshold: float
) -> AssetCheckResult:
    rows = (
        conn.execute(
            query("bars.market_bars_overnight_jumps"), {**_bounds(sessions), "threshold": threshold}
        )
        .mappings()
        .all()
    )
    return AssetCheckResult(
        check_name="overnight_jumps",
        passed=not rows,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "flagged": len(rows),
            "threshold": threshold,
            "largest": MetadataValue.json(_jsonable(rows[:_EXAMPLES])),
        },
    )


def index_bars_checks(
    conn: Connection, sessions: Sequence[date], tickers: Sequence[str]
) -> list[AssetCheckResult]:
    missing = conn.execute(
        query("bars.index_bars_missing"), {"sessions": list(sessions), "tickers": list(tickers)}
    ).all()
    return [
        AssetCheckResult(
            check_name="index_coverage",
            passed=not missing,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "missing": len(missing),
                "examples": MetadataValue.json([f"{s} {t}" for s, t in missing[:_EXAMPLES]]),
            },
        )
    ]


def refuse_failed_blocking(
    table: str, origin: str, specs: Sequence[AssetCheckSpec], results: Sequence[AssetCheckResult]
) -> None:
    """Raise (inside the write transaction) when a blocking check failed, saying which and why."""
    blocking = {spec.name for spec in specs if spec.blocking}
    failed = [r for r in results if r.check_name in blocking and not r.passed]
    if not failed:
        return
    details = "; ".join(
        f"{r.check_name} ({', '.join(f'{k}={_shown(v)}' for k, v in r.metadata.items())})"
        for r in failed
    )
    raise RefusedSessionsError(
        f"{table} from {origin}: blocking quality check(s) failed before the commit: {details}. "
        f"Nothing was written: the stored rows of every session in the run are unchanged."
    )


def _shown(value) -> str:
    return str(getattr(value, "value", value))


def _jsonable(rows) -> list[dict]:
    return [
        {
            k: (v if isinstance(v, (int, float, str)) or v is None else str(v))
            for k, v in row.items()
        }
        for row in rows
    ]

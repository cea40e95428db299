"""What the dashboard reads: the project's settings and database (the CLI's, from the same
`BREAKOUT_*` environment), every statement in a read-only transaction, and the Dagster
instance's recent runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import Connection

from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings, load_settings

JOURNAL_LIMIT = 5000
RECENT_DECISIONS = 25
RECENT_RUNS = 30


@dataclass(frozen=True)
class Desk:
    """The settings and the one database door (the CLI's `build_resources` Postgres)."""

    settings: BreakoutSettings
    postgres: PostgresResource

    @classmethod
    def from_environment(cls) -> Desk:
        """Raises SettingsError naming the variable to fix; the definitions (which read the
        settings when imported) load only once the settings are known to be valid."""
        settings = load_settings()
        from breakout_assets.definitions import build_resources

        return cls(settings, build_resources(settings)["postgres"])

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.postgres.transaction() as conn:
            conn.execute(query("dashboard.read_only"))
            yield conn

    def frame(self, name: str, **params) -> pd.DataFrame:
        with self.reading() as conn:
            return pd.read_sql(query(f"dashboard.{name}"), conn, params=params)


@dataclass(frozen=True)
class JournalFilter:
    first: date
    last: date
    books: list[str] = field(default_factory=list)
    sides: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    exit_reasons: list[str] = field(default_factory=list)
    ticker: str = ""


def journal_bounds(desk: Desk) -> tuple[date, date, int] | None:
    row = desk.frame("journal_bounds").iloc[0]
    if not row["trades"]:
        return None
    return row["first"], row["last"], int(row["trades"])


def journal(desk: Desk, chosen: JournalFilter) -> pd.DataFrame:
    return desk.frame(
        "journal",
        first=chosen.first,
        last=chosen.last,
        books=chosen.books,
        sides=chosen.sides,
        statuses=chosen.statuses,
        exit_reasons=chosen.exit_reasons,
        ticker=chosen.ticker.strip(),
        limit=JOURNAL_LIMIT,
    )


def closed_pnl_by_session(desk: Desk) -> pd.DataFrame:
    return desk.frame("closed_pnl_by_session")


def open_positions(desk: Desk) -> pd.DataFrame:
    return desk.frame("open_positions")


def pending_plans(desk: Desk) -> pd.DataFrame:
    return desk.frame("pending_plans")


def recent_decisions(desk: Desk) -> pd.DataFrame:
    return desk.frame("recent_decisions", limit=RECENT_DECISIONS)


def experiment_cards(desk: Desk) -> pd.DataFrame:
    """Every training run with its held-out metrics and reliability table, and whether it is
    the one serving its side now (the model store's pointer, as `breakout models list`)."""
    from breakout_assets.model_admin import list_models

    cards = desk.frame("experiment_cards")
    serving = list_models(desk.settings)
    active = set(serving.loc[serving["active"], "experiment_id"])
    cards.insert(1, "serving", cards["experiment_id"].isin(active))
    return cards


def live_scores(desk: Desk, experiment_id: str) -> pd.DataFrame:
    return desk.frame("live_scores", experiment_id=experiment_id)


def drift_latest(desk: Desk) -> pd.DataFrame:
    return desk.frame("drift_latest")


def drift_history(desk: Desk, limit: int = 60) -> pd.DataFrame:
    return desk.frame("drift_history", limit=limit)


def retrain_requests(desk: Desk, limit: int = 20) -> pd.DataFrame:
    return desk.frame("retrain_requests", limit=limit)


def run_link(settings: BreakoutSettings, run_id: str) -> str:
    return f"{settings.dagster_ui_url.rstrip('/')}/runs/{run_id}"


def dagster_configured() -> bool:
    """`breakout dashboard` sets DAGSTER_HOME (runtime.apply_dagster_environment); a bare
    `streamlit run` may not have it."""
    return bool(os.environ.get("DAGSTER_HOME"))


def recent_runs(instance, settings: BreakoutSettings, limit: int = RECENT_RUNS) -> pd.DataFrame:
    """The instance's latest runs, newest first, each with its link into the Dagster UI."""
    rows = []
    for record in instance.get_run_records(limit=limit):
        run = record.dagster_run
        tags = run.tags
        partition = tags.get("dagster/partition") or (
            f"{tags['dagster/asset_partition_range_start']}..."
            f"{tags['dagster/asset_partition_range_end']}"
            if "dagster/asset_partition_range_start" in tags
            else None
        )
        rows.append(
            {
                "run_id": run.run_id,
                "job": run.job_name,
                "status": run.status.value,
                "partition": partition,
                "started": _when(record.start_time),
                "ended": _when(record.end_time),
                "link": run_link(settings, run.run_id),
            }
        )
    return pd.DataFrame(
        rows, columns=["run_id", "job", "status", "partition", "started", "ended", "link"]
    )


def _when(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None

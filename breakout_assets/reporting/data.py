"""What one session left behind, read from the database as of that session (sql/queries/report)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import Connection

from breakout_assets.resources.sql import query


@dataclass(frozen=True)
class SessionRows:
    """Each section's rows; an empty frame is a section that says so."""

    session: date
    signals: pd.DataFrame
    pending_plans: pd.DataFrame
    orders: pd.DataFrame
    fills: pd.DataFrame
    open_positions: pd.DataFrame
    closed_trades: pd.DataFrame  # closed on or before the session
    scored_outcomes: pd.DataFrame
    experiments: pd.DataFrame  # the serving models' cards

    @property
    def closed_today(self) -> pd.DataFrame:
        return self.closed_trades[self.closed_trades["exit_session"] == self.session]


def _read(conn: Connection, name: str, **params) -> pd.DataFrame:
    return pd.read_sql(query(f"report.{name}"), conn, params=params)


def read_session(conn: Connection, session: date, serving: list[str]) -> SessionRows:
    """The session's rows; `serving` lists the experiment ids the model store serves."""
    return SessionRows(
        session=session,
        signals=_read(conn, "signals", session=session),
        pending_plans=_read(conn, "pending_plans", session=session),
        orders=_read(conn, "orders", session=session),
        fills=_read(conn, "fills", session=session),
        open_positions=_read(conn, "open_positions", session=session),
        closed_trades=_read(conn, "closed_trades", session=session),
        scored_outcomes=_read(conn, "scored_outcomes", session=session),
        experiments=_read(conn, "experiments", experiment_ids=serving),
    )

"""`signal_outcomes`: each signal's bracket replayed on the bars after it (core.outcomes).

A run over sessions first..last labels the signals of those sessions with every bar stored after
them, and carries forward every earlier signal still pending, so pending outcomes are completed
by later partitions (the daily run completes them as the bars arrive). Final rows are never
rewritten (the merge refuses to), so re-running any partition changes nothing already decided.
A final, filled row (win, loss, expired) carries its gross `r_multiple` and, after commissions
and slippage (core.costs, `BREAKOUT_COSTS__*`), `cost_r` and `net_r_multiple`; rows decided
before costs existed get those two columns once, and nothing else of them changes.
"""

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
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
)
from breakout_assets.core.costs import CostConfig, round_trip_costs_r
from breakout_assets.core.outcomes import OutcomeConfig, replay
from breakout_assets.partitions import keys_to_sessions, ordinal_sessions, session_ordinals
from breakout_assets.resources.bar_reader import read_signal_paths
from breakout_assets.resources.pg_copy import copy_payload, encode_csv
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query, raw_query
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

GROUP = "data"
_COLUMNS = [
    "signal_id",
    "session",
    "status",
    "entry_session",
    "entry_price",
    "exit_session",
    "exit_price",
    "r_multiple",
    "mfe_r",
    "mae_r",
    "bars_held",
    "hit_target_50",
    "hit_target_75",
    "hit_target_100",
    "as_of",
    "cost_r",
    "net_r_multiple",
]
_FINAL_TRADES = ["win", "loss", "expired"]


def outcome_costs(
    final, entry_price, exit_price, r_multiple, risk, atr, costs: CostConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(cost_r, net_r_multiple) of outcome rows: set where `final` (a filled trade that is
    decided: the reference trade's costs, core.costs), NaN (NULL) elsewhere."""
    final = np.asarray(final, dtype=bool)
    cost = np.full(len(final), np.nan)
    if final.any():
        pick = [
            np.asarray(v, dtype=np.float64)[final] for v in (entry_price, exit_price, risk, atr)
        ]
        cost[final] = round_trip_costs_r(*pick, config=costs)
    return cost, np.asarray(r_multiple, dtype=np.float64) - cost


def fill_missing_costs(conn: Connection, costs: CostConfig) -> int:
    """Record the costs of final rows decided before costs existed (their gross R, exit and
    status are untouched); returns how many rows got them."""
    rows = pd.read_sql(query("outcomes.final_without_costs"), conn)
    if rows.empty:
        return 0
    cost, _ = outcome_costs(
        np.ones(len(rows), bool),
        rows["entry_price"],
        rows["exit_price"],
        rows["r_multiple"],
        rows["risk"],
        rows["atr"],
        costs,
    )
    conn.execute(
        query("outcomes.set_missing_costs"),
        {"signal_ids": rows["signal_id"].tolist(), "costs": cost.tolist()},
    )
    return len(rows)


def replay_outcomes(
    conn: Connection,
    first: date,
    last: date,
    config: OutcomeConfig,
    costs: CostConfig | None = None,
) -> pd.DataFrame:
    """Outcome rows of every signal a run over first..last must (re)label, as of the newest
    stored bars."""
    latest = conn.execute(query("outcomes.latest_bar_session")).scalar_one()
    signals = pd.read_sql(
        query("outcomes.signals_to_replay"),
        conn,
        params={"first": first, "last": last, "as_of": latest},
    )
    if signals.empty:
        return pd.DataFrame(columns=_COLUMNS)
    as_of = int(session_ordinals(np.array([latest], dtype="datetime64[D]"))[0])
    signal_ord = session_ordinals(signals["session"].to_numpy(dtype="datetime64[D]"))
    rows = _replay_widening(conn, signals, signal_ord, as_of, config)
    rows.insert(0, "signal_id", signals["signal_id"].to_numpy())
    rows.insert(1, "session", signals["session"].to_numpy())
    rows["as_of"] = latest
    rows["cost_r"], rows["net_r_multiple"] = outcome_costs(
        rows["status"].isin(_FINAL_TRADES),
        rows["entry_price"],
        rows["exit_price"],
        rows["r_multiple"],
        signals["risk"],
        signals["atr"],
        costs or CostConfig(),
    )
    return rows[_COLUMNS]


FIRST_READ_SESSIONS = 60  # most labels are decided within this many sessions
READ_GROWTH = 4  # each later round reads this many times further for those still open
MAX_READ_BARS = 1_000_000  # bars one read may return (one query's arrays stay far below 1 GB)


def _replay_widening(
    conn: Connection,
    signals: pd.DataFrame,
    signal_ord: np.ndarray,
    as_of: int,
    config: OutcomeConfig,
) -> pd.DataFrame:
    """Outcome rows (signal order) read in widening rounds: labels have no time cut, so a
    signal may need every bar up to `as_of`, but most are decided within weeks. Each round
    reads the bars of the still-open signals a few times further, in chunks of at most
    MAX_READ_BARS; a signal is replayed as of the last session read for it, which gives the
    same row as one replay over all its bars (core.outcomes.replay)."""
    limit = np.minimum(
        signal_ord + config.entry_valid_sessions + config.holding(labels=True) - 1, as_of
    )
    todo = np.arange(len(signals))
    reach, decided = FIRST_READ_SESSIONS, []
    while len(todo):
        until = np.minimum(signal_ord[todo] + reach, limit[todo])
        step = max(1, MAX_READ_BARS // (reach + 1))
        rows = pd.concat(
            [
                _replay_read(
                    conn,
                    signals.iloc[todo[k : k + step]],
                    signal_ord[todo[k : k + step]],
                    until[k : k + step],
                    config,
                ).set_axis(todo[k : k + step])
                for k in range(0, len(todo), step)
            ]
        )
        again = (rows["status"] == "pending").to_numpy() & (until < limit[todo])
        decided.append(rows[~again])
        todo, reach = todo[again], reach * READ_GROWTH
    return pd.concat(decided).sort_index().reset_index(drop=True)


def _replay_read(
    conn: Connection,
    signals: pd.DataFrame,
    signal_ord: np.ndarray,
    until: np.ndarray,
    config: OutcomeConfig,
) -> pd.DataFrame:
    """Rows of `signals` replayed on their bars up to session ordinal `until` (each its own)."""
    paths = read_signal_paths(conn, signals, until)
    arrays = {
        k: signals[k].to_numpy()
        for k in ("entry", "stop", "booked_target", "target_50", "target_75", "target_100", "risk")
    }
    arrays["side"] = np.where(signals["side"] == "long", 1, -1)
    arrays["signal_ord"] = signal_ord
    outcomes = replay(arrays, paths, until, config, labels=True)
    return outcomes.to_frame(ordinal_sessions(paths.session_ord))


def merge_outcomes(conn: Connection, rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    conn.execute(query("outcomes.create_incoming"))
    copy_payload(conn, raw_query("outcomes.copy_incoming"), encode_csv(rows))
    conn.execute(query("outcomes.merge_incoming"))


def summary_metadata(conn: Connection, sessions: Sequence[date]) -> dict:
    summary = pd.read_sql(
        query("outcomes.outcome_summary"), conn, params={"first": sessions[0], "last": sessions[-1]}
    )
    metadata: dict = {}
    for side in ("long", "short"):
        rows = summary[summary["side"] == side].set_index("status")
        counts = rows["signals"].to_dict()
        decided = rows.loc[rows.index.isin(["win", "loss", "expired"])]
        trades = int(decided["signals"].sum())
        metadata[f"{side}_outcomes"] = MetadataValue.json({k: int(v) for k, v in counts.items()})
        metadata[f"{side}_win_rate"] = round(counts.get("win", 0) / trades, 4) if trades else 0.0
        metadata[f"{side}_sum_r"] = round(float(decided["sum_r"].sum()), 3)
        metadata[f"{side}_sum_net_r"] = round(float(decided["sum_net_r"].sum()), 3)
    return metadata


def build_outcome_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    config = settings.outcomes

    @session_asset(
        partitions_def,
        GROUP,
        kinds={"postgres"},
        deps=[
            AssetKey("breakout_signals"),
            AssetKey("market_bars"),
            after_previous_session("signal_outcomes"),
        ],
        **versioned(settings, ("outcomes", "costs"), ("outcomes",)),
    )
    def signal_outcomes(
        context: AssetExecutionContext, postgres: PostgresResource
    ) -> MaterializeResult:
        """Win, loss, expiry or no fill for each signal, in R, replayed on the bars after it
        (labels for the models and the backtests); pending ones complete in later partitions."""
        sessions = keys_to_sessions(context.partition_keys)
        with postgres.transaction() as conn:
            rows = replay_outcomes(conn, sessions[0], sessions[-1], config, settings.costs)
            merge_outcomes(conn, rows)
            costs_backfilled = fill_missing_costs(conn, settings.costs)
            metadata = summary_metadata(conn, sessions)
        statuses = rows["status"].value_counts().to_dict()
        as_of = str(rows["as_of"].iloc[0]) if len(rows) else "nothing to replay"
        context.log.info(f"signal_outcomes: {len(rows)} replayed as of {as_of}: {statuses}")
        return range_result(
            context,
            per_session=rows_by_session(postgres, "signal_outcomes", context),
            totals={
                "replayed": len(rows),
                "replayed_pending": int(statuses.get("pending", 0)),
                "as_of": as_of,
                "entry_valid_sessions": config.entry_valid_sessions,
                "label_horizon_sessions": config.label_horizon_sessions or "none (target or stop)",
                "costs": MetadataValue.json(settings.costs.model_dump()),
                "costs_recorded_for_older_final_rows": costs_backfilled,
                **metadata,
            },
        )

    return [signal_outcomes]

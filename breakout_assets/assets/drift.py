"""The drift watch: `model_drift` per session and side, and the sensor that asks for a retrain.

Each side with a serving model is judged on the signals of the last `drift.window_sessions`
sessions signalled after the newest session the model saw (its training and held-out rows are
not live): the win rate of those it scored whose outcomes are final, by confidence bucket,
against its held-out reliability curve (live ECE and the largest bucket gap), and each model
feature's PSI against the rows it was trained on (rebuilt from what its experiment recorded:
the training range, the held-out signal ids, the split and its embargo). Too few outcomes or
signals are not judged, and a gap or an ECE within sampling noise does not count
(`drift.calibration_z`): the row's reasons say so, after the thresholds crossed. The
`model_drift_retrain` sensor asks for one `train_models` run when the newest drift rows are
drifted, at most once per `drift.retrain_interval_hours`; the promotion rules still decide
whether the new model serves.
"""

import json
import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    TimeWindowPartitionsDefinition,
    sensor,
)
from sqlalchemy import Connection

from breakout_assets.assets.common import OBSERVE_GROUP, range_result, session_asset
from breakout_assets.core.drift import (
    HeldOutBucket,
    TrainingProfile,
    calibration_gap,
    expected_calibration_error,
    judge_drift,
    live_calibration,
    training_rows_mask,
)
from breakout_assets.ml.config import DriftConfig
from breakout_assets.ml.registry import ModelCard
from breakout_assets.partitions import keys_to_sessions, lookback_start, nyse_sessions
from breakout_assets.resources.model_store import SIDES, ModelStore
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned

FINAL_STATUSES = ("win", "loss", "expired")
TRAIN_JOB = "train_models"
# Run tags the retrain carries: why it was asked for.
TAG_PREFIX = "breakout/drift"  # breakout/drift_session, breakout/drift_reason_1, ...


@dataclass(frozen=True)
class ServingModel:
    """What the drift watch compares live signals with: the card and the experiment's record."""

    card: ModelCard
    held_out: list[HeldOutBucket]
    training_rows: int  # rebuilt from the experiment's record
    recorded_train_rows: int | None  # what the experiment recorded
    profiles: dict[str, TrainingProfile]  # per model feature, from the training rows

    @property
    def last_seen(self) -> date:
        """The newest signal session among its training and held-out rows."""
        return max(date.fromisoformat(self.card.train_range[1]), self.test_last)

    @property
    def test_last(self) -> date:
        return date.fromisoformat(self.card.test_range[1])

    @property
    def label(self) -> str:
        return str(self.card.extra.get("label", "booked_target"))


def _serving_model(conn: Connection, card: ModelCard) -> ServingModel | None:
    record = conn.execute(
        query("drift.experiment"), {"experiment_id": card.experiment_id}
    ).one_or_none()
    if record is None:
        return None
    split = record.split or {}
    held_out = [
        HeldOutBucket(int(r["bin"]), int(r["count"]), r["observed_rate"])
        for r in (record.held_out_calibration or [])
    ]
    first, last = (date.fromisoformat(d) for d in card.train_range)
    candidates = pd.read_sql(
        query("drift.training_candidates"),
        conn,
        params={"side": card.side, "first": first, "last": last},
    )
    mask = training_rows_mask(
        candidates["session"],
        candidates["exit_session"],
        candidates["signal_id"],
        card.extra.get("test_signal_ids", []),
        split.get("split", "chronological"),
        np.datetime64(card.test_range[0], "D"),
        int(split.get("embargo_sessions", 0)),
    )
    training = candidates[mask]
    profiles = (
        {f: TrainingProfile.of(training[f].to_numpy(float)) for f in card.features}
        if len(training)
        else {}
    )
    return ServingModel(card, held_out, len(training), split.get("train_rows"), profiles)


def _won(frame: pd.DataFrame, label: str) -> np.ndarray:
    """The model's own label: the booked target first (win), or any positive R."""
    if label == "profitable":
        return (frame["r_multiple"] > 0).to_numpy(bool)
    return (frame["status"] == "win").to_numpy(bool)


def drift_row(
    session: date, model: ServingModel, recent: pd.DataFrame, config: DriftConfig
) -> dict:
    """One `model_drift` row: `recent` holds the side's signals of the session's window
    signalled after the model's data."""
    final = recent[recent["confidence"].notna() & recent["status"].isin(FINAL_STATUSES)]
    buckets = live_calibration(
        final["confidence"].to_numpy(float), _won(final, model.label), model.held_out
    )
    ece = expected_calibration_error(buckets)
    gap = calibration_gap(buckets, config.min_bucket_outcomes)
    psi = (
        {f: profile.psi(recent[f].to_numpy(float)) for f, profile in model.profiles.items()}
        if len(recent)
        else {}
    )
    verdict = judge_drift(len(final), ece, buckets, len(recent), psi, config)
    return {
        "session": session,
        "side": model.card.side,
        "experiment_id": model.card.experiment_id,
        "live_outcomes": len(final),
        "live_ece": ece,
        "calibration_gap": gap,
        "calibration": json.dumps([b.to_json() for b in buckets]),
        "psi": json.dumps({f: round(v, 6) for f, v in psi.items()}),
        "max_psi": max(psi.values()) if psi else None,
        "drifted": verdict.drifted,
        "reasons": list(verdict.reasons),
        "recent_signals": len(recent),
    }


def _windows(sessions: list[date], window: int) -> dict[date, date]:
    """First session of each session's window of `window` sessions (itself included)."""
    calendar = nyse_sessions(lookback_start(sessions[0], window - 1), sessions[-1])
    position = {d: i for i, d in enumerate(calendar)}
    return {d: calendar[max(0, position[d] - window + 1)] for d in sessions}


def _side_metadata(side: str, row: dict, model: ServingModel) -> dict:
    calibration = pd.DataFrame(json.loads(row["calibration"]))
    psi = pd.Series(json.loads(row["psi"]), dtype=float).sort_values(ascending=False)
    return {
        f"{side}_experiment": model.card.experiment_id,
        f"{side}_drifted": row["drifted"],
        f"{side}_reasons": MetadataValue.json(row["reasons"]),
        f"{side}_live_outcomes": row["live_outcomes"],
        f"{side}_recent_signals": row["recent_signals"],
        f"{side}_live_ece": _finite(row["live_ece"]),
        f"{side}_calibration_gap": _finite(row["calibration_gap"]),
        f"{side}_max_psi": _finite(row["max_psi"]),
        f"{side}_calibration": MetadataValue.md(
            calibration[["bucket", "n", "mean_confidence", "live", "held_out", "held_out_n"]]
            .round(4)
            .to_markdown(index=False)
        ),
        f"{side}_psi_top": MetadataValue.md(
            psi.head(10)
            .round(4)
            .rename("psi")
            .rename_axis("feature")
            .reset_index()
            .to_markdown(index=False)
        ),
        f"{side}_training_rows": (
            f"{model.training_rows} rebuilt from the experiment's split "
            f"(it recorded {model.recorded_train_rows})"
        ),
        f"{side}_live_after": model.last_seen.isoformat(),
    }


def _finite(value) -> float | None:
    return round(float(value), 4) if value is not None and math.isfinite(value) else None


def build_drift_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    config = settings.drift

    @session_asset(
        partitions_def,
        OBSERVE_GROUP,
        kinds={"postgres"},
        deps=[AssetKey("signal_scores"), AssetKey("signal_outcomes")],
        **versioned(settings, ("drift",), ("drift",)),
    )
    def model_drift(
        context: AssetExecutionContext, postgres: PostgresResource, model_store: ModelStore
    ) -> MaterializeResult:
        """Per side with a serving model: live calibration (final outcomes by confidence
        bucket vs the held-out curve, ECE) and PSI per feature vs the training rows, over the
        last `drift.window_sessions` sessions after the model's data; drifted with its reasons
        when a `BREAKOUT_DRIFT__*` threshold is crossed."""
        sessions = keys_to_sessions(context.partition_keys)
        windows = _windows(sessions, config.window_sessions)
        serving = model_store.active()
        rows: list[dict] = []
        totals: dict = {}
        with postgres.transaction() as conn:
            for side in SIDES:
                if not serving.get(side):
                    totals[f"{side}_model"] = "no serving model: not judged"
                    continue
                _, card = model_store.load_active(side)
                model = _serving_model(conn, card)
                if model is None:
                    context.log.warning(
                        f"model_drift: the serving {side} model {card.experiment_id} has no "
                        "model_experiments record (held-out curve, split): not judged"
                    )
                    totals[f"{side}_model"] = f"{card.experiment_id}: no experiment record"
                    continue
                recent = pd.read_sql(
                    query("drift.recent_signals"),
                    conn,
                    params={
                        "side": side,
                        "experiment_id": card.experiment_id,
                        "first": windows[sessions[0]],
                        "last": sessions[-1],
                        "after": model.last_seen,
                    },
                )
                side_rows = [
                    drift_row(
                        session,
                        model,
                        recent[
                            (recent["session"] >= windows[session]) & (recent["session"] <= session)
                        ],
                        config,
                    )
                    for session in sessions
                ]
                rows += side_rows
                totals.update(_side_metadata(side, side_rows[-1], model))
                totals[f"{side}_sessions_drifted"] = sum(r["drifted"] for r in side_rows)
            conn.execute(query("drift.delete_drift"), {"sessions": sessions})
            if rows:
                conn.execute(
                    query("drift.insert_drift"),
                    [{k: v for k, v in r.items() if k != "recent_signals"} for r in rows],
                )
        for row in rows:
            if row["drifted"] and row["session"] == sessions[-1]:
                context.log.warning(
                    f"model_drift {row['session']} {row['side']}: DRIFTED: "
                    + "; ".join(row["reasons"])
                )
        per_session = {
            key: {
                "drifted_sides": MetadataValue.json(
                    sorted(r["side"] for r in rows if r["drifted"] and r["session"] == day)
                )
            }
            for key, day in zip(context.partition_keys, sessions, strict=True)
        }
        return range_result(context, totals, per_session=per_session)

    return [model_drift]


def build_drift_sensors(settings: BreakoutSettings) -> list:
    config = settings.drift

    @sensor(
        name="model_drift_retrain",
        job_name=TRAIN_JOB,
        minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.RUNNING,
        description="Launches train_models when the newest model_drift rows are drifted, at most "
        f"once per {config.retrain_interval_hours:g} h (BREAKOUT_DRIFT__RETRAIN_INTERVAL_HOURS), "
        "recorded in retrain_requests; the promotion rules decide whether the new model serves.",
    )
    def model_drift_retrain(context: SensorEvaluationContext, postgres: PostgresResource):
        with postgres.transaction() as conn:
            latest = conn.execute(query("drift.latest_drift")).all()
            drifted = [r for r in latest if r.drifted]
            if not drifted:
                return SkipReason(
                    f"no drift on {latest[0].session}" if latest else "no model_drift rows yet"
                )
            conn.execute(query("drift.lock_retrain_requests"))
            previous = conn.execute(
                query("drift.last_retrain_request"),
                {"interval_seconds": config.retrain_interval_hours * 3600},
            ).one_or_none()
            if previous is not None:
                return SkipReason(
                    f"drift on {drifted[0].session}, but a retrain was requested at "
                    f"{previous.requested_at:%Y-%m-%d %H:%M} UTC ({previous.run_key}): at most "
                    f"one per {config.retrain_interval_hours:g} h"
                )
            session = drifted[0].session
            sides = [r.side for r in drifted]
            reasons = [f"{r.side}: {reason}" for r in drifted for reason in r.reasons]
            run_key = f"drift-retrain:{session.isoformat()}:{'+'.join(sides)}"
            recorded = conn.execute(
                query("drift.insert_retrain_request"),
                {"session": session, "sides": sides, "reasons": reasons, "run_key": run_key},
            ).one_or_none()
        if recorded is None:
            return SkipReason(f"the drift of {session} already asked for a retrain ({run_key})")
        context.log.info(f"model_drift_retrain: {run_key}: " + "; ".join(reasons))
        return RunRequest(
            run_key=run_key, job_name=TRAIN_JOB, tags=retrain_tags(session, sides, reasons)
        )

    return [model_drift_retrain]


def retrain_tags(session: date, sides: list[str], reasons: list[str]) -> dict[str, str]:
    """Why the run was asked for, readable on the run's page."""
    return {
        f"{TAG_PREFIX}_session": session.isoformat(),
        f"{TAG_PREFIX}_sides": ",".join(sides),
        **{f"{TAG_PREFIX}_reason_{i}": reason for i, reason in enumerate(reasons, 1)},
    }

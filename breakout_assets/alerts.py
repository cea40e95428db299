"""Alerts by email: a failed run of this code location, and a trade_plan not materialised for a
session by its deadline (BREAKOUT_TRADE_PLAN_DEADLINE_MINUTES after that session's close).

Each alert has a key (`run_failure:<run id>`, `freshness:trade_plan:<session>`) and is raised
once: its row in `alerts` is written with the email's outcome under a lock on the key, so a
sensor that sees the same failure again sends nothing. A mail failure is recorded on the row,
never raised: the alert is still visible in the table and the sensor's log.

The freshness sensor is a plain sensor rather than Dagster's freshness checks: the deadline
follows the exchange calendar (an early close moves it) and an unmet one must name the
session's run and email, which an asset check's failed evaluation would not do by itself. It
looks at each session once, at its first evaluation past the deadline; the daemon evaluates it
every minute, so "materialised by the deadline" is checked within a minute of it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pandas as pd
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from breakout_assets.partitions import (
    KEY_FORMAT,
    TIMEZONE,
    nyse_calendar,
    nyse_sessions,
    partitions_end,
)
from breakout_assets.resources.mailer import Mailer, MailResult, compose
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings

TRADE_PLAN = AssetKey("trade_plan")
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
# A deadline further back is history, not news: long enough to catch up after the daemon was
# down over a long weekend.
HORIZON = timedelta(days=4)
ERROR_CHARS = 4000  # of a step's error in the email (the run's page holds the whole trace)


@dataclass(frozen=True)
class Alert:
    key: str
    kind: Literal["run_failure", "freshness"]
    subject: str
    message: str
    run_id: str | None = None
    job_name: str | None = None
    asset_key: str | None = None
    session: date | None = None


def raise_alert(postgres: PostgresResource, mailer: Mailer, alert: Alert) -> MailResult | None:
    """Email and record `alert` once; None when its key was raised before (nothing sent)."""
    message = mailer.scrub(alert.message)
    with postgres.transaction() as conn:
        conn.execute(query("alerts.lock"), {"alert_key": alert.key})
        if conn.execute(query("alerts.raised"), {"alert_key": alert.key}).first() is not None:
            return None
        result = mailer.send(compose(alert.subject, message))
        conn.execute(
            query("alerts.record"),
            {
                "alert_key": alert.key,
                "kind": alert.kind,
                "run_id": alert.run_id,
                "job_name": alert.job_name,
                "asset_key": alert.asset_key,
                "session": alert.session,
                "message": message,
                "email_status": result.status,
                "email_error": result.error,
            },
        )
    return result


def _logged(log, alert: Alert, result: MailResult | None) -> str:
    if result is None:
        return f"{alert.key}: already raised"
    if result.status == "failed":
        log.warning(f"ALERT {alert.key}: the email failed: {result.error} (recorded in alerts)")
    else:
        log.warning(f"ALERT {alert.key}: {alert.subject} (email {result.status})")
    return f"{alert.key}: raised, email {result.status}"


def run_link(ui_url: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/runs/{run_id}"


# --- failed runs ---------------------------------------------------------------------------


def _error_text(error) -> str:
    """A step's error and its causes, most specific last (a user error is wrapped by Dagster)."""
    parts = []
    while error is not None:
        parts.append(f"{error.cls_name or 'Error'}: {error.message.strip()}")
        error = error.cause
    return "\n  caused by ".join(parts)


def step_errors(instance: DagsterInstance, run_id: str) -> dict[str, str]:
    """The run's failed steps and their errors."""
    return {
        record.step_key: _error_text(record.dagster_event.event_specific_data.error)
        for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE)
        if record.step_key
        and record.dagster_event
        and record.dagster_event.event_specific_data
        and record.dagster_event.event_specific_data.error
    }


def run_failure_alert(context: RunFailureSensorContext, ui_url: str) -> Alert:
    run = context.dagster_run
    failures = step_errors(context.instance, run.run_id)
    selected = sorted(key.to_user_string() for key in run.asset_selection or ())
    steps = sorted(failures) or selected
    lines = [
        f"Run {run.run_id} of job {run.job_name} failed.",
        f"Failed step(s) / asset(s): {', '.join(steps) or 'none reported'}",
    ]
    tags = run.tags
    if tags.get("dagster/partition"):
        lines.append(f"Session: {tags['dagster/partition']}")
    elif tags.get(RANGE_START):
        lines.append(f"Sessions: {tags[RANGE_START]} to {tags.get(RANGE_END)}")
    lines += ["", context.failure_event.message or "", ""]
    for step, error in failures.items():
        lines += [f"{step}:", f"  {error[:ERROR_CHARS]}", ""]
    lines.append(f"Run: {run_link(ui_url, run.run_id)}")
    return Alert(
        key=f"run_failure:{run.run_id}",
        kind="run_failure",
        subject=f"Breakout ALERT: run of {run.job_name} failed ({', '.join(steps) or 'no step'})",
        message="\n".join(lines) + "\n",
        run_id=run.run_id,
        job_name=run.job_name,
        asset_key=", ".join(steps) or None,
    )


def build_run_failure_sensor(settings: BreakoutSettings):
    @run_failure_sensor(
        name="run_failure_alerts",
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Emails (and records in `alerts`) every failed run of this code location: "
        "the run, its job, the failed steps and their errors.",
    )
    def run_failure_alerts(
        context: RunFailureSensorContext, postgres: PostgresResource, mailer: Mailer
    ):
        alert = run_failure_alert(context, settings.dagster_ui_url)
        context.log.info(_logged(context.log, alert, raise_alert(postgres, mailer, alert)))

    return run_failure_alerts


# --- trade_plan freshness ------------------------------------------------------------------


def deadline(session: date, minutes: int) -> datetime:
    """The session's close on the exchange calendar (13:00 New York on an early close), plus
    `minutes`, in UTC."""
    close = nyse_calendar().session_close(pd.Timestamp(session))
    return close.to_pydatetime().astimezone(UTC) + timedelta(minutes=minutes)


def due_sessions(
    now: datetime, minutes: int, after: date | None, first: date, last: date | None
) -> list[date]:
    """Sessions whose deadline has passed by `now`, after `after` (the last one checked), within
    the partitions [first, last] and the HORIZON. With nothing checked yet, only the latest: a
    new sensor does not alert on history, nor does a code location whose partitions ended
    long ago (the bundled sample's)."""
    today = now.astimezone(UTC).date()
    end = today if last is None else min(last, today)
    start = max(first, (now - HORIZON).date())
    if after is not None:
        start = max(start, after + timedelta(days=1))
    due = [s for s in nyse_sessions(start, end) if now - HORIZON <= deadline(s, minutes) <= now]
    return due if after else due[-1:]


def materialised(instance: DagsterInstance, asset: AssetKey, session: date) -> bool:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset, asset_partitions=[session.strftime(KEY_FORMAT)]),
        limit=1,
    )
    return bool(records.records)


def _last_run(instance: DagsterInstance, session: date) -> DagsterRun | None:
    """The latest run that planned trade_plan for the session (a range run's included), else
    the latest run tagged with the session (an instance that plans ranges as one event)."""
    key = session.strftime(KEY_FORMAT)
    planned = instance.get_latest_planned_materialization_info(TRADE_PLAN, key)
    if planned is not None:
        return instance.get_run_by_id(planned.run_id)
    runs = instance.get_runs(RunsFilter(tags={"dagster/partition": key}), limit=1)
    return runs[0] if runs else None


def freshness_alert(
    instance: DagsterInstance, session: date, due: datetime, ui_url: str, minutes: int
) -> Alert:
    run = _last_run(instance, session)
    local = due.astimezone(ZoneInfo(TIMEZONE))
    lines = [
        f"trade_plan was not materialised for session {session} by its deadline "
        f"{local:%Y-%m-%d %H:%M %Z} ({due:%H:%M} UTC; {minutes} min after the close).",
        "The session's plans are missing: nothing will be approved or sent for it.",
        "",
    ]
    if run is None:
        lines.append("No run of trade_plan for this session was found: check the schedule.")
    else:
        lines.append(
            f"Latest run for it: {run.run_id} (job {run.job_name}, status {run.status.value})"
        )
        for step, error in step_errors(instance, run.run_id).items():
            lines += [f"{step}:", f"  {error[:ERROR_CHARS]}"]
        lines.append(f"Run: {run_link(ui_url, run.run_id)}")
    return Alert(
        key=f"freshness:{TRADE_PLAN.to_user_string()}:{session}",
        kind="freshness",
        subject=f"Breakout ALERT: trade_plan missing for {session}",
        message="\n".join(lines) + "\n",
        run_id=run.run_id if run else None,
        job_name=run.job_name if run else None,
        asset_key=TRADE_PLAN.to_user_string(),
        session=session,
    )


def build_trade_plan_freshness_sensor(
    settings: BreakoutSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
):
    minutes = settings.trade_plan_deadline_minutes

    @sensor(
        name="trade_plan_freshness",
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Emails (and records in `alerts`) a session whose trade_plan is not "
        f"materialised {minutes} min after its close.",
    )
    def trade_plan_freshness(
        context: SensorEvaluationContext, postgres: PostgresResource, mailer: Mailer
    ):
        now = clock()
        after = date.fromisoformat(context.cursor) if context.cursor else None
        due = due_sessions(now, minutes, after, settings.start_date, partitions_end(settings))
        if not due:
            return SkipReason("no session past its deadline since the last check")
        verdicts = []
        for session in due:
            if materialised(context.instance, TRADE_PLAN, session):
                verdicts.append(f"{session}: on time")
                continue
            alert = freshness_alert(
                context.instance,
                session,
                deadline(session, minutes),
                settings.dagster_ui_url,
                minutes,
            )
            verdicts.append(_logged(context.log, alert, raise_alert(postgres, mailer, alert)))
        context.update_cursor(due[-1].isoformat())
        return SkipReason("; ".join(verdicts))

    return trade_plan_freshness


def build_alert_sensors(settings: BreakoutSettings) -> list:
    return [build_run_failure_sensor(settings), build_trade_plan_freshness_sensor(settings)]

"""Sensors: the kill switch, and the clean-up of runs that died (with the daemon)."""

import json

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from breakout_assets.resources.kill_switch import KillSwitch
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query

BROKER_TAG = "breakout/touches_broker"
_ACTIVE = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def build_dead_runs_sensor():
    """With the daemon: a killed run stays STARTED and holds its slot, and a queued broker run
    would wait behind it for ever (the tag limit), before any step of it could clean up."""
    from breakout_assets.run_guard import recover_dead_runs

    @sensor(
        name="dead_runs",
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description="Marks failed the started runs of this host whose processes are all gone "
        "and frees their concurrency slots (as `breakout runs recover`).",
    )
    def dead_runs_sensor(context: SensorEvaluationContext):
        changed = [v for v in recover_dead_runs(context.instance) if v.changed]
        for verdict in changed:
            context.log.warning(f"RECOVERED {verdict}")
        return SkipReason(f"{len(changed)} dead run(s) recovered" if changed else "no dead run")

    return dead_runs_sensor


def build_kill_switch_sensor(kill_switch: KillSwitch):
    @sensor(
        name="kill_switch",
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"While {kill_switch.path} exists: cancels queued and running runs that "
        "touch the broker and records the halt.",
    )
    def kill_switch_sensor(context: SensorEvaluationContext, postgres: PostgresResource):
        if not kill_switch.engaged():
            context.update_cursor(None)
            return SkipReason("kill switch off")
        instance = context.instance
        runs = instance.get_runs(RunsFilter(tags={BROKER_TAG: "true"}, statuses=_ACTIVE))
        for run in runs:
            if not instance.run_coordinator.cancel_run(run.run_id):
                instance.report_run_canceled(run, message="kill switch engaged")
        details = kill_switch.details()
        first_sight = context.cursor is None
        if runs or first_sight:
            with postgres.transaction() as conn:
                conn.execute(
                    query("trading.record_halt"),
                    {
                        "source": "sensor",
                        "detail": json.dumps(
                            {
                                "kill_switch": details,
                                "path": str(kill_switch.path),
                                "cancelled_runs": [r.run_id for r in runs],
                            }
                        ),
                    },
                )
        context.update_cursor("engaged")
        return SkipReason(
            f"KILL SWITCH ON: {len(runs)} broker run(s) cancelled; {details.get('reason', '')}"
        )

    return kill_switch_sensor

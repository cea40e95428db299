"""Schedules: the after-close run and the pre-open orders, only on NYSE sessions."""

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from breakout_assets.partitions import KEY_FORMAT, TIMEZONE, is_session, previous_session


def build_daily_schedule(job):
    @schedule(
        name="daily_pipeline_after_close",
        cron_schedule="30 17 * * 1-5",
        execution_timezone=TIMEZONE,
        job=job,
        default_status=DefaultScheduleStatus.STOPPED,
        description="17:30 New York, Monday-Friday; skips holidays. Off until you turn it on.",
    )
    def daily_pipeline_after_close(context: ScheduleEvaluationContext):
        session = context.scheduled_execution_time.date()
        if not is_session(session):
            return SkipReason(f"{session} is not an NYSE session")
        key = session.strftime(KEY_FORMAT)
        return RunRequest(run_key=key, partition_key=key)

    return daily_pipeline_after_close


def build_pre_open_schedule(job):
    @schedule(
        name="broker_orders_pre_open",
        cron_schedule="0 9 * * 1-5",
        execution_timezone=TIMEZONE,
        job=job,
        default_status=DefaultScheduleStatus.STOPPED,
        description="09:00 New York on sessions: sends the approved plans of the previous "
        "session's signals. Off until you turn it on.",
    )
    def broker_orders_pre_open(context: ScheduleEvaluationContext):
        today = context.scheduled_execution_time.date()
        if not is_session(today):
            return SkipReason(f"{today} is not an NYSE session")
        key = previous_session(today).strftime(KEY_FORMAT)
        return RunRequest(run_key=f"{key}-pre-open", partition_key=key)

    return broker_orders_pre_open

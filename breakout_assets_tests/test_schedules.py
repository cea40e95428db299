"""The after-close schedule: 17:30 New York on weekdays, skipping exchange holidays."""

from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import RunRequest, SkipReason, build_schedule_context

from breakout_assets.definitions import build_definitions
from breakout_assets.settings import load_settings

NEW_YORK = ZoneInfo("America/New_York")


def _evaluate(day: str):
    defs = build_definitions(load_settings())
    schedule = defs.resolve_schedule_def("daily_pipeline_after_close")
    when = datetime.fromisoformat(f"{day} 17:30").replace(tzinfo=NEW_YORK)
    return schedule, schedule(build_schedule_context(scheduled_execution_time=when))


def test_runs_the_session_partition_after_the_close():
    schedule, result = _evaluate("2024-12-24")  # an early close is still a session
    assert schedule.cron_schedule == "30 17 * * 1-5"
    assert schedule.execution_timezone == "America/New_York"
    assert isinstance(result, RunRequest)
    assert result.partition_key == "2024-12-24" and result.run_key == "2024-12-24"


def test_skips_a_weekday_holiday():
    _, result = _evaluate("2024-12-25")
    assert isinstance(result, SkipReason) and "2024-12-25" in result.skip_message


def _pre_open(day: str):
    defs = build_definitions(load_settings())
    schedule = defs.resolve_schedule_def("broker_orders_pre_open")
    when = datetime.fromisoformat(f"{day} 09:00").replace(tzinfo=NEW_YORK)
    return schedule, schedule(build_schedule_context(scheduled_execution_time=when))


def test_pre_open_sends_the_previous_sessions_plans():
    schedule, result = _pre_open("2024-12-26")  # the session before is the 24th (25th closed)
    assert schedule.cron_schedule == "0 9 * * 1-5" and schedule.job_name == "submit_orders"
    assert isinstance(result, RunRequest) and result.partition_key == "2024-12-24"
    _, monday = _pre_open("2024-07-08")
    assert monday.partition_key == "2024-07-05"
    _, holiday = _pre_open("2024-07-04")
    assert isinstance(holiday, SkipReason)


def test_broker_job_is_tagged_and_the_kill_switch_sensor_runs_by_default():
    from dagster import DefaultSensorStatus

    defs = build_definitions(load_settings())
    assert defs.resolve_job_def("submit_orders").tags["breakout/touches_broker"] == "true"
    sensor = defs.resolve_sensor_def("kill_switch")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30

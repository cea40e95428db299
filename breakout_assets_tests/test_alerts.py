"""The alert sensors against the test's Postgres-backed Dagster instance and a real SMTP server on
127.0.0.1: a failed run gives one email naming the run, the asset and the error, and seeing it
again gives none; a trade_plan missed by its deadline (an early close's) gives one email, a met
deadline none; a refused mail server is recorded on the alert, the sensor does not fail.

The runs are real Dagster runs on the instance. The freshness sensor reads the instance's
materialisations of `trade_plan`: a stand-in asset with that key and the project's partitions
is materialised for real (planning a real session needs a model and a broker, which other
tests cover); the sensor's clock is fixed so a session of 2018 can be "just past its deadline".
"""

from datetime import UTC, datetime

import pytest
from dagster import (
    AssetExecutionContext,
    Definitions,
    SkipReason,
    asset,
    build_run_status_sensor_context,
    build_sensor_context,
    materialize,
)

from breakout_assets.alerts import (
    build_alert_sensors,
    build_run_failure_sensor,
    build_trade_plan_freshness_sensor,
    deadline,
    due_sessions,
)
from breakout_assets.definitions import build_resources
from breakout_assets.partitions import settings_partitions
from breakout_assets.settings import load_settings
from breakout_assets_tests.conftest import SAMPLE_DIR
from breakout_assets_tests.helpers import read_table
from breakout_assets_tests.local_smtp import HOST, free_port, smtp_server

EARLY_CLOSE = "2018-07-03"  # NYSE closes at 13:00 New York: 17:00 UTC, deadline 19:00 UTC
FULL_DAY = "2018-07-05"  # 16:00 New York: 20:00 UTC, deadline 22:00 UTC


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def alert_settings(database_url, tmp_path):
    def make(port: int):
        return load_settings(
            database_url=database_url,
            files_dir=SAMPLE_DIR,
            dagster_home=tmp_path / "dagster_home",
            smtp_host=HOST,
            smtp_port=port,
            smtp_security="none",
            smtp_to=("oncall@example.test",),
            trade_plan_deadline_minutes=120,
            dagster_ui_url="http://127.0.0.1:3000",
        )

    return make


def alerts(url: str):
    return read_table(url, "SELECT * FROM alerts ORDER BY raised_at")


@asset
def exploding_plan(context: AssetExecutionContext) -> None:
    raise ValueError("broker said no: insufficient margin for BRK-TEST-20180703-L")


def test_a_failed_run_gives_one_alert_email(alert_settings, database_url, dagster_instance):
    with smtp_server() as (inbox, port):
        settings = alert_settings(port)
        resources = build_resources(settings)
        result = materialize([exploding_plan], instance=dagster_instance, raise_on_error=False)
        assert not result.success
        sensor = build_run_failure_sensor(settings)

        def evaluate():
            context = build_run_status_sensor_context(
                sensor_name=sensor.name,
                dagster_event=result.get_run_failure_event(),
                dagster_instance=dagster_instance,
                dagster_run=result.dagster_run,
                resources={"postgres": resources["postgres"], "mailer": resources["mailer"]},
            )
            sensor(context)

        evaluate()
        evaluate()  # the same failure seen again: nothing more
    [received] = inbox.messages
    assert received.rcpt_tos == ["oncall@example.test"]
    message = received.message
    run_id = result.run_id
    assert "exploding_plan" in message["Subject"] and "failed" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert run_id in body and "__ephemeral_asset_job__" in body
    assert "ValueError: broker said no: insufficient margin" in body
    assert f"http://127.0.0.1:3000/runs/{run_id}" in body
    [row] = alerts(database_url).itertuples()
    assert (row.alert_key, row.kind, row.run_id) == (f"run_failure:{run_id}", "run_failure", run_id)
    assert (row.asset_key, row.email_status) == ("exploding_plan", "sent")


def stand_in_trade_plan(settings, fail: bool = False):
    @asset(name="trade_plan", partitions_def=settings_partitions(settings))
    def trade_plan(context: AssetExecutionContext) -> None:
        if fail:
            raise RuntimeError("the broker account is unreachable")
        context.log.info(f"stand-in trade_plan for {context.partition_key}")

    return trade_plan


def evaluate_freshness(settings, now: datetime, cursor: str | None, instance):
    sensor = build_trade_plan_freshness_sensor(settings, clock=lambda: now)
    resources = build_resources(settings)
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"postgres": resources["postgres"], "mailer": resources["mailer"]},
    )
    verdict = sensor(context)
    assert isinstance(verdict, SkipReason)  # it records and emails; it never launches a run
    return context.cursor, verdict.skip_message


def test_deadline_follows_the_exchange_calendar() -> None:
    assert deadline(datetime(2018, 7, 3).date(), 120) == utc("2018-07-03 19:00")
    assert deadline(datetime(2018, 7, 5).date(), 120) == utc("2018-07-05 22:00")
    assert deadline(datetime(2018, 1, 5).date(), 30) == utc("2018-01-05 21:30")  # EST


def test_a_missed_deadline_gives_one_alert_email(
    alert_settings, database_url, dagster_instance, per_session_events
):
    with smtp_server() as (inbox, port):
        settings = alert_settings(port)
        failed = materialize(
            [stand_in_trade_plan(settings, fail=True)],
            partition_key=EARLY_CLOSE,
            instance=dagster_instance,
            raise_on_error=False,
        )
        assert not failed.success
        # a minute before the early close's deadline: not due yet
        cursor, said = evaluate_freshness(
            settings, utc("2018-07-03 18:59"), "2018-07-02", dagster_instance
        )
        assert cursor == "2018-07-02" and "no session" in said
        assert inbox.messages == []
        # a minute after it: missed, one email
        cursor, said = evaluate_freshness(
            settings, utc("2018-07-03 19:01"), cursor, dagster_instance
        )
        assert cursor == EARLY_CLOSE and "raised, email sent" in said
        # later evaluations, from the cursor or from scratch (a reset sensor): nothing more
        evaluate_freshness(settings, utc("2018-07-03 19:30"), cursor, dagster_instance)
        _, said = evaluate_freshness(settings, utc("2018-07-03 19:30"), None, dagster_instance)
        assert "already raised" in said
    [received] = inbox.messages
    assert received.message["Subject"] == f"Breakout ALERT: trade_plan missing for {EARLY_CLOSE}"
    body = received.message.get_body(("plain",)).get_content()
    assert "2018-07-03 15:00 EDT" in body and "19:00 UTC" in body
    # the session's run that failed, and why
    assert f"Latest run for it: {failed.run_id}" in body and "status FAILURE" in body
    assert "RuntimeError: the broker account is unreachable" in body
    [row] = alerts(database_url).itertuples()
    assert row.run_id == failed.run_id
    assert (row.alert_key, row.kind, str(row.session)) == (
        f"freshness:trade_plan:{EARLY_CLOSE}",
        "freshness",
        EARLY_CLOSE,
    )
    assert row.asset_key == "trade_plan" and row.email_status == "sent"


def test_a_met_deadline_gives_none(alert_settings, database_url, dagster_instance):
    with smtp_server() as (inbox, port):
        settings = alert_settings(port)
        run = materialize(
            [stand_in_trade_plan(settings)], partition_key=FULL_DAY, instance=dagster_instance
        )
        assert run.success
        cursor, said = evaluate_freshness(
            settings, utc("2018-07-05 22:01"), EARLY_CLOSE, dagster_instance
        )
    assert cursor == FULL_DAY and said == f"{FULL_DAY}: on time"
    assert inbox.messages == []
    assert alerts(database_url).empty


def test_a_refused_mail_server_is_recorded_and_the_sensor_carries_on(
    alert_settings, database_url, dagster_instance
):
    settings = alert_settings(free_port())  # nothing listens there
    cursor, said = evaluate_freshness(
        settings, utc("2018-07-03 19:01"), "2018-07-02", dagster_instance
    )
    assert cursor == EARLY_CLOSE and "email failed" in said
    [row] = alerts(database_url).itertuples()
    assert row.email_status == "failed" and "ConnectionRefusedError" in row.email_error


def test_the_sensors_are_in_the_code_location(alert_settings) -> None:
    settings = alert_settings(free_port())
    sensors = build_alert_sensors(settings)
    assert [s.name for s in sensors] == ["run_failure_alerts", "trade_plan_freshness"]
    assert all(s.default_status.value == "RUNNING" for s in sensors)
    # their resources (postgres, mailer) resolve against the project's
    Definitions.validate_loadable(Definitions(sensors=sensors, resources=build_resources(settings)))


def test_due_sessions_catch_up_but_not_on_history() -> None:
    start = datetime(2018, 1, 2).date()
    now = utc("2018-07-06 22:30")
    # from the cursor: every session since, the early close included, the holiday out
    assert [str(s) for s in due_sessions(now, 120, datetime(2018, 7, 2).date(), start, None)] == [
        "2018-07-03",
        "2018-07-05",
        "2018-07-06",
    ]
    # first evaluation: only the latest
    assert [str(s) for s in due_sessions(now, 120, None, start, None)] == ["2018-07-06"]
    # partitions that ended months before now (a past sample): nothing is news
    assert due_sessions(now, 120, None, start, datetime(2018, 3, 1).date()) == []
    assert (
        due_sessions(now, 120, datetime(2018, 2, 1).date(), start, None)[0]
        > datetime(2018, 6, 30).date()
    )

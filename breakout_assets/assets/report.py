"""`daily_report`: one HTML report per session (breakout_assets/reporting), written to
`reports/<session>/` and emailed once.

It reads what the session left behind (scores, plans, orders, the journal) as of that session,
so a report re-run later for an old session shows that session, not today. The email is sent at
most once per session (report_deliveries), and a backfill emails only its newest session; a
mail failure is recorded, logged as a warning and shown in the metadata, and the run still
succeeds: a report never stops trading.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
)

from breakout_assets.assets.common import OBSERVE_GROUP, range_result, session_asset
from breakout_assets.partitions import keys_to_sessions
from breakout_assets.reporting.daily import ReportOptions, build_report, write_report
from breakout_assets.reporting.data import read_session
from breakout_assets.reporting.delivery import deliver_once
from breakout_assets.resources.mailer import Mailer
from breakout_assets.resources.model_store import ModelStore
from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.settings import BreakoutSettings
from breakout_assets.versioning import versioned


def report_options(settings: BreakoutSettings) -> ReportOptions:
    return ReportOptions(
        confidence_gate=settings.sizing.confidence_gate,
        label=settings.training.label,
        starting_equity=settings.simulated_starting_equity
        if settings.broker == "simulated"
        else None,
        broker=settings.broker,
        dry_run=settings.dry_run,
        dagster_url=settings.dagster_ui_url,
    )


def build_report_assets(
    partitions_def: TimeWindowPartitionsDefinition, settings: BreakoutSettings
) -> list[AssetsDefinition]:
    options = report_options(settings)

    @session_asset(
        partitions_def,
        OBSERVE_GROUP,
        kinds={"postgres", "html", "email"},
        deps=[AssetKey("journal"), AssetKey("signal_scores"), AssetKey("trade_plan")],
        **versioned(settings, ("simulated_starting_equity",), ("report",)),
    )
    def daily_report(
        context: AssetExecutionContext,
        postgres: PostgresResource,
        model_store: ModelStore,
        mailer: Mailer,
    ) -> MaterializeResult:
        """The session's report (signals and decisions, plans awaiting approval, orders, fills,
        open positions with stop and target, closed trades, P&L in R and dollars, equity curve,
        performance against the serving model's held-out expectation, live calibration) in
        reports/<session>/report.html, emailed once."""
        serving = [entry["experiment_id"] for entry in model_store.active().values()]
        per_session: dict[str, dict] = {}
        totals = {"reports": 0, "sent": 0, "failed": 0}
        for key, session in zip(
            context.partition_keys, keys_to_sessions(context.partition_keys), strict=True
        ):
            with postgres.transaction() as conn:
                rows = read_session(conn, session, serving)
            report = build_report(rows, options)
            path = write_report(report, settings.reports_dir)
            if key != context.partition_keys[-1]:
                # a backfill writes every session's report but emails only its newest: an
                # email is news of the session just run, not of the history behind it
                context.log.info(f"daily report {key}: {path}; not emailed (backfill)")
                totals["reports"] += 1
                per_session[key] = {"path": MetadataValue.path(str(path)), "email": "backfill"}
                continue
            delivery = deliver_once(postgres, mailer, report, path)
            if delivery.needs_attention:
                context.log.warning(
                    f"daily report {key}: email failed (attempt {delivery.attempts}): "
                    f"{delivery.error}; recorded in report_deliveries, retried by the next run"
                )
            else:
                context.log.info(f"daily report {key}: {path}; email {delivery.status}")
            totals["reports"] += 1
            totals["sent"] += delivery.status == "sent"
            totals["failed"] += delivery.needs_attention
            per_session[key] = {
                "path": MetadataValue.path(str(path)),
                "email": delivery.status,
                "email_error": delivery.error or "",
                "email_attempts": delivery.attempts,
                **{name: value for name, value in report.figures.items()},
                "preview": MetadataValue.md(report.markdown()),
            }
        if len(per_session) == 1:
            return MaterializeResult(metadata=next(iter(per_session.values())))
        return range_result(context, totals, per_session)

    return [daily_report]

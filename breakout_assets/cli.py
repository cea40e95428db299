"""`breakout`: the operator's command line.

breakout db url [--dagster]   print the Postgres URL (starting the embedded server if needed)
breakout db stop              stop the embedded server
breakout db migrate           apply pending schema migrations
breakout dagster ARGS...      run the `dagster` CLI against this project's instance
breakout demo                 backfill the bundled sample through every asset, then summarise
breakout backfill FIRST LAST [--asset KEY ...] [--here]   an asset backfill, chunked by
                              BREAKOUT_BACKFILL_CHUNK_SESSIONS, run by the daemon (or here)
breakout research --files-dir DIR   the design's tables measured on real history in DIR
breakout models list          every training run, its held-out AUC and which one serves
breakout models promote ID    serve a run (one that failed the promotion rules needs --force)
breakout models rollback SIDE serve the side's previous model again
breakout approve SESSION (--all | --ref REF ...)   approve pending plans (brackets, fades, spreads)
breakout reject SESSION (--all | --ref REF ...)    reject them
breakout options status|promote|rollback [--by WHO] the options book: paper until promoted
breakout kill-switch on|off|status                 halt (or resume) all order activity
breakout runs recover [--dry-run] [--assume-local] fail dead runs, free their broker slots
breakout dashboard [--port 8501]                   the operator dashboard on 127.0.0.1
"""

from __future__ import annotations

import os
import shutil
import sys

import click

from breakout_assets.settings import SettingsError, load_settings


def _settings():
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


class _OperatorGroup(click.Group):
    """An unreachable database or a kill-switch file that cannot be read is the operator's to
    fix, not a bug: one `Error: ...` line and exit code 2, no traceback."""

    def invoke(self, ctx: click.Context):
        from breakout_assets.resources.kill_switch import KillSwitchError
        from breakout_assets.resources.postgres import DatabaseUnreachable

        try:
            return super().invoke(ctx)
        except (DatabaseUnreachable, KillSwitchError) as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_OperatorGroup)
def main() -> None:
    """Breakout: the trading pipeline's operator commands."""


@main.group()
def db() -> None:
    """The Postgres database."""


@db.command("url")
@click.option("--dagster", "for_dagster", is_flag=True, help="The URL of Dagster's storage.")
def db_url(for_dagster: bool) -> None:
    """Print the connection URL, starting the embedded server if it is not running."""
    from breakout_assets import runtime

    settings = _settings()
    click.echo(runtime.dagster_storage_url(settings) if for_dagster else runtime.data_url(settings))


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded server (no-op when an external DATABASE_URL is used)."""
    from breakout_assets.resources.local_postgres import stop_local_server

    settings = _settings()
    if settings.database_url:
        click.echo("BREAKOUT_DATABASE_URL is set: not managing an external server.")
        return
    stopped = stop_local_server(settings.pg_data_dir)
    click.echo("stopped" if stopped else "not running")


@db.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations from sql/migrations (idempotent)."""
    from sqlalchemy import create_engine

    from breakout_assets import runtime
    from breakout_assets.resources.local_postgres import with_driver
    from breakout_assets.resources.migrations import apply_migrations

    engine = create_engine(with_driver(runtime.data_url(_settings()), "psycopg"))
    applied = apply_migrations(engine)
    click.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")


@main.command(
    "dagster", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dagster_cli(args: tuple[str, ...]) -> None:
    """Run `dagster ARGS` with DAGSTER_HOME and the storage URL of this project."""
    from breakout_assets import runtime

    runtime.apply_dagster_environment(_settings())
    executable = shutil.which("dagster", path=os.path.dirname(sys.executable)) or "dagster"
    os.execv(executable, [executable, *args])


@main.command("demo")
def demo() -> None:
    """Backfill the bundled sample through every asset as one run, then print a summary."""
    from breakout_assets.demo import run_demo

    run_demo(_settings(), echo=click.echo)


HISTORY_ASSETS = (
    "market_bars",
    "index_bars",
    "ticker_reference",
    "daily_features",
    "breakout_signals",
    "signal_outcomes",
)


def _describe_run(run) -> str:
    """A backfill run in one line: status, assets, sessions."""
    tags = run.tags
    first = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition", "")
    last = tags.get("dagster/asset_partition_range_end") or first
    assets = ", ".join(key.to_user_string() for key in run.asset_selection or [])
    return f"{run.status.value:<8} {assets} {first}..{last}"


@main.command("backfill")
@click.argument("first")
@click.argument("last")
@click.option(
    "--asset",
    "assets",
    multiple=True,
    help="An asset to backfill (repeat); default: bars, features, signals and outcomes.",
)
@click.option(
    "--here",
    is_flag=True,
    help="Run it in this process, chunk after chunk; default: the daemon runs it "
    "(`make ui` starts one), up to max_concurrent_runs chunks at once.",
)
def backfill(first: str, last: str, assets: tuple[str, ...], here: bool) -> None:
    """Backfill FIRST..LAST as a Dagster asset backfill: one run per asset, or runs of
    BREAKOUT_BACKFILL_CHUNK_SESSIONS contiguous sessions, ordered by the assets' history."""
    from dagster import AssetKey, DagsterInstance

    from breakout_assets import runtime
    from breakout_assets.definitions import build_definitions
    from breakout_assets.demo import CodeLocationLauncher

    settings = _settings()
    runtime.apply_dagster_environment(settings)
    selection = [AssetKey(name) for name in assets or HISTORY_ASSETS]
    chunk = settings.backfill_chunk_sessions
    click.echo(
        f"backfill {first}..{last} of {', '.join(k.to_user_string() for k in selection)}: "
        + (f"runs of <= {chunk} sessions" if chunk else "one run per asset")
    )
    with DagsterInstance.get() as instance, CodeLocationLauncher(instance) as launcher:
        if not here:
            backfill_id = launcher.submit_asset_backfill(selection, first, last)
            click.echo(
                f"submitted backfill {backfill_id}: the daemon launches its runs; follow it in "
                f"the UI under Runs > Backfills (make ui)"
            )
            return
        defs = build_definitions(settings)
        runs = launcher.asset_backfill(
            defs,
            selection,
            first,
            last,
            on_run=lambda run: click.echo(f"  {_describe_run(run)}"),
        )
        click.echo(f"done: {len(runs)} runs")


@main.command("research")
@click.option(
    "--files-dir",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Stocks, indices, reference (and hourly_raw/) as the files source reads them.",
)
@click.option(
    "--database",
    default="breakout_research",
    show_default=True,
    help="The research's own database on the same server (recreated unless --reuse).",
)
@click.option("--start", default="2015-01-02", show_default=True, help="First session loaded.")
@click.option(
    "--test-start",
    default="2022-01-01",
    show_default=True,
    help="Signals from this date on are held out (chronological split, embargoed).",
)
@click.option("--reuse", is_flag=True, help="Keep the loaded data; train and report again.")
def research(files_dir: str, database: str, start: str, test_start: str, reuse: bool) -> None:
    """Load DIR into its own database, backfill through outcomes, train both sides with the
    production settings and print the design's tables next to ours."""
    from datetime import date
    from pathlib import Path

    from breakout_assets.research import format_report, run_research

    report = run_research(
        _settings(),
        Path(files_dir),
        database=database,
        start=date.fromisoformat(start),
        test_start=date.fromisoformat(test_start),
        load=not reuse,
        echo=click.echo,
    )
    click.echo(format_report(report))


def _decide(
    session: str, all_plans: bool, refs: tuple[str, ...], approve: bool, by: str | None
) -> None:
    from datetime import date

    from breakout_assets.approvals import decide
    from breakout_assets.definitions import build_resources

    if all_plans == bool(refs):
        raise click.UsageError("give either --all or one or more --ref REF")
    who = by or os.environ.get("USER") or "operator"
    try:
        decided = decide(
            build_resources(_settings())["postgres"],
            date.fromisoformat(session),
            approve,
            f"{who} (cli)",
            None if all_plans else list(refs),
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    verb = "approved" if approve else "rejected"
    click.echo(
        f"{verb} {len(decided)} plan(s) of {session}"
        + (": " + ", ".join(decided) if decided else "")
    )


_plan_options = [
    click.argument("session"),
    click.option("--all", "all_plans", is_flag=True, help="Every plan pending approval."),
    click.option("--ref", "refs", multiple=True, help="An order ref (repeatable)."),
    click.option("--by", default=None, help="Who decides (default: $USER)."),
]


def _with_plan_options(fn):
    for option in reversed(_plan_options):
        fn = option(fn)
    return fn


@main.command("approve")
@_with_plan_options
def approve(session: str, all_plans: bool, refs: tuple[str, ...], by: str | None) -> None:
    """Approve the pending plans of SESSION: trade plans, fades and option spreads."""
    _decide(session, all_plans, refs, True, by)


@main.command("reject")
@_with_plan_options
def reject(session: str, all_plans: bool, refs: tuple[str, ...], by: str | None) -> None:
    """Reject the pending plans of SESSION: trade plans, fades and option spreads."""
    _decide(session, all_plans, refs, False, by)


@main.command("kill-switch")
@click.argument("action", type=click.Choice(["on", "off", "status"]))
@click.option("--reason", default="operator", help="Why (recorded in the file).")
def kill_switch(action: str, reason: str) -> None:
    """Halt all order activity (on), resume it (off), or show the state."""
    from breakout_assets.resources.kill_switch import KillSwitch

    switch = KillSwitch(_settings().kill_switch_path)
    if action == "on":
        switch.engage(reason, by=os.environ.get("USER") or "operator")
        click.echo(f"KILL SWITCH ON: {switch.path} (no order will be sent)")
    elif action == "off":
        click.echo("kill switch off" if switch.release() else "kill switch was already off")
    else:
        details = switch.details()
        click.echo(
            f"ON since {details.get('at', '?')}: {details.get('reason', '')} ({switch.path})"
            if switch.engaged()
            else f"off ({switch.path} absent)"
        )


@main.command("dashboard")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
def dashboard(port: int) -> None:
    """The operator dashboard (Streamlit) on http://127.0.0.1:PORT, against this project's
    Postgres and Dagster instance; it binds to 127.0.0.1 only."""
    from breakout_assets import runtime
    from breakout_assets.dashboard.server import streamlit_command, url

    settings = _settings()
    runtime.data_url(settings)  # the embedded server up (or the configured one answering) first
    runtime.apply_dagster_environment(settings)  # DAGSTER_HOME: the recent runs page
    command = streamlit_command(port)
    click.echo(f"dashboard on {url(port)} (Ctrl-C stops it)")
    os.execv(command[0], command)


@main.group()
def runs() -> None:
    """Dagster runs of this project's instance."""


@runs.command("recover")
@click.option("--dry-run", is_flag=True, help="Only say what would be done.")
@click.option(
    "--assume-local", is_flag=True, help="Judge runs that recorded no host as runs of this host."
)
def runs_recover(dry_run: bool, assume_local: bool) -> None:
    """Mark failed the started runs of this host whose processes are all dead (e.g. after a
    kill -9) and free their concurrency slots, so the next broker run is not blocked."""
    from dagster import DagsterInstance

    from breakout_assets import runtime
    from breakout_assets.run_guard import recover_dead_runs

    runtime.apply_dagster_environment(_settings())
    with DagsterInstance.get() as instance:
        verdicts = recover_dead_runs(instance, assume_local=assume_local, dry_run=dry_run)
    prefix = "WOULD BE " if dry_run else ""
    for verdict in verdicts:
        click.echo((prefix if verdict.changed else "") + str(verdict))
    changed = sum(v.changed for v in verdicts)
    click.echo(
        f"{changed} run(s) {'to recover' if dry_run else 'recovered'}, "
        f"{len(verdicts) - changed} left alone"
    )


@main.group()
def models() -> None:
    """Trained models: experiments, promotion, rollback."""


def _model_errors():
    from breakout_assets.ml.features import FeatureMismatch
    from breakout_assets.resources.model_store import ModelStoreError

    return (ModelStoreError, FeatureMismatch)


@models.command("list")
def models_list() -> None:
    """Every recorded training run; `active` marks the one serving each side."""
    from breakout_assets.model_admin import list_models

    table = list_models(_settings())
    click.echo(table.to_string(index=False) if len(table) else "no experiments recorded yet")


@models.command("promote")
@click.argument("experiment_id")
@click.option("--force", is_flag=True, help="Serve it even though it failed the rules.")
def models_promote(experiment_id: str, force: bool) -> None:
    """Serve EXPERIMENT_ID for its side (the previous model stays available for rollback)."""
    from breakout_assets.model_admin import promote

    try:
        entry = promote(_settings(), experiment_id, force=force)
    except _model_errors() as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"serving {entry['experiment_id']} ({entry['reason']})")


@models.command("rollback")
@click.argument("side", type=click.Choice(["long", "short"]))
def models_rollback(side: str) -> None:
    """Serve SIDE's previous model again."""
    from breakout_assets.model_admin import rollback

    try:
        entry = rollback(_settings(), side)
    except _model_errors() as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"serving {entry['experiment_id']} ({entry['reason']})")


@main.group()
def options() -> None:
    """The options overlay's book: paper until a forward test promotes it."""


def _options_conn():
    from breakout_assets.definitions import build_resources

    settings = _settings()
    return settings, build_resources(settings)["postgres"].transaction()


@options.command("status")
def options_status() -> None:
    """The mode, the promotion record and the paper forward test's figures."""
    from breakout_assets.options_admin import format_status, status

    settings, transaction = _options_conn()
    with transaction as conn:
        report = status(conn, settings.options.mode, settings.options.min_closed_for_promotion)
    click.echo(format_status(report))


@options.command("promote")
@click.option("--by", default=None, help="Who decides (default: $USER).")
def options_promote(by: str | None) -> None:
    """Let the options book trade live: needs enough closed paper spreads with a positive
    expectancy (BREAKOUT_OPTIONS__MIN_CLOSED_FOR_PROMOTION); recorded with who, when, figures."""
    from breakout_assets.options_admin import OptionsPromotionError, operator, promote

    settings, transaction = _options_conn()
    try:
        with transaction as conn:
            row = promote(
                conn,
                operator(by),
                settings.options.min_closed_for_promotion,
                settings.options.mode,
            )
    except OptionsPromotionError as exc:
        raise click.ClickException(str(exc)) from None
    f = row["figures"]
    click.echo(
        f"options book promoted by {row['decided_by']} at {row['decided_at']}: "
        f"{f['closed']} closed paper spreads, expectancy {f['expectancy_r']:+.3f}R, "
        f"win rate {f['win_rate']:.1%}"
        + (
            ""
            if settings.options.mode == "live"
            else f" (BREAKOUT_OPTIONS__MODE is {settings.options.mode}: set it to live to trade)"
        )
    )


@options.command("rollback")
@click.option("--by", default=None, help="Who decides (default: $USER).")
def options_rollback(by: str | None) -> None:
    """Return the options book to paper (recorded); live spreads are refused until promoted."""
    from breakout_assets.options_admin import OptionsPromotionError, operator, rollback

    settings, transaction = _options_conn()
    try:
        with transaction as conn:
            row = rollback(conn, operator(by), settings.options.mode)
    except OptionsPromotionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"options book back to paper: rolled back by {row['decided_by']} at {row['decided_at']}"
    )


if __name__ == "__main__":
    main()

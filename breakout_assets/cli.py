"""`breakout`: the operator's command line.

    breakout db url [--dagster]   print the Postgres URL (starting the embedded server if needed)
    breakout db stop              stop the embedded server
    breakout db migrate           apply pending schema migrations
    breakout dagster ARGS...      run the `dagster` CLI against this project's instance
    breakout demo                 backfill the bundled sample through every asset, then summarise
    breakout models list          every training run, its held-out AUC and which one serves
    breakout models promote ID    serve a run (one that failed the promotion rules needs --force)
    breakout models rollback SIDE serve the side's previous model again
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


@click.group()
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


if __name__ == "__main__":
    main()

"""Human approval of trade plans, fades and option spreads: the CLI and the `approve_trades`
job share this.

Only plans still awaiting approval can be decided; every decision records who and when. One
call decides the session's primary brackets, the opposing book's fades and the options
overlay's spreads alike (an order ref names exactly one of them).
"""

from datetime import date

from dagster import Config, OpExecutionContext, job, op

from breakout_assets.resources.postgres import PostgresResource
from breakout_assets.resources.sql import query


def decide(
    postgres: PostgresResource,
    session: date,
    approve: bool,
    decided_by: str,
    refs: "list[str] | None" = None,
) -> "list[str]":
    """Approve (or reject) the pending plans of `session` (trade plans, fades, option spreads):
    all of them when `refs` is None."""
    if refs is not None and not refs:
        raise ValueError("name the plans to decide (order refs), or decide them all")
    params = {
        "status": "approved" if approve else "rejected",
        "decided_by": decided_by,
        "session": session,
        "all_plans": refs is None,
        "refs": refs or [],
    }
    with postgres.transaction() as conn:  # primary plans, fades and option spreads alike
        decided = [
            *conn.execute(query("trading.decide_plans"), params).scalars(),
            *conn.execute(query("opposing.decide"), params).scalars(),
            *conn.execute(query("options.decide"), params).scalars(),
        ]
    unknown = sorted(set(refs or []) - set(decided))
    if unknown:
        raise ValueError(
            f"not pending approval on {session} (unknown, or already decided): "
            f"{unknown}; decided {decided}"
        )
    return decided


class ApprovalConfig(Config):
    """The same choice as `breakout approve|reject SESSION [--all | --ref REF ...]`."""

    session: str  # YYYY-MM-DD
    approve: bool = True
    all_plans: bool = False
    refs: list[str] = []
    decided_by: str


@op
def decide_trade_plans(
    context: OpExecutionContext, config: ApprovalConfig, postgres: PostgresResource
) -> None:
    decided = decide(
        postgres,
        date.fromisoformat(config.session),
        config.approve,
        f"{config.decided_by} (dagster run {context.run_id})",
        None if config.all_plans else config.refs,
    )
    verb = "approved" if config.approve else "rejected"
    context.log.info(f"{verb} {len(decided)} plans of {config.session}: {decided}")


@job(
    description="Approve or reject the session's pending trade plans, fades and option spreads "
    "(run config names them)."
)
def approve_trades():
    decide_trade_plans()

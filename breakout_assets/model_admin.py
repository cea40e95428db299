"""What `breakout models list | promote | rollback` do: the pointer file and the experiments
table always move together."""

from __future__ import annotations

import pandas as pd

from breakout_assets.definitions import build_resources
from breakout_assets.resources.model_store import ModelStoreError
from breakout_assets.resources.sql import query
from breakout_assets.settings import BreakoutSettings


def list_models(settings: BreakoutSettings) -> pd.DataFrame:
    resources = build_resources(settings)
    with resources["postgres"].transaction() as conn:
        table = pd.read_sql(query("models.list_experiments"), conn)
    active = {
        side: entry["experiment_id"] for side, entry in resources["model_store"].active().items()
    }
    table.insert(
        0,
        "active",
        [active.get(s) == e for s, e in zip(table["side"], table["experiment_id"], strict=True)],
    )
    return table


def promote(settings: BreakoutSettings, experiment_id: str, force: bool = False) -> dict:
    """Serve a recorded experiment. One that failed the promotion rules needs `force`."""
    resources = build_resources(settings)
    with resources["postgres"].transaction() as conn:
        row = (
            conn.execute(query("models.get_experiment"), {"experiment_id": experiment_id})
            .mappings()
            .first()
        )
        if row is None:
            raise ModelStoreError(f"no experiment {experiment_id!r} (see `breakout models list`)")
        if not row["promotion"]["passed"] and not force:
            failed = [c["rule"] for c in row["promotion"]["checks"] if not c["passed"]]
            raise ModelStoreError(
                f"{experiment_id} failed the promotion rules ({failed}); "
                "use --force to serve it anyway"
            )
        conn.execute(
            query("models.set_promoted"), {"side": row["side"], "experiment_id": experiment_id}
        )
        reason = "operator promotion" + (
            " (forced past failed rules)" if force and not row["promotion"]["passed"] else ""
        )
        return resources["model_store"].promote(
            row["side"], experiment_id, row["artifact_path"], reason=reason
        )


def rollback(settings: BreakoutSettings, side: str) -> dict:
    resources = build_resources(settings)
    with resources["postgres"].transaction() as conn:
        entry = resources["model_store"].rollback(side)
        conn.execute(
            query("models.set_promoted"), {"side": side, "experiment_id": entry["experiment_id"]}
        )
    return entry

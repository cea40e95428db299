"""Code versions of the assets: what an asset's rows mean, as Dagster sees it.

A threshold such as BREAKOUT_SCANNER__RALLY_MIN_PCT changes what `breakout_signals` holds
without any code change. Each asset therefore declares the settings sections and SQL files its
rows depend on; its `code_version` is a short hash of those (plus LOGIC_VERSION), so Dagster
marks the asset and everything downstream as changed when they change, and the settings are
shown on the asset's definition. Performance knobs (chunk sizes, work_mem) are left out: they
change how fast, not what.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from dagster import MetadataValue

from breakout_assets.resources.sql import SQL_DIR
from breakout_assets.settings import BreakoutSettings

# Bump when Python logic changes what an asset's rows mean without a settings or SQL change.
LOGIC_VERSION = "1"

# Never hashed or shown: the definition metadata is visible in the UI.
SECRET_FIELDS = frozenset(
    {
        "database_url",
        "dagster_database_url",
        "polygon_api_key",
        "ibkr_account",
        "smtp_password",
        "ibkr_flex_token",
    }
)


def setting_values(settings: BreakoutSettings, fields: Sequence[str]) -> dict[str, Any]:
    """The named settings (dotted paths into sections allowed) as JSON-ready values."""
    dumped = settings.model_dump(mode="json")
    values = {}
    for path in fields:
        head, *rest = path.split(".")
        if head in SECRET_FIELDS:
            raise ValueError(f"{head} is a secret: it cannot version or describe an asset")
        value = dumped[head]
        for part in rest:
            value = value[part]
        values[path] = value
    return values


def sql_path(name: str):
    """`signals` -> sql/queries/signals.sql; `features/daily_features` -> sql/features/..."""
    return SQL_DIR / (f"{name}.sql" if "/" in name else f"queries/{name}.sql")


def code_version(settings: BreakoutSettings, fields: Sequence[str], sql: Sequence[str] = ()) -> str:
    """A 12-hex hash of the settings' values, the SQL files' text and LOGIC_VERSION."""
    digest = hashlib.sha256(LOGIC_VERSION.encode())
    digest.update(json.dumps(setting_values(settings, fields), sort_keys=True).encode())
    for name in sorted(sql):
        digest.update(name.encode() + b"\0" + sql_path(name).read_bytes())
    return digest.hexdigest()[:12]


def versioned(
    settings: BreakoutSettings, fields: Sequence[str], sql: Sequence[str] = ()
) -> dict[str, Any]:
    """`code_version` and definition `metadata` for an asset decorator:
    `@asset(**versioned(...))`."""
    return {
        "code_version": code_version(settings, fields, sql),
        "metadata": {
            "settings": MetadataValue.json(setting_values(settings, fields)),
            "sql_files": MetadataValue.json(
                [str(sql_path(name).relative_to(SQL_DIR.parent)) for name in sorted(sql)]
            ),
        },
    }

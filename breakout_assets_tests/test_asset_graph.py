"""The asset graph as a reviewed snapshot, and the code versions that follow the settings.

`asset_graph.json` holds every asset's key, dependencies, group, partitioning, checks and
broker tag. A change to the graph fails this test until the snapshot is regenerated on purpose:
    UPDATE_ASSET_GRAPH=1 .venv/bin/python -m pytest -q breakout_assets_tests/test_asset_graph.py
and the diff of the JSON file is reviewed with the change.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from dagster import AssetKey

from breakout_assets import versioning
from breakout_assets.definitions import build_definitions
from breakout_assets.sensors import BROKER_TAG
from breakout_assets.settings import load_settings

SNAPSHOT = Path(__file__).with_name("asset_graph.json")


def graph_snapshot(defs) -> dict:
    """What a reviewer of the graph cares about, in a stable order."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            # deps on other sessions than the same one (history read, own previous session)
            "history": {
                parent.to_user_string(): [mapping.start_offset, mapping.end_offset]
                for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string())
                if (mapping := graph.get_partition_mapping(key, parent)) is not None
                and (getattr(mapping, "start_offset", 0) or getattr(mapping, "end_offset", 0))
            },
            "partitions": None
            if partitions is None
            else {
                "type": type(partitions).__name__,
                "start": partitions.start.strftime("%Y-%m-%d"),
                "cron": partitions.cron_schedule,
            },
            "materializable": node.is_materializable,
            "checks": sorted(check.name for check in node.check_keys),
            "touches_broker": node.tags.get(BROKER_TAG) == "true",
        }
    jobs = {
        job.name: sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys)
        for job in defs.resolve_all_job_defs()
        if not job.name.startswith("__")
    }
    return {"assets": assets, "jobs": jobs}


def test_the_asset_graph_matches_its_snapshot():
    actual = graph_snapshot(build_definitions(load_settings()))
    if os.environ.get("UPDATE_ASSET_GRAPH"):
        SNAPSHOT.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert actual == expected, "asset graph changed: regenerate asset_graph.json (see docstring)"


def test_every_group_holds_several_assets():
    groups = {}
    for name, node in graph_snapshot(build_definitions(load_settings()))["assets"].items():
        groups.setdefault(node["group"], []).append(name)
    assert set(groups) <= {"data", "research", "trading", "observe"}
    assert all(len(names) > 1 for names in groups.values()), groups


def _versions(**overrides) -> dict[str, str | None]:
    graph = build_definitions(load_settings(**overrides)).resolve_asset_graph()
    return {key.to_user_string(): graph.get(key).code_version for key in graph.get_all_asset_keys()}


def test_a_scanner_setting_changes_breakout_signals_code_version_only_downstream(monkeypatch):
    before = _versions()
    monkeypatch.setenv("BREAKOUT_SCANNER__RALLY_MIN_PCT", "0.07")
    after = _versions()
    assert after["breakout_signals"] != before["breakout_signals"]
    assert after["market_bars"] == before["market_bars"]
    assert after["daily_features"] == before["daily_features"]
    assert all(version for key, version in after.items() if key != "hourly_bars")


def test_a_performance_knob_leaves_every_code_version(monkeypatch):
    before = _versions()
    monkeypatch.setenv("BREAKOUT_SIGNAL_CHUNK_SESSIONS", "17")
    monkeypatch.setenv("BREAKOUT_FEATURE_WORK_MEM", "64MB")
    assert _versions() == before


def test_an_edited_sql_file_changes_the_code_version_of_its_assets(monkeypatch, tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(versioning.SQL_DIR, sql_dir)
    monkeypatch.setattr(versioning, "SQL_DIR", sql_dir)
    before = _versions()
    with (sql_dir / "queries" / "outcomes.sql").open("a") as f:
        f.write("\n-- a changed statement\n")
    after = _versions()
    assert after["signal_outcomes"] != before["signal_outcomes"]
    assert after["breakout_signals"] == before["breakout_signals"]


def test_the_settings_are_shown_on_the_asset_definition(monkeypatch):
    monkeypatch.setenv("BREAKOUT_SCANNER__RALLY_MIN_PCT", "0.07")
    defs = build_definitions(load_settings())
    spec = defs.resolve_assets_def(AssetKey("breakout_signals")).specs_by_key[
        AssetKey("breakout_signals")
    ]
    assert spec.metadata["settings"].data["scanner"]["rally_min_pct"] == 0.07
    assert spec.metadata["sql_files"].data == ["sql/queries/signals.sql"]


def test_a_secret_cannot_version_an_asset():
    with pytest.raises(ValueError, match="secret"):
        versioning.code_version(load_settings(), ("database_url",))

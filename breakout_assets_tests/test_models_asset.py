"""`long_model` / `short_model` on the bundled real sample: experiments, artifacts, promotion."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner
from dagster import materialize

from breakout_assets.cli import main
from breakout_assets.core.scanner import ScannerConfig
from breakout_assets.definitions import build_assets, build_resources
from breakout_assets.ml.features import FeatureMismatch
from breakout_assets.resources.model_store import ACTIVE_FILE, ModelStoreError
from breakout_assets.resources.postgres import _engine
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import SAMPLE_DIR, new_database
from breakout_assets_tests.helpers import read_table, run_assets

# Small enough for a test; the sample has ~40 labelled signals a side. Booking every signal at
# its 50% target (instead of 200% for strong candles) gives the labels both classes in numbers.
SCANNER = ScannerConfig(adjusted_target_fraction=0.5)
QUICK = {
    "trials": 3,
    "folds": 2,
    "max_rounds": 2,
    "min_features": 10,
    "split": "random",
    "test_fraction": 0.3,
}
EXPERIMENTS = "SELECT * FROM model_experiments ORDER BY created_at, experiment_id"


@pytest.fixture(scope="module")
def labelled_template(pg_server, dagster_instance):
    """The whole sample through bars, features, signals and outcomes, built once."""
    url = new_database(pg_server)
    settings = load_settings(database_url=url, files_dir=SAMPLE_DIR, scanner=SCANNER)
    run_assets(
        settings, ["market_bars", "index_bars", "ticker_reference"], "2018-01-02", "2024-03-08"
    )
    run_assets(
        settings,
        ["daily_features", "breakout_signals", "signal_outcomes"],
        "2018-06-01",
        "2024-03-08",
    )
    _engine(url).dispose()
    return urlparse(url).path.lstrip("/")


@pytest.fixture
def labelled(pg_server, labelled_template, tmp_path):
    return load_settings(
        database_url=new_database(pg_server, template=labelled_template),
        files_dir=SAMPLE_DIR,
        model_store_dir=tmp_path / "store",
        scanner=SCANNER,
    )


def train(settings, side="long", **config):
    [model] = [a for a in build_assets(settings) if a.key.to_user_string() == f"{side}_model"]
    return materialize(
        [model],
        resources=build_resources(settings),
        instance=helpers.DEFAULT_INSTANCE,
        run_config={"ops": {f"{side}_model": {"config": {**QUICK, **config}}}},
    )


def test_a_run_is_recorded_saved_and_promoted_by_rule(labelled):
    result = train(labelled)
    metadata = result.asset_materializations_for_node("long_model")[0].metadata
    [row] = read_table(labelled.database_url, EXPERIMENTS).itertuples()
    assert row.side == "long" and row.experiment_id == metadata["experiment_id"].value
    store = Path(labelled.model_store_dir)
    model_file = store / row.artifact_path
    assert model_file.name == "model.ubj" and model_file.exists()
    card = json.loads((model_file.parent / "metadata.json").read_text())
    assert card["features"] == row.features and card["model_sha256"] == row.model_sha256
    assert not list(store.rglob("*.pkl")) and not list(store.rglob("*.pickle"))
    assert set(row.metrics["metrics"]) >= {
        "accuracy",
        "roc_auc",
        "precision",
        "recall",
        "f1",
        "brier",
        "log_loss",
    }
    assert len(row.metrics["calibration"]) == 10
    # calibrated confidence, with the raw booster output beside it for comparison
    calibrator = model_file.parent / "calibrator.json"
    assert card["calibrator_sha256"] == hashlib.sha256(calibrator.read_bytes()).hexdigest()
    saved = json.loads(calibrator.read_text())
    assert saved["method"] == metadata["calibrator"].value == row.split["calibrator"]["method"]
    assert saved["method"] in ("sigmoid", "isotonic") and saved["selection"]["score"] == "brier"
    assert {"ece", "raw_ece", "raw_brier", "raw_log_loss"} <= set(row.metrics["metrics"])
    assert len(row.metrics["raw_calibration"]) == 10
    for key in ("ece", "raw_ece", "brier", "raw_brier"):
        assert metadata[key].value == round(row.metrics["metrics"][key], 4)
    assert "calibrator_selection" in metadata and "raw_calibration" in metadata
    assert [r["gate"] for r in row.metrics["expectancy"]] == [None, 0.5, 0.55, 0.6, 0.65]
    # expectancy gross and net of costs (core.costs); promotion judges the net one
    scanner = row.metrics["expectancy"][0]
    assert scanner["expectancy_net_r"] < scanner["expectancy_r"]
    assert scanner["sum_net_r"] < scanner["sum_r"]
    assert row.promotion["checks"][-1]["rule"] == "net expectancy at the gate > scanner only"
    for plot in ("calibration_plot", "importance_plot", "gate_sweep_plot"):
        assert "data:image/png;base64," in metadata[plot].value
    assert row.split["split"] == "random" and row.split["trials"] == 3
    # promoted exactly when every rule passed, and the pointer agrees
    assert row.promoted == row.promotion["passed"] == metadata["promoted"].value
    active = json.loads((store / ACTIVE_FILE).read_text()) if row.promoted else {}
    assert (active.get("long", {}).get("experiment_id") == row.experiment_id) == row.promoted


def test_same_data_and_seed_give_identical_model_bytes_and_metrics(labelled):
    train(labelled, side="short", seed=7)
    train(labelled, side="short", seed=7)
    first, second = read_table(labelled.database_url, EXPERIMENTS).itertuples()
    assert first.experiment_id != second.experiment_id or first.created_at == second.created_at
    assert first.model_sha256 == second.model_sha256
    assert first.metrics == second.metrics and first.params == second.params
    store = Path(labelled.model_store_dir)
    assert (store / first.artifact_path).read_bytes() == (store / second.artifact_path).read_bytes()
    calibrators = [
        (store / row.artifact_path).with_name("calibrator.json").read_bytes()
        for row in (first, second)
    ]
    assert calibrators[0] == calibrators[1]
    train(labelled, side="short", seed=8)
    third = read_table(labelled.database_url, EXPERIMENTS).iloc[-1]
    assert third.model_sha256 != first.model_sha256


def test_no_labelled_signals_is_a_clear_error(pg_server, tmp_path):
    empty = load_settings(database_url=new_database(pg_server), model_store_dir=tmp_path)
    with pytest.raises(Exception, match="no long signals with final outcomes"):
        train(empty)


def test_promote_rollback_and_a_stale_feature_list(labelled):
    store = build_resources(labelled)["model_store"]
    train(labelled, seed=1)
    train(labelled, seed=2)
    first, second = read_table(labelled.database_url, EXPERIMENTS).itertuples()
    # start from no pointer, whichever run the rules promoted on its own
    (Path(labelled.model_store_dir) / ACTIVE_FILE).unlink(missing_ok=True)
    store.promote("long", first.experiment_id, first.artifact_path, reason="test")
    store.promote("long", second.experiment_id, second.artifact_path, reason="test")
    assert store.active()["long"]["experiment_id"] == second.experiment_id
    store.rollback("long")
    assert store.active()["long"]["experiment_id"] == first.experiment_id
    booster, card = store.load_active("long")
    assert booster.feature_names == card.features
    with pytest.raises(ModelStoreError, match="no earlier long model"):
        store.rollback("long")
    # a model whose features the code no longer computes refuses to load
    meta = Path(labelled.model_store_dir) / first.artifact_path
    meta = meta.parent / "metadata.json"
    card_json = json.loads(meta.read_text())
    meta.write_text(json.dumps({**card_json, "features": card_json["features"] + ["gone_feature"]}))
    with pytest.raises(FeatureMismatch, match="gone_feature"):
        store.load_active("long")
    # so is a calibrator that is not the one saved with the model
    meta.write_text(json.dumps(card_json))
    calibrator = meta.with_name("calibrator.json")
    saved = calibrator.read_bytes()
    calibrator.write_bytes(saved.replace(b'"method"', b'"method" ', 1))
    with pytest.raises(ModelStoreError, match="calibrator.json does not match"):
        store.load_active("long")
    calibrator.write_bytes(saved)
    # a corrupted model file is refused too
    (Path(labelled.model_store_dir) / first.artifact_path).write_bytes(b"not a model")
    with pytest.raises(ModelStoreError, match="sha256"):
        store.load_active("long")
    with pytest.raises(ModelStoreError, match="no active short model"):
        store.load_active("short")


def test_models_cli_lists_promotes_and_rolls_back(labelled):
    train(labelled, seed=1)
    train(labelled, seed=2)
    first, second = read_table(labelled.database_url, EXPERIMENTS).itertuples()
    env = {
        "BREAKOUT_DATABASE_URL": labelled.database_url,
        "BREAKOUT_MODEL_STORE_DIR": str(labelled.model_store_dir),
    }
    runner = CliRunner(env=env)
    listed = runner.invoke(main, ["models", "list"])
    assert listed.exit_code == 0 and first.experiment_id in listed.output
    for row in (first, second):
        promoted = runner.invoke(main, ["models", "promote", row.experiment_id])
        if row.promotion["passed"]:
            assert promoted.exit_code == 0, promoted.output
        else:  # a run that failed the rules needs --force, and says which rule failed
            assert promoted.exit_code != 0 and "failed the promotion rules" in promoted.output
            promoted = runner.invoke(main, ["models", "promote", row.experiment_id, "--force"])
            assert "forced past failed rules" in promoted.output
        assert promoted.exit_code == 0
    flags = read_table(labelled.database_url, EXPERIMENTS)[["experiment_id", "promoted"]]
    assert flags.set_index("experiment_id")["promoted"].to_dict() == {
        first.experiment_id: False,
        second.experiment_id: True,
    }
    rolled = runner.invoke(main, ["models", "rollback", "long"])
    assert rolled.exit_code == 0 and first.experiment_id in rolled.output
    flags = read_table(labelled.database_url, EXPERIMENTS).set_index("experiment_id")["promoted"]
    assert flags[first.experiment_id] and not flags[second.experiment_id]
    unknown = runner.invoke(main, ["models", "promote", "long-nope"])
    assert unknown.exit_code != 0 and "no experiment" in unknown.output

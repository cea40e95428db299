"""The models train from the UI on the bundled sample with the default settings: the `sample`
preset of the model assets' run config (what the Launchpad shows, what the demo trains)."""

from __future__ import annotations

import pytest
from dagster import materialize

from breakout_assets.assets.models import TrainingRun
from breakout_assets.definitions import build_assets, build_resources
from breakout_assets.settings import load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import SAMPLE_DIR, new_database
from breakout_assets_tests.helpers import read_table, run_assets

# The preset as the Launchpad would take it; fewer trials and one round only to keep the test
# short (the class balance and the pipeline do not depend on them).
LAUNCHPAD = {"preset": "sample", "trials": 2, "max_rounds": 1}


def test_the_sample_preset_is_the_production_settings_with_fewer_trials():
    settings = load_settings()
    production, sample = settings.training, TrainingRun(preset="sample").apply(settings.training)
    assert (sample.trials, sample.max_rounds) == (10, 3)
    assert sample.model_dump(exclude={"trials", "max_rounds"}) == production.model_dump(
        exclude={"trials", "max_rounds"}
    )
    assert TrainingRun().apply(production) == production
    with pytest.raises(ValueError, match="unknown training preset"):
        TrainingRun(preset="fast").apply(production)


def test_both_models_materialise_on_the_sample_with_default_settings(pg_server, tmp_path):
    settings = load_settings(
        database_url=new_database(pg_server),
        files_dir=SAMPLE_DIR,
        model_store_dir=tmp_path / "store",
    )
    run_assets(
        settings, ["market_bars", "index_bars", "ticker_reference"], "2018-01-02", "2024-03-08"
    )
    run_assets(
        settings,
        ["daily_features", "breakout_signals", "signal_outcomes"],
        "2018-06-01",
        "2024-03-08",
    )
    labels = read_table(
        settings.database_url,
        """
        SELECT s.side, o.status, count(*) AS n FROM signal_outcomes o
        JOIN breakout_signals s USING (signal_id) WHERE o.status IN ('win', 'loss')
        GROUP BY 1, 2""",
    )
    for side in ("long", "short"):  # both classes on each side: no single-class failure
        assert set(labels.loc[labels["side"] == side, "status"]) == {"win", "loss"}
    models = [a for a in build_assets(settings) if a.key.to_user_string().endswith("_model")]
    result = materialize(
        models,
        resources=build_resources(settings),
        instance=helpers.DEFAULT_INSTANCE,
        run_config={"ops": {m.key.to_user_string(): {"config": LAUNCHPAD} for m in models}},
    )
    assert result.success
    experiments = read_table(settings.database_url, "SELECT side, params FROM model_experiments")
    assert sorted(experiments["side"]) == ["long", "short"]

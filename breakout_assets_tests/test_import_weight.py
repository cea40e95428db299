"""Loading the settings stays light: no numba (its JIT kernels belong to the scanner and the
replays, not to reading BREAKOUT_* variables in the CLI, the UI or a test)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("numba", "xgboost", "sklearn")


@pytest.mark.parametrize(
    "module",
    ["breakout_assets.settings", "breakout_assets.core.config", "breakout_assets.ml.config"],
)
def test_importing_the_settings_does_not_import_numba(module):
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


def test_the_configs_are_still_where_the_strategy_code_reads_them():
    from breakout_assets.core import config, opposing, outcomes, scanner
    from breakout_assets.ml import config as ml_config
    from breakout_assets.ml import registry

    assert scanner.ScannerConfig is config.ScannerConfig
    assert outcomes.OutcomeConfig is config.OutcomeConfig
    assert opposing.OpposingConfig is config.OpposingConfig
    assert registry.PromotionRules is ml_config.PromotionRules

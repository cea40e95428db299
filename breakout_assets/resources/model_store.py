"""The model store: model files and `ACTIVE_MODELS.json`, the serving pointer per side.

Models are saved in XGBoost's own UBJ format with their probability calibrator
(`calibrator.json`, plain numbers) and a metadata JSON beside them (never pickle); the card
records the sha256 of both files and loading refuses either one when it does not match. Every
write goes to a temporary file first and is renamed into place, so a crash never leaves a
half-written model or pointer. Promotion and rollback only move the pointer: serving reads it,
so changing the model needs no code change.

A model saved before calibration existed (no `calibrator_sha256` in its card) still loads, with
an identity calibrator whose `selection["reason"]` says so and a logged warning: serving keeps
running on what it served before, and the card shows it is uncalibrated until it is retrained.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import xgboost as xgb
from dagster import ConfigurableResource

from breakout_assets.ml.calibration import Calibrator
from breakout_assets.ml.registry import ModelCard, sha256

ACTIVE_FILE = "ACTIVE_MODELS.json"
CALIBRATOR_FILE = "calibrator.json"
SIDES = ("long", "short")
LEGACY_CALIBRATION = (
    "legacy artifact saved without a calibrator: raw booster output (skewed "
    "by scale_pos_weight) is served as confidence; retrain to calibrate"
)
log = logging.getLogger(__name__)


class ModelStoreError(RuntimeError):
    """A model or the active pointer is missing, corrupt or does not fit the code."""


def _write_atomic(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ModelStore(ConfigurableResource):
    root: str

    @property
    def path(self) -> Path:
        return Path(self.root)

    # --- artifacts -------------------------------------------------------------------------
    def save(self, card: ModelCard, model: bytes) -> str:
        """Write model + calibrator + metadata (last); returns the artifact path relative to the
        store."""
        if sha256(model) != card.model_sha256:
            raise ModelStoreError("the model bytes do not match the card's sha256")
        if card.calibrator is None or card.calibrator_sha256 is None:
            raise ModelStoreError("a model is saved with its calibrator (and its sha256)")
        calibrator = card.calibrator.to_bytes()
        if sha256(calibrator) != card.calibrator_sha256:
            raise ModelStoreError("the calibrator does not match the card's calibrator_sha256")
        folder = Path(card.side) / card.experiment_id
        _write_atomic(self.path / folder / "model.ubj", model)
        _write_atomic(self.path / folder / CALIBRATOR_FILE, calibrator)
        _write_atomic(
            self.path / folder / "metadata.json",
            json.dumps(card.to_json(), indent=2, sort_keys=True).encode(),
        )
        return str(folder / "model.ubj")

    def load(self, artifact_path: str) -> tuple[xgb.Booster, ModelCard]:
        """The model and its card (calibrator filled in), checked: model and calibrator bytes
        match their recorded hashes, features match the features this code computes."""
        model_file = self.path / artifact_path
        try:
            payload = model_file.read_bytes()
            card_data = json.loads((model_file.parent / "metadata.json").read_text())
        except (OSError, ValueError) as error:
            raise ModelStoreError(f"cannot read model {model_file}: {error}") from error
        card = ModelCard.from_json(card_data)  # raises FeatureMismatch on a stale feature list
        if sha256(payload) != card.model_sha256:
            raise ModelStoreError(f"{model_file} does not match its recorded sha256")
        booster = xgb.Booster()
        booster.load_model(bytearray(payload))
        booster.feature_names = list(card.features)
        return booster, replace(card, calibrator=self._calibrator(model_file.parent, card))

    def _calibrator(self, folder: Path, card: ModelCard) -> Calibrator:
        if card.calibrator_sha256 is None:
            log.warning("model %s: %s", card.experiment_id, LEGACY_CALIBRATION)
            return Calibrator.identity(LEGACY_CALIBRATION)
        file = folder / CALIBRATOR_FILE
        try:
            payload = file.read_bytes()
        except OSError as error:
            raise ModelStoreError(f"cannot read the calibrator {file}: {error}") from error
        if sha256(payload) != card.calibrator_sha256:
            raise ModelStoreError(f"{file} does not match its recorded sha256")
        try:
            return Calibrator.from_bytes(payload)
        except (ValueError, TypeError) as error:
            raise ModelStoreError(f"{file} is not a valid calibrator: {error}") from error

    # --- the serving pointer ---------------------------------------------------------------
    def active(self) -> dict:
        file = self.path / ACTIVE_FILE
        if not file.exists():
            return {}
        try:
            return json.loads(file.read_text())
        except ValueError as error:
            raise ModelStoreError(f"{file} is not valid JSON: {error}") from error

    def _write_active(self, active: dict) -> None:
        _write_atomic(
            self.path / ACTIVE_FILE, (json.dumps(active, indent=2, sort_keys=True) + "\n").encode()
        )

    def promote(self, side: str, experiment_id: str, artifact_path: str, reason: str) -> dict:
        """Point `side` at a model (which must load and fit the code); the old one is kept
        in the side's history for rollback."""
        if side not in SIDES:
            raise ModelStoreError(f"side must be one of {SIDES}, not {side!r}")
        self.load(artifact_path)
        active = self.active()
        current = active.get(side)
        history = list(current.get("history", [])) if current else []
        if current and current["experiment_id"] != experiment_id:
            history.append(
                {k: current[k] for k in ("experiment_id", "artifact_path", "promoted_at", "reason")}
            )
        active[side] = {
            "experiment_id": experiment_id,
            "artifact_path": artifact_path,
            "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "reason": reason,
            "history": history,
        }
        self._write_active(active)
        return active[side]

    def rollback(self, side: str) -> dict:
        """Serve the side's previous model again."""
        active = self.active()
        current = active.get(side)
        if not current or not current.get("history"):
            raise ModelStoreError(f"no earlier {side} model to roll back to")
        history = list(current["history"])
        previous = history.pop()
        self.load(previous["artifact_path"])
        active[side] = {
            **previous,
            "reason": f"rollback from {current['experiment_id']}",
            "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "history": history,
        }
        self._write_active(active)
        return active[side]

    def load_active(self, side: str) -> tuple[xgb.Booster, ModelCard]:
        current = self.active().get(side)
        if not current:
            raise ModelStoreError(
                f"no active {side} model in {self.path / ACTIVE_FILE}: materialise "
                f"{side}_model or run `breakout models promote EXPERIMENT_ID`"
            )
        return self.load(current["artifact_path"])

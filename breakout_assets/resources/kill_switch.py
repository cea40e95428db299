"""The kill switch: a file whose presence halts all order activity at once.

A file is the simplest thing an operator (or a script, or another machine through a shared
volume) can create in an emergency; nothing has to be running to flip it. The sensor cancels
broker runs when it appears, and every asset that talks to the broker checks it before each
order, so an order is never sent while it exists.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path


class KillSwitch:
    def __init__(self, path: Path | str):
        self.path = Path(path)

    def engaged(self) -> bool:
        return self.path.exists()

    def engage(self, reason: str, by: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({
            "reason": reason, "by": by,
            "at": datetime.now(UTC).isoformat(timespec="seconds")}) + "\n")

    def release(self) -> bool:
        """Remove the file; False if it was not there."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def details(self) -> dict:
        """What the file says (any file counts as engaged, even an empty or hand-made one)."""
        if not self.engaged():
            return {}
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {"reason": "kill-switch file present"}

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


class KillSwitchError(RuntimeError):
    """The switch's path cannot work as a switch (a directory); the message says what to fix."""


class KillSwitch:
    def __init__(self, path: Path | str):
        self.path = Path(path)

    def engaged(self) -> bool:
        """Anything at the path halts trading, a directory too: a broken switch fails safe."""
        return self.path.exists()

    def _not_a_directory(self) -> None:
        if self.path.is_dir():
            raise KillSwitchError(
                f"the kill switch path {self.path} is a directory, not a file: it reads as ON "
                "(no order is sent) until it is removed by hand; point "
                "BREAKOUT_KILL_SWITCH_PATH at a file path instead"
            )

    def engage(self, reason: str, by: str) -> None:
        self._not_a_directory()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(
            json.dumps(
                {"reason": reason, "by": by, "at": datetime.now(UTC).isoformat(timespec="seconds")}
            )
            + "\n"
        )

    def release(self) -> bool:
        """Remove the file; False if it was not there. A directory is never removed (it is not
        ours): that raises KillSwitchError."""
        self._not_a_directory()
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def details(self) -> dict:
        """What the file says (any file counts as engaged, even an empty or hand-made one)."""
        if not self.engaged():
            return {}
        if self.path.is_dir():
            return {
                "reason": f"{self.path} is a directory, not a kill-switch file: remove it "
                "and fix BREAKOUT_KILL_SWITCH_PATH"
            }
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {"reason": "kill-switch file present"}

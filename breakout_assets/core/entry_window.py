"""Whether a plan may still be sent: its entry works only the sessions after its signal.

A plan of signal session D has an entry that works the `valid_sessions` sessions after D
(`OutcomeConfig.entry_valid_sessions`; a fade carries its own). An order placed after the close
of the broker's current session C works from the session after C, so it is sendable only while
0 <= C - D < valid_sessions (in sessions). Past that it is stale: sent now it would trade on a
day its levels were never computed for, at old prices. Before D closes it is early: its levels
are not final yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

WindowState = Literal["early", "open", "passed"]


@dataclass(frozen=True)
class EntryWindow:
    signal_session: date
    current_session: date  # the broker's: its last close, after which an order works
    age: int  # sessions from the signal's close to the current close
    valid_sessions: int

    def __post_init__(self) -> None:
        if self.valid_sessions < 1:
            raise ValueError(f"valid_sessions must be >= 1, got {self.valid_sessions}")

    @property
    def state(self) -> WindowState:
        if self.age < 0:
            return "early"
        return "open" if self.age < self.valid_sessions else "passed"

    @property
    def reason(self) -> str:
        works = f"its entry works {self.valid_sessions} session(s) after {self.signal_session}"
        if self.state == "passed":
            return (
                f"expired: {works}, and the broker's current session is "
                f"{self.current_session} ({self.age} session(s) later): never sent"
            )
        if self.state == "early":
            return (
                f"not yet: {works}, and the broker's current session is "
                f"{self.current_session}, before it"
            )
        return f"current: {works}; the broker's current session is {self.current_session}"

"""The event_id dedupe window both folds use: purchases (``rfm_fold.lua``) and campaign events
(``state.adapters.redis_profiles``).

Ids live in one Redis set per window-long *generation* (wall-clock seconds // the window); a copy
is checked against its generation and the one before, and each set expires (``EXPIREAT``) when the
generation two after its own begins. So a copy up to one window late is always ignored, one between
one and two windows late may be, and a later one is applied again: memory holds the ids of the last
one to two windows.

>>> now = DedupeWindow(100, wall_s=lambda: 250.0).now()
>>> now, now.keys("seg:{c1}:ids")
(Generation(number=2, expires_at_s=400), ('seg:{c1}:ids:2', 'seg:{c1}:ids:1'))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["DEDUPE_WINDOW_S", "DedupeWindow", "Generation"]

DEDUPE_WINDOW_S = 7 * 86_400
"""Default window (``SEGSTREAM_DEDUPE_WINDOW_S``): a copy of an event that arrives within this many
wall-clock seconds after the event was applied is ignored."""


class Generation(NamedTuple):
    """The generation a write falls in, and when its set expires (unix seconds)."""

    number: int
    expires_at_s: int

    def keys(self, base: str) -> tuple[str, str]:
        """The id sets to write and to check besides it: this generation's and the previous one's."""
        return f"{base}:{self.number}", f"{base}:{self.number - 1}"


@dataclass(frozen=True, slots=True)
class DedupeWindow:
    seconds: int = DEDUPE_WINDOW_S
    wall_s: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.seconds < 1:
            raise ValueError(f"the dedupe window is at least 1 s, not {self.seconds}")

    def now(self) -> Generation:
        number = int(self.wall_s()) // self.seconds
        return Generation(number, (number + 2) * self.seconds)

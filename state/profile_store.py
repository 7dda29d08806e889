"""Where the segment evaluator keeps its state between ticks: the port and its in-memory twin.

The evaluator is a single writer (it runs where the one-partition ``clock`` topic is
consumed). After each tick it saves the rows that changed, its clock and cut-points, the
cluster model snapshot and the segment summary in one atomic write, and bumps a generation
number; a worker that takes the clock partition over reloads when the generation moved.
Any worker can read a profile or the summary for the HTTP endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["MemoryProfileStore", "ProfileStore", "SavedEvaluator"]

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SavedEvaluator:
    generation: int
    clock_ms: int | None
    cutpoints_json: str | None
    model: bytes | None
    records: list[Record]


class ProfileStore(Protocol):
    async def generation(self) -> int:
        """How many times the evaluator state was saved (0: never)."""
        ...

    async def load(self) -> SavedEvaluator | None:
        """The saved evaluator state with every row, or None if never saved."""
        ...

    async def save(
        self,
        clock_ms: int,
        cutpoints_json: str | None,
        model: bytes | None,
        records: Sequence[Record],
        summary: Record,
    ) -> int:
        """Save atomically (``model`` None: unchanged); return the new generation."""
        ...

    async def profile(self, customer_id: str) -> Record | None:
        """The saved row of one customer (state and current profile), or None."""
        ...

    async def summary(self) -> Record | None:
        """The segment summary saved with the last tick, or None."""
        ...


@dataclass
class MemoryProfileStore:
    rows: dict[str, Record] = field(default_factory=dict)
    meta: tuple[int, int | None, str | None] = (0, None, None)
    model: bytes | None = None
    last_summary: Record | None = None

    async def generation(self) -> int:
        return self.meta[0]

    async def load(self) -> SavedEvaluator | None:
        generation, clock_ms, cutpoints_json = self.meta
        if not generation:
            return None
        return SavedEvaluator(generation, clock_ms, cutpoints_json, self.model, list(self.rows.values()))

    async def save(
        self,
        clock_ms: int,
        cutpoints_json: str | None,
        model: bytes | None,
        records: Sequence[Record],
        summary: Record,
    ) -> int:
        for record in records:
            self.rows[str(record["customer_id"])] = dict(record)
        self.meta = (self.meta[0] + 1, clock_ms, cutpoints_json)
        self.model = model if model is not None else self.model
        self.last_summary = summary
        return self.meta[0]

    async def profile(self, customer_id: str) -> Record | None:
        return self.rows.get(customer_id)

    async def summary(self) -> Record | None:
        return self.last_summary

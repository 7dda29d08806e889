"""Where the segment evaluator keeps its state between ticks: the port and its in-memory twin.

The evaluator is a single writer (it runs where the one-partition ``clock`` topic is
consumed). After each chunk of instants it saves the rows that changed, its clock and cut-points,
the learned models' snapshot if it changed, the churn prediction batches it made and those it
resolved, and the segment summary in one atomic write, and bumps a generation number; a worker
that takes the clock partition over reloads when the generation moved. What a save writes is what
changed, not the whole population: rows as they change, a batch once when it is made (it never
changes), the snapshot only when its bytes differ. Any worker can read a profile or the summary
for the HTTP endpoints.

Campaign events (``campaign-events``) wait here for the evaluator too: every worker adds the
ones it consumes to one agenda, each ``event_id`` once (within the dedupe window on Redis), and the
evaluator takes those that occurred before a tick and removes them once their instants are saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.campaign_contract import CampaignEvent

__all__ = [
    "MemoryProfileStore",
    "ProfileStore",
    "SavedEvaluator",
    "SavedVersions",
    "Superseded",
    "superseded_generation",
]

Record = dict[str, Any]


class Superseded(RuntimeError):
    """A save refused, nothing written: a newer epoch of the partitioned evaluation began (the owner
    or partition host that tried it was replaced, ``agents.partition_owner``), or another evaluator
    saved since the one the saver follows (``after_generation``: two clock owners for a moment)."""


def superseded_generation(after: int, held: int) -> str:
    """Why a save that follows generation ``after`` is refused when the store holds ``held``."""
    return f"the evaluator saved generation {held} since generation {after}, which this save follows: another clock owner saves"


@dataclass(frozen=True, slots=True)
class SavedEvaluator:
    generation: int
    clock_ms: int | None
    cutpoints_json: str | None
    model: bytes | None
    records: list[Record]
    batches: list[tuple[int, bytes]] = field(default_factory=list)
    """The open churn prediction batches saved apart, ``(made_at_ms, bytes)``, oldest first."""
    versions_log: bytes | None = None
    """A model owner's versions since its save before (``ModelOwner.take_log``, pickled); None for
    the one evaluator, or an owner that saved none."""


class ProfileStore(Protocol):
    async def generation(self) -> int:
        """How many times the evaluator state was saved (0: never)."""
        ...

    async def load(self, *, with_rows: bool = True) -> SavedEvaluator | None:
        """The saved evaluator state with every row (none: ``with_rows=False``), or None if never saved."""
        ...

    async def split_partitions(self) -> int | None:
        """The split evaluator's partition count if it saved last (its partitions keep the rows)."""
        ...

    async def next_epoch(self) -> int:
        """A number larger than any this namespace handed out before: the epoch a model owner of the
        partitioned evaluation begins (its saves name it, :meth:`save`'s ``epoch``)."""
        ...

    async def save(
        self,
        clock_ms: int,
        cutpoints_json: str | None,
        model: bytes | None,
        records: Sequence[Record],
        summary: Record,
        *,
        batches_added: Sequence[tuple[int, bytes]] = (),
        batches_removed: Sequence[int] = (),
        versions_log: bytes | None = None,
        partitions: int | None = None,
        epoch: int | None = None,
        after_generation: int | None = None,
    ) -> int:
        """Save atomically (``model`` None: unchanged); return the new generation. With ``epoch``,
        only while it is the namespace's last (:meth:`next_epoch`); with ``after_generation``, only
        while the last save is still that one (the one the saver loaded or saved itself). Else
        :class:`Superseded`, nothing written. A save whose reply was lost and that is retried
        returns the generation it wrote, and writes nothing again.

        ``batches_added``: churn batches ``(made_at_ms, bytes)`` to keep until ``batches_removed``
        names their ``made_at_ms`` in a later save. ``versions_log``: a model owner's, replacing
        the one saved before (None: the one evaluator's save, which keeps none); ``partitions``:
        the split evaluator's partition count, whose partitions save the rows apart (readers
        then read them there)."""
        ...

    async def profile(self, customer_id: str) -> Record | None:
        """The saved row of one customer (state and current profile), or None."""
        ...

    async def summary(self) -> Record | None:
        """The segment summary saved with the last tick, or None."""
        ...

    async def profiles(self, customer_ids: Iterable[str]) -> dict[str, Record]:
        """The saved rows of these customers (those without one are absent)."""
        ...

    async def versions(self) -> SavedVersions:
        """The generation, cut-points and models snapshot of the last save, without the rows."""
        ...

    async def add_campaign_events(self, events: Sequence[CampaignEvent]) -> int:
        """Put the events not seen before (by ``event_id``) on the agenda; return how many."""
        ...

    async def campaign_due(self, up_to_ms: int) -> list[CampaignEvent]:
        """The agenda's events that occurred before ``up_to_ms``, by occurred_at then event_id."""
        ...

    async def campaign_done(self, events: Iterable[CampaignEvent]) -> None:
        """Remove evaluated events from the agenda; their ids stay known (a resend is ignored) for the
        dedupe window on Redis, for ever in memory."""
        ...


@dataclass(frozen=True, slots=True)
class SavedVersions:
    """What a provisional change is scored against (``state.evaluator.early``): no rows, no summary."""

    generation: int
    cutpoints_json: str | None
    model: bytes | None


@dataclass
class MemoryProfileStore:
    rows: dict[str, Record] = field(default_factory=dict)
    meta: tuple[int, int | None, str | None] = (0, None, None)
    model: bytes | None = None
    batches: dict[int, bytes] = field(default_factory=dict)  # made_at_ms -> an open churn batch
    versions_log: bytes | None = None
    partitions: int | None = None
    last_summary: Record | None = None
    campaign_events: dict[str, CampaignEvent] = field(default_factory=dict)  # the events on the agenda
    campaign_agenda: set[str] = field(default_factory=set)  # event_ids not evaluated yet
    campaign_seen: set[str] = field(default_factory=set)  # every event_id (the reference never forgets)
    epoch: int = 0  # the last epoch handed out

    async def generation(self) -> int:
        return self.meta[0]

    async def load(self, *, with_rows: bool = True) -> SavedEvaluator | None:
        generation, clock_ms, cutpoints_json = self.meta
        if not generation:
            return None
        rows, batches = list(self.rows.values()) if with_rows else [], sorted(self.batches.items())
        return SavedEvaluator(
            generation, clock_ms, cutpoints_json, self.model, rows, batches, self.versions_log
        )

    async def save(
        self,
        clock_ms: int,
        cutpoints_json: str | None,
        model: bytes | None,
        records: Sequence[Record],
        summary: Record,
        *,
        batches_added: Sequence[tuple[int, bytes]] = (),
        batches_removed: Sequence[int] = (),
        versions_log: bytes | None = None,
        partitions: int | None = None,
        epoch: int | None = None,
        after_generation: int | None = None,
    ) -> int:
        if epoch is not None and epoch != self.epoch:
            raise Superseded(f"epoch {epoch} is not the last ({self.epoch}): a newer owner saves")
        if after_generation is not None and after_generation != self.meta[0]:
            raise Superseded(superseded_generation(after_generation, self.meta[0]))
        self.versions_log, self.partitions = versions_log, partitions
        for made_at_ms in batches_removed:
            self.batches.pop(made_at_ms, None)
        self.batches.update(batches_added)
        for record in records:
            self.rows[str(record["customer_id"])] = dict(record)
        self.meta = (self.meta[0] + 1, clock_ms, cutpoints_json)
        self.model = model if model is not None else self.model
        self.last_summary = summary
        return self.meta[0]

    async def split_partitions(self) -> int | None:
        return self.partitions

    async def next_epoch(self) -> int:
        self.epoch += 1
        return self.epoch

    async def profile(self, customer_id: str) -> Record | None:
        return self.rows.get(customer_id)

    async def summary(self) -> Record | None:
        return self.last_summary

    async def profiles(self, customer_ids: Iterable[str]) -> dict[str, Record]:
        return {c: self.rows[c] for c in customer_ids if c in self.rows}

    async def versions(self) -> SavedVersions:
        return SavedVersions(self.meta[0], self.meta[2], self.model)

    async def add_campaign_events(self, events: Sequence[CampaignEvent]) -> int:
        added = 0
        for event in events:
            if event.event_id not in self.campaign_seen:
                self.campaign_seen.add(event.event_id)
                self.campaign_events[event.event_id] = event
                self.campaign_agenda.add(event.event_id)
                added += 1
        return added

    async def campaign_due(self, up_to_ms: int) -> list[CampaignEvent]:
        due = [self.campaign_events[i] for i in self.campaign_agenda]
        return sorted(
            (e for e in due if e.occurred_at_ms < up_to_ms), key=lambda e: (e.occurred_at_ms, e.event_id)
        )

    async def campaign_done(self, events: Iterable[CampaignEvent]) -> None:
        for event in events:
            self.campaign_agenda.discard(event.event_id)
            self.campaign_events.pop(event.event_id, None)

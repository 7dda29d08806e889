"""The customer-state port (:class:`CustomerStore`) and the vocabulary its implementations share.

The Redis store (``state.adapters.redis_store``) must behave exactly like the in-memory one
(``state.customer.memory_store.MemoryStore``, kept in its own module); ``tests/integration/test_store_contract.py``
runs the same contract against both.

Exactly-once effect over at-least-once delivery rests on two fences, checked
per event in this order:

1. offset fence: a redelivered message (same topic/partition, offset at or
   below the last one applied for this customer) is ignored;
2. event_id dedupe: a producer resend (new offset, same ``event_id``) is ignored.

Every applied event is also appended to the customer's event log, and every valid delivery
(applied or not: a redelivery after a crash must still be evaluated) puts an entry on the
*agenda* of events the segment evaluator has not evaluated yet. The evaluator reads the agenda
up to its clock, re-reads those customers' logs, and removes exactly the entries it read.

Analytics counters ride on the same step: a :class:`Tally` attached to a delivery is added
only when its event is applied (never for a resend or a redelivery), atomically with the fold,
so every count built from tallies is exactly once like the RFM state.

Dead letters have their own fence per partition (the last dead-lettered offset),
advanced only after Kafka acknowledged them, so a redelivered bad message is neither
dead-lettered nor counted twice, except if the worker dies between that ack and the fence.

Offsets only mean something within one incarnation of a topic. A recreated (or truncated)
topic starts again at offset 0, so every offset fence of the old incarnation would drop the
new events. Each topic therefore has a *fence epoch* (0 at first): offset fences, dead-letter
fences and consumed offsets belong to the current epoch, and :meth:`CustomerStore.reset_topic`
starts a new one (old fences are then ignored; event_id dedupe still stops true resends within its window) and
keeps a :class:`TopicReset` record of why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Protocol, TypeVar

from state.customer.event_log import CustomerLog, LogEntry
from state.customer.rfm import CustomerState
from streams.contract import Purchase

__all__ = [
    "AgendaEntry",
    "CustomerStore",
    "Delivery",
    "Outcome",
    "Partition",
    "Stats",
    "Tally",
    "TopicReset",
    "agenda_member",
    "fence_field",
    "highest_per_key",
    "log_entry",
    "parse_agenda_member",
]

Partition = tuple[str, int]
"""``(topic, partition)``."""


class Outcome(IntEnum):
    """What one delivery did to the state (the Lua script returns the same codes)."""

    REDELIVERED = 0
    DUPLICATE = 1
    APPLIED = 2
    NEW_CUSTOMER = 3


K = TypeVar("K")


def highest_per_key(pairs: Iterable[tuple[K, int]]) -> dict[K, int]:
    """The largest value seen for each key.

    >>> highest_per_key([("a", 3), ("b", 1), ("a", 7)])
    {'a': 7, 'b': 1}
    """
    highest: dict[K, int] = {}
    for key, value in pairs:
        highest[key] = max(highest.get(key, value), value)
    return highest


@dataclass(frozen=True, slots=True)
class Tally:
    """A counter increment applied exactly once, in the same atomic step as its event's fold.

    ``table`` names a set of counters (``[a-z0-9:_-]``, e.g. ``basket:category:pair``) and
    ``field`` one counter in it. ``per_customer``: the table is the event's customer's own
    (kept beside their state, in the same Redis hash slot); otherwise it is shared by everyone.
    """

    table: str
    field: str
    delta: int = 1
    per_customer: bool = False

    def __post_init__(self) -> None:
        _check_table_name(self.table)


_TABLE_NAME = re.compile(r"[a-z0-9:_-]{1,64}")


@lru_cache(maxsize=1024)
def _check_table_name(table: str) -> None:
    """Raise for a bad table name; a good one is checked once (a basket makes hundreds of tallies
    of a handful of tables: the regex per tally was a quarter of a busy worker's time)."""
    if not _TABLE_NAME.fullmatch(table):
        raise ValueError(f"tally table {table!r}: use [a-z0-9:_-], 1 to 64 characters")


@dataclass(frozen=True, slots=True)
class Delivery:
    """A validated event together with where Kafka delivered it from, and what it tallies if applied."""

    event: Purchase
    topic: str
    partition: int
    offset: int
    tallies: tuple[Tally, ...] = ()
    received_ms: int | None = None
    """Wall clock when the worker received the event (latency metrics); None when not known."""


def fence_field(topic: str, partition: int, epoch: int) -> str:
    """The customer-hash field of an offset fence; epoch 0 keeps the original ``o:<topic>:<partition>``.

    Kafka topic names have no ``:``, so the two forms never meet.

    >>> fence_field("purchases", 3, 0), fence_field("purchases", 3, 2)
    ('o:purchases:3', 'o:purchases:2:3')
    """
    return f"o:{topic}:{partition}" if epoch == 0 else f"o:{topic}:{epoch}:{partition}"


@dataclass(frozen=True, slots=True)
class TopicReset:
    """A topic found recreated or truncated: a worker's consumed offset was beyond the log end.

    ``epoch`` is the fence epoch this reset started; ``partitions`` maps each partition found
    beyond its end to ``(consumed offset recorded in the store, log end offset in Kafka)``.

    >>> r = TopicReset("purchases", 1, 1700000000000, {2: (500, 12)})
    >>> TopicReset.from_json(r.to_json()) == r
    True
    """

    topic: str
    epoch: int
    detected_at_ms: int
    partitions: dict[int, tuple[int, int]]

    def to_json(self) -> str:
        parts = {str(p): {"consumed": c, "log_end": e} for p, (c, e) in sorted(self.partitions.items())}
        body = {"topic": self.topic, "epoch": self.epoch, "detected_at_ms": self.detected_at_ms}
        return json.dumps({**body, "partitions": parts}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> TopicReset:
        body = json.loads(raw)
        parts = {int(p): (int(v["consumed"]), int(v["log_end"])) for p, v in body["partitions"].items()}
        return cls(body["topic"], int(body["epoch"]), int(body["detected_at_ms"]), parts)


def log_entry(event: Purchase) -> LogEntry:
    return LogEntry(event.occurred_at_ms, event.event_id, event.type, event.amount_cents)


AgendaEntry = tuple[str, int]
"""``(agenda member, score)``: the score is ``occurred_at_ms + 1``, the first instant that must see it."""


def agenda_member(customer_id: str, event_id: str) -> str:
    """``<len>:<customer_id><event_id>``: unambiguous whatever the ids contain.

    >>> agenda_member("c:1", "e9"), parse_agenda_member(agenda_member("c:1", "e9"))
    ('3:c:1e9', 'c:1')
    """
    return f"{len(customer_id)}:{customer_id}{event_id}"


def parse_agenda_member(member: str) -> str:
    """The customer id of an agenda member."""
    size, _, rest = member.partition(":")
    return rest[: int(size)]


@dataclass(slots=True)
class Stats:
    """Running totals a worker keeps next to the state (for progress and dashboards)."""

    applied: int = 0
    duplicates: int = 0
    redelivered: int = 0
    invalid: int = 0
    customers: int = 0

    def count(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            if outcome is Outcome.REDELIVERED:
                self.redelivered += 1
            elif outcome is Outcome.DUPLICATE:
                self.duplicates += 1
            else:
                self.applied += 1
                self.customers += outcome is Outcome.NEW_CUSTOMER


class CustomerStore(Protocol):
    """Where customer state lives; every method is one round trip or a pipelined batch."""

    async def apply_batch(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Fold the deliveries in order, atomically per event; also advance the watermark."""
        ...

    async def dead_letter_fences(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """Last dead-lettered offset per (topic, partition); -1 where none."""
        ...

    async def record_dead_letters(self, last_offsets: Mapping[Partition, int], count: int) -> None:
        """After Kafka acked ``count`` dead letters: advance the fences (never backwards), count them."""
        ...

    async def get(self, customer_id: str) -> CustomerState | None: ...

    async def current_states(self, customer_ids: Iterable[str]) -> dict[str, CustomerState]:
        """The current state of each of these customers (everything folded so far); unknown ones absent."""
        ...

    async def all_customers(self) -> list[CustomerState]: ...

    async def watermark(self) -> int | None:
        """Largest ``occurred_at_ms`` of any valid event seen, or ``None``."""
        ...

    async def watermarks(self) -> dict[int, int]:
        """Largest ``occurred_at_ms`` of any valid event seen, per ``purchases`` partition."""
        ...

    async def stats(self) -> Stats: ...

    async def record_consumed(self, next_offsets: Mapping[Partition, int]) -> None:
        """After a batch: every message before ``next_offsets[(topic, partition)]`` is processed."""
        ...

    async def consumed(self, topic: str) -> dict[int, int]:
        """Next unprocessed offset per partition of ``topic`` (partitions never processed are absent)."""
        ...

    async def eval_partitions(self) -> int:
        """The namespace's evaluation partition count (the agenda's cut, a customer's partition by
        :func:`state.customer.partitions.customer_partition`)."""
        ...

    async def due(
        self, up_to_ms: int, after_ms: int | None = None, *, partition: int | None = None
    ) -> list[AgendaEntry]:
        """Agenda entries with ``after_ms`` < score <= ``up_to_ms`` (events that occurred before
        ``up_to_ms``; every earlier one when ``after_ms`` is None), lowest first; only evaluation
        partition ``partition``'s when given (what a partition's host reads)."""
        ...

    async def earliest_due(self, up_to_ms: int) -> int | None:
        """The lowest agenda score <= ``up_to_ms``; None when nothing is due."""
        ...

    async def done(self, entries: Sequence[AgendaEntry]) -> None:
        """Remove exactly these agenda entries (the evaluator has evaluated them)."""
        ...

    async def received(self, members: Sequence[str]) -> dict[str, int]:
        """When a worker first received each agenda entry's event (wall-clock ms), where known."""
        ...

    async def logs(self, customer_ids: Iterable[str]) -> dict[str, CustomerLog]:
        """Each customer's event log: the compacted base, then the events after it by occurred_at_ms."""
        ...

    async def compact(self, customer_ids: Iterable[str], before_ms: int) -> int:
        """Fold these customers' logged events that occurred before ``before_ms`` (a UTC midnight the
        evaluator's clock has passed) into their log bases (``state.customer.event_log``); returns how
        many events were folded. Later events that occurred before a base go straight into it."""
        ...

    async def tally(self, table: str, customer_id: str | None = None) -> dict[str, int]:
        """Every counter of a shared tally table, or of ``customer_id``'s own; empty if none."""
        ...

    async def tallies(self, table: str, customer_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """Each customer's own counters of ``table`` (empty for a customer with none)."""
        ...

    async def fence_epoch(self, topic: str) -> int:
        """The current fence epoch of ``topic`` (0 until its first reset)."""
        ...

    async def reset_topic(self, reset: TopicReset) -> bool:
        """Start fence epoch ``reset.epoch`` of ``reset.topic`` if the current one is ``reset.epoch - 1``.

        Atomically: the epoch moves on, the topic's consumed offsets and dead-letter fences are
        forgotten, and ``reset`` is recorded. Returns False (and changes nothing) if the epoch
        is not ``reset.epoch - 1``: another worker reset it first.
        """
        ...

    async def topic_resets(self) -> list[TopicReset]:
        """Every reset recorded, oldest first."""
        ...

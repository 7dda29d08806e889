"""One batch of raw ``purchases`` messages in, state folded and dead letters out.

Kept free of Faust so it is unit-testable with :class:`state.store.MemoryStore`;
``agents.worker`` feeds it from ``stream.take_events``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from state.store import CustomerStore, Delivery, Outcome
from streams.contract import InvalidEvent, decode_purchase
from streams.dlq import dead_letter

__all__ = ["BatchResult", "DeadLetter", "PublishDeadLetters", "RawMessage", "ingest_batch"]

DeadLetter = tuple[bytes | None, bytes]
"""``(key, dlq_value)`` of one message for ``purchases.dlq``."""
PublishDeadLetters = Callable[[Sequence[DeadLetter]], Awaitable[None]]
"""Publish dead letters and return once Kafka has acknowledged every one."""


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A consumed message as it came off the wire."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class BatchResult:
    outcomes: list[Outcome]
    invalid_reasons: list[str]


async def ingest_batch(
    messages: Sequence[RawMessage],
    store: CustomerStore,
    publish_dead_letters: PublishDeadLetters,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BatchResult:
    """Validate, fold the valid events into ``store``, dead-letter the rest.

    Returns only after Redis has the state and Kafka has the dead letters, so the
    caller may then acknowledge the whole batch.
    """
    deliveries: list[Delivery] = []
    reasons: list[str] = []
    letters: list[DeadLetter] = []
    for m in messages:
        try:
            if not m.value:
                raise InvalidEvent("empty message value")
            event = decode_purchase(m.value)
        except InvalidEvent as exc:
            reasons.append(exc.reason)
            letter = dead_letter(m.value, m.key, exc.reason, m.topic, m.partition, m.offset, now())
            letters.append((m.key, letter))
            continue
        deliveries.append(Delivery(event, m.topic, m.partition, m.offset))
    if letters:
        await publish_dead_letters(letters)
    outcomes = await store.apply_batch(deliveries)
    await store.record_invalid(len(reasons))
    return BatchResult(outcomes, reasons)

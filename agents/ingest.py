"""One batch of raw ``purchases`` (or ``campaign-events``, or ``reviews``) messages in, state folded and dead letters out.

Kept free of Faust so it is unit-testable with :class:`state.customer.memory_store.MemoryStore`;
``agents.worker`` feeds it from ``stream.take_events``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from state.analytics.review_store import ReviewDelivery, ReviewOutcome, ReviewStore, region_refused_reason
from state.customer.profile_store import ProfileStore
from state.customer.store import CustomerStore, Delivery, Outcome, highest_per_key
from state.customer.tally import Tallier
from streams.campaign_contract import decode_campaign_event
from streams.contract import DEFAULT_LIMITS, Purchase, decode_purchase
from streams.dlq import dead_letter, dead_letter_key
from streams.limits import InputLimits, InvalidEvent
from streams.review_contract import decode_review

__all__ = [
    "BatchResult",
    "CampaignBatchResult",
    "DeadLetter",
    "PublishDeadLetters",
    "RawMessage",
    "ReviewBatchResult",
    "dead_letter_rejects",
    "ingest_batch",
    "ingest_campaign_batch",
    "ingest_review_batch",
]

log = logging.getLogger(__name__)
Event = TypeVar("Event")
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
    arrived_ms: int | None = None
    """Wall clock when the worker's consumer handed the message over, before it waited for a batch
    (:func:`agents.pipeline.raw_messages`); None when not known (then the batch's start counts)."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    outcomes: list[Outcome]  # of the valid events, in message order
    invalid_reasons: list[str]
    events: list[Purchase] = field(default_factory=list)  # the valid events, as ``outcomes``
    received_ms: int = 0  # wall-clock start of the batch's step
    receipts: list[int] = field(default_factory=list)  # each valid event's arrival, as ``events``


async def ingest_batch(
    messages: Sequence[RawMessage],
    store: CustomerStore,
    publish_dead_letters: PublishDeadLetters,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    limits: InputLimits = DEFAULT_LIMITS,
    tallier: Tallier | None = None,
) -> BatchResult:
    """Validate, fold the valid events into ``store``, dead-letter the rest.

    ``tallier``: the analytics counters each valid event adds, folded with it (exactly once).

    ``now`` is the wall clock at receipt: the accepted event-time window ends at it plus the
    allowed skew (``limits``), so an event dated 2099 is dead-lettered, never folded.

    Returns only after Kafka has the dead letters and Redis has the state, so the
    caller may then acknowledge the whole batch; the store then records the batch as
    consumed, which is what a clock tick waits for before the evaluator moves.
    """
    received = now()
    now_ms = _epoch_ms(received)
    valid, rejected = _decode_all(messages, lambda raw: decode_purchase(raw, limits, now_ms))
    tallies = await tallier([event for _, event in valid]) if tallier is not None else [()] * len(valid)
    receipts = [now_ms if m.arrived_ms is None else m.arrived_ms for m, _ in valid]
    deliveries = [
        Delivery(event, m.topic, m.partition, m.offset, t, received)
        for (m, event), t, received in zip(valid, tallies, receipts, strict=True)
    ]
    reasons = await dead_letter_rejects(rejected, store, publish_dead_letters, received, limits)
    outcomes = await store.apply_batch(deliveries)
    await store.record_consumed(highest_per_key(((m.topic, m.partition), m.offset + 1) for m in messages))
    return BatchResult(outcomes, reasons, [event for _, event in valid], now_ms, receipts)


@dataclass(frozen=True, slots=True)
class CampaignBatchResult:
    added: int  # events new on the evaluator's agenda (resends and repeats are not)
    invalid_reasons: list[str]


async def ingest_campaign_batch(
    messages: Sequence[RawMessage],
    store: CustomerStore,
    profiles: ProfileStore,
    publish_dead_letters: PublishDeadLetters,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    limits: InputLimits = DEFAULT_LIMITS,
) -> CampaignBatchResult:
    """Validate campaign events, put the valid ones on the evaluator's agenda, dead-letter the rest.

    As :func:`ingest_batch`: returns once the dead letters are in Kafka and the events in
    Redis, then records the batch as consumed (a clock tick waits for it).
    """
    received = now()
    now_ms = _epoch_ms(received)
    valid, rejected = _decode_all(messages, lambda raw: decode_campaign_event(raw, limits, now_ms))
    reasons = await dead_letter_rejects(
        rejected, store, publish_dead_letters, received, limits, count_invalid=False
    )
    added = await profiles.add_campaign_events([event for _, event in valid])
    await store.record_consumed(highest_per_key(((m.topic, m.partition), m.offset + 1) for m in messages))
    return CampaignBatchResult(added, reasons)


@dataclass(frozen=True, slots=True)
class ReviewBatchResult:
    outcomes: list[ReviewOutcome]  # of the valid reviews, in message order
    invalid_reasons: list[str]  # of the messages dead-lettered now (refused regions included)


async def ingest_review_batch(
    messages: Sequence[RawMessage],
    store: CustomerStore,
    reviews: ReviewStore,
    publish_dead_letters: PublishDeadLetters,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    limits: InputLimits = DEFAULT_LIMITS,
) -> ReviewBatchResult:
    """Validate reviews, fold the valid ones into ``reviews``, dead-letter the rest.

    The fold comes first because it decides which reviews a region over the limit refuses; those
    are dead-lettered with the invalid ones in one step (a redelivered refusal is refused again).
    As :func:`ingest_batch`: returns once the dead letters are in Kafka and the counters in
    Redis, then records the batch as consumed.
    """
    received = now()
    now_ms = _epoch_ms(received)
    valid, rejected = _decode_all(messages, lambda raw: decode_review(raw, limits, now_ms))
    # before the first write: the Redis store checks that Redis kept this worker's writes (a write
    # after a loss would move offset fences past the lost reviews); see RedisStore._same_redis_or_fail
    await store.record_consumed({})
    epochs = {topic: await store.fence_epoch(topic) for topic in {m.topic for m, _ in valid}}
    deliveries = [ReviewDelivery(review, m.topic, m.partition, m.offset) for m, review in valid]
    outcomes = await reviews.apply_reviews(deliveries, epochs)
    refused = [
        (m, region_refused_reason(review.region, reviews.max_regions))
        for (m, review), outcome in zip(valid, outcomes, strict=True)
        if outcome is ReviewOutcome.REGION_REFUSED
    ]
    reasons = await dead_letter_rejects(
        [*rejected, *refused], store, publish_dead_letters, received, limits, count_invalid=False
    )
    await store.record_consumed(highest_per_key(((m.topic, m.partition), m.offset + 1) for m in messages))
    return ReviewBatchResult(outcomes, reasons)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _decode_all(
    messages: Sequence[RawMessage], decode: Callable[[bytes], Event]
) -> tuple[list[tuple[RawMessage, Event]], list[tuple[RawMessage, str]]]:
    """``(valid: (message, event), rejected: (message, reason))``, each in message order."""
    valid: list[tuple[RawMessage, Event]] = []
    rejected: list[tuple[RawMessage, str]] = []
    for m in messages:
        try:
            if not m.value:
                raise InvalidEvent("payload: empty message value")
            valid.append((m, decode(m.value)))
        except InvalidEvent as exc:
            rejected.append((m, exc.reason))
        except Exception as exc:  # a decoder bug must not crash-loop the partition: dead-letter, loudly
            log.exception("decoding %s[%d]@%d raised; dead-lettering it", m.topic, m.partition, m.offset)
            rejected.append((m, f"payload: could not be decoded ({type(exc).__name__})"))
    return valid, rejected


async def dead_letter_rejects(
    rejected: Sequence[tuple[RawMessage, str]],
    store: CustomerStore,
    publish_dead_letters: PublishDeadLetters,
    failed_at: datetime,
    limits: InputLimits,
    *,
    count_invalid: bool = True,
) -> list[str]:
    """Publish the rejects not dead-lettered before (per-partition fence); return their reasons.

    Used for every input topic: purchases, campaign events and clock ticks.

    ``count_invalid``: count them in the store's ``invalid`` purchase total (campaign events
    are counted by their own metric instead).
    """
    if not rejected:
        return []
    fences = await store.dead_letter_fences({(m.topic, m.partition) for m, _ in rejected})
    fresh = [(m, reason) for m, reason in rejected if m.offset > fences[(m.topic, m.partition)]]
    if not fresh:
        return []
    await publish_dead_letters(
        [
            (
                dead_letter_key(m.key),
                dead_letter(
                    m.value,
                    m.key,
                    reason,
                    m.topic,
                    m.partition,
                    m.offset,
                    failed_at,
                    limits.dlq_payload_bytes,
                ),
            )
            for m, reason in fresh
        ]
    )
    last = highest_per_key(((m.topic, m.partition), m.offset) for m, _ in fresh)
    await store.record_dead_letters(last, len(fresh) if count_invalid else 0)
    return [reason for _, reason in fresh]

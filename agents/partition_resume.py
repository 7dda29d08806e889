"""Where a worker's newly assigned partitions start: the offset Redis records as consumed.

Faust's side of ``agents.resume`` (which computes the offsets, pure apart from the store): on
every completed rebalance the worker seeks each assigned partition of its fenced topics there,
and a rebalance that replaces the assignment meanwhile is left to resume it again; Faust's own
seeks back to a committed offset of 0 are completed (:func:`reread_from_offset_zero`). Apart from
``agents.worker`` because it is the one place that talks to Faust's and aiokafka's consumer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import faust
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    IllegalStateError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)

from agents import metrics
from agents.resume import resume_offsets
from state.customer.store import CustomerStore

__all__ = ["ASSIGNMENT_MOVED", "reread_from_offset_zero", "resume_from_store", "resume_unless_reassigned"]

log = logging.getLogger(__name__)

# What aiokafka raises when the assignment being resumed is already being replaced: a partition
# revoked between reading the assignment and seeking it, a commit refused by a rebalance.
ASSIGNMENT_MOVED: tuple[type[Exception], ...] = (
    IllegalStateError,
    CommitFailedError,
    RebalanceInProgressError,
    IllegalGenerationError,
    UnknownMemberIdError,
)


async def resume_unless_reassigned(
    app: faust.App, store: CustomerStore, fenced_topics: Sequence[str]
) -> None:
    """:func:`resume_from_store`, left to the next rebalance if the assignment moves on meanwhile.

    A second worker joining while the first resumes revokes partitions under it. That is not a
    failure: the rebalance that revoked them ends with ``on_rebalance_complete`` again, which
    resumes the new assignment from Redis before any of it is read. Any other error still exits.
    """
    try:
        await resume_from_store(app, store, fenced_topics)
    except ASSIGNMENT_MOVED as exc:
        log.warning(
            "the assignment changed while resuming it (%s); the next rebalance resumes the new one", exc
        )


async def resume_from_store(app: faust.App, store: CustomerStore, fenced_topics: Sequence[str]) -> None:
    """Point every assigned partition of ``fenced_topics`` at the offset Redis recorded as consumed.

    Faust sends ``on_rebalance_complete`` (faust 0.15.3, ``Recovery._resume_streams``) while the
    new assignment is still paused, then seeks every partition to Kafka's committed offset
    (``Consumer.perform_seek``) and only then lets the agents read. So this commits Redis's
    offsets to Kafka first, which that seek then uses, and also seeks itself: aiokafka's
    seek-to-committed skips a committed offset of 0. Faust's seek-back after records it drops
    while the flow is stopped has the same gap; :func:`reread_from_offset_zero` closes it there,
    and this seek stays so the position is right before Faust's own seek runs at all.
    """
    consumer: Any = app.consumer  # ThreadDelegateConsumer; _commit takes explicit offsets
    assigned = consumer.assignment()
    for topic in fenced_topics:
        tps = sorted((tp for tp in assigned if tp.topic == topic), key=lambda tp: tp.partition)
        if not tps:
            continue
        log_ends = {tp.partition: int(end) for tp, end in (await consumer.highwaters(*tps)).items()}
        offsets, reset = await resume_offsets(store, topic, log_ends, int(time.time() * 1000))
        if reset is not None:
            log.error(
                "%s was recreated or truncated: consumed offsets recorded in Redis are beyond the log end "
                "(partition: (consumed, log end) %s); fence epoch %d starts (old offset fences ignored, "
                "event_id dedupe still applies), resuming every assigned partition at offset 0; "
                "recorded in Redis (seg:topic-resets)",
                topic,
                reset.partitions,
                reset.epoch,
            )
        targets = {tp: offsets[tp.partition] for tp in tps}
        positions = {tp: await consumer.position(tp) for tp in tps}
        rewound = sum(max(0, (positions[tp] or 0) - target) for tp, target in targets.items())
        if rewound and reset is None:
            log.warning(
                "%s: Kafka was ahead of Redis by %d messages (the consumer's position past what Redis "
                "records as folded: messages fetched before a rebalance, or writes Redis lost in a "
                "restart); resuming from Redis's consumed offsets %s",
                topic,
                rewound,
                {tp.partition: o for tp, o in targets.items()},
            )
        log.info("%s: resuming partitions at %s", topic, {tp.partition: o for tp, o in targets.items()})
        await consumer._commit(targets)
        await consumer.seek_wait(targets)
        metrics.observe_resume(topic, await store.fence_epoch(topic), reset is not None, rewound)


def reread_from_offset_zero(app: faust.App) -> bool:
    """Make Faust's seek back to the committed offsets also seek the partitions committed at 0.

    Faust drops records it fetched while its flow is stopped (a rebalance under way) and then
    seeks every partition back to its committed offset (``Consumer.perform_seek``) to read them
    again. aiokafka's ``seek_to_committed`` seeks only offsets above 0, so a partition committed
    at 0 stays past what was dropped: its first message is never read. Seen on the clock
    partition, whose one tick is at offset 0 (``test_killing_the_evaluating_worker_mid_tick``,
    stuck in 7 of 9 runs two at a time, 2026-11-30): the survivor's fetch, sent before the
    rebalance, came back after :func:`resume_from_store` had sought the partition to 0, while
    the flow was still stopped.

    This wraps the started consumer's ``seek_to_committed`` (once; ``True`` when wrapped) so that
    it then seeks the partitions committed at 0 to 0. Every fenced topic's partition is committed
    at Redis's consumed offset on each rebalance, so a partition read from its start is committed
    at 0, never left uncommitted.
    """
    consumer: Any = app.consumer
    if getattr(consumer, "_rereads_from_zero", False):
        return False
    seek_to_committed = consumer.seek_to_committed

    async def seek_to_committed_or_zero() -> Mapping[Any, int | None]:
        committed: Mapping[Any, int | None] = await seek_to_committed()
        at_start = {tp: 0 for tp, offset in committed.items() if offset == 0}
        if at_start:
            await consumer.seek_wait(at_start)
        return committed

    consumer.seek_to_committed = seek_to_committed_or_zero
    consumer._rereads_from_zero = True
    return True

"""Where a worker resumes a partition it is assigned: Redis's consumed offset, not Kafka's.

Redis's consumed offset can be behind Kafka's committed one in two ways: purchases are
acknowledged to Kafka once handed to the worker's ingest process, before they are folded
(``agents.ingest_process``), and Redis can restart and lose its last writes (AOF everysec, or
an RDB snapshot). Resuming from Kafka's committed offset would then skip those events for good.
Resuming from Redis's offset re-reads them, and the per-customer offset fences make re-reading
what Redis still has harmless.

A consumed offset beyond the partition's log end means the topic was recreated or truncated:
its offsets started again. The topic's fence epoch then moves on (the old fences no longer
apply) and every assigned partition of the topic resumes from offset 0 of the new incarnation.

Pure apart from the store: the worker feeds it the log end offsets and does the seeking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from state.customer.store import CustomerStore, TopicReset

__all__ = ["ResumePlan", "plan_resume", "resume_offsets"]

_MAX_RACES = 5


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """``offsets``: partition -> next offset to read; ``beyond_end``: partition -> (consumed, log end)."""

    offsets: dict[int, int]
    beyond_end: dict[int, tuple[int, int]]


def plan_resume(consumed: Mapping[int, int], log_ends: Mapping[int, int]) -> ResumePlan:
    """Resume each partition of ``log_ends`` at its consumed offset (0 if none), or all at 0 if any is beyond its end.

    >>> plan_resume({0: 40, 1: 7}, {0: 50, 1: 7, 2: 3})
    ResumePlan(offsets={0: 40, 1: 7, 2: 0}, beyond_end={})
    >>> plan_resume({0: 40, 1: 7}, {0: 2, 1: 9})
    ResumePlan(offsets={0: 0, 1: 0}, beyond_end={0: (40, 2)})
    """
    beyond = {p: (consumed[p], end) for p, end in sorted(log_ends.items()) if consumed.get(p, 0) > end}
    if beyond:
        return ResumePlan({p: 0 for p in sorted(log_ends)}, beyond)
    return ResumePlan({p: consumed.get(p, 0) for p in sorted(log_ends)}, {})


async def resume_offsets(
    store: CustomerStore, topic: str, log_ends: Mapping[int, int], now_ms: int
) -> tuple[dict[int, int], TopicReset | None]:
    """The offsets to resume ``topic``'s partitions at, and the reset this call made, if any.

    Several workers may find the same recreated topic at once: only one moves the epoch on
    (compare-and-set); the others read the store again and resume at 0, where the reset left it.
    """
    for _ in range(_MAX_RACES):
        epoch = await store.fence_epoch(topic)
        plan = plan_resume(await store.consumed(topic), log_ends)
        if not plan.beyond_end:
            return plan.offsets, None
        reset = TopicReset(topic, epoch + 1, now_ms, plan.beyond_end)
        if await store.reset_topic(reset):
            return plan.offsets, reset
    raise RuntimeError(
        f"{topic}: the fence epoch kept moving while this worker tried to reset it ({_MAX_RACES} tries); "
        "another worker keeps resetting it: check the topic-reset records (seg:topic-resets)"
    )

"""Where a worker resumes its partitions: Redis's consumed offsets, a new fence epoch for a recreated topic."""

from __future__ import annotations

from agents.resume import plan_resume, resume_offsets
from state.customer.memory_store import MemoryStore
from state.customer.store import TopicReset


def test_resume_at_consumed_offsets_and_zero_where_none() -> None:
    plan = plan_resume({0: 40, 1: 7, 5: 3}, {0: 50, 1: 7, 2: 3})
    assert (plan.offsets, plan.beyond_end) == ({0: 40, 1: 7, 2: 0}, {})


async def test_recreated_topic_moves_the_epoch_once_and_resumes_at_zero() -> None:
    store = MemoryStore()
    await store.record_consumed({("purchases", 0): 40, ("purchases", 1): 7, ("other", 0): 9})
    offsets, reset = await resume_offsets(store, "purchases", {0: 3, 1: 20}, now_ms=1000)
    assert offsets == {0: 0, 1: 0}
    assert reset == TopicReset("purchases", 1, 1000, {0: (40, 3)})
    assert await store.fence_epoch("purchases") == 1 and await store.consumed("other") == {0: 9}
    # a second worker assigned other partitions of the same topic afterwards: nothing to reset
    again, second = await resume_offsets(store, "purchases", {2: 5}, now_ms=2000)
    assert (again, second) == ({2: 0}, None)
    assert await store.topic_resets() == [reset]


async def test_a_worker_losing_the_reset_race_reads_again() -> None:
    store = MemoryStore()
    await store.record_consumed({("purchases", 0): 40})

    class RacedStore(MemoryStore):
        async def reset_topic(self, reset: TopicReset) -> bool:
            await store.reset_topic(TopicReset(reset.topic, reset.epoch, 1, {0: (40, 3)}))  # the other worker
            self.epochs, self.next_offsets = store.epochs, store.next_offsets
            return False

    raced = RacedStore(next_offsets=dict(store.next_offsets))
    offsets, reset = await resume_offsets(raced, "purchases", {0: 3}, now_ms=5)
    assert (offsets, reset) == ({0: 0}, None)

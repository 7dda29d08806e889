"""The store's bookkeeping of Kafka offsets: consumed offsets, dead-letter fences, topic resets.

Part of :class:`state.adapters.redis_store.RedisStore` (:class:`StoreOffsets`): where each
partition resumes, the last dead-lettered offset per partition, and a topic's fence epoch moved
with the forgetting of its offsets in one script call (``_RESET_TOPIC`` in
:mod:`state.adapters.redis_store_base`; see ``state.customer.store.TopicReset``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

from state.adapters.redis_store_base import StoreBase
from state.customer.store import Partition, TopicReset

__all__ = ["StoreOffsets"]


class StoreOffsets(StoreBase):
    """Consumed offsets, dead-letter fences and topic resets (fence epochs)."""

    async def dead_letter_fences(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        members = [f"{t}:{p}" for t, p in wanted]
        scores = await self._retry(
            "read dead-letter fences", lambda: self._redis.zmscore(self._letter_fence_key, members)
        )
        return {tp: int(score) if score is not None else -1 for tp, score in zip(wanted, scores, strict=True)}

    async def record_dead_letters(self, last_offsets: Mapping[Partition, int], count: int) -> None:
        if not last_offsets and not count:
            return

        async def record() -> None:  # fences: ZADD GT, idempotent; the count may repeat on a retry
            pipe = self._redis.pipeline(transaction=False)
            if last_offsets:
                fences = {f"{t}:{p}": offset for (t, p), offset in last_offsets.items()}
                pipe.zadd(self._letter_fence_key, fences, gt=True)
            if count:
                pipe.hincrby(self._stats_key, "invalid", count)
            await pipe.execute()

        await self._retry("record dead letters", record)

    async def record_consumed(self, next_offsets: Mapping[Partition, int]) -> None:
        await self._watch()
        if next_offsets:
            offsets = {f"{t}:{p}": offset for (t, p), offset in next_offsets.items()}
            await self._retry(  # ZADD GT: idempotent
                "record consumed offsets", lambda: self._redis.zadd(self._consumed_key, offsets, gt=True)
            )
            for member, offset in offsets.items():
                self._recorded[member] = max(offset, self._recorded.get(member, offset))

    async def consumed(self, topic: str) -> dict[int, int]:
        raw = cast(
            list[tuple[str, float]],
            await self._retry(
                "read consumed offsets",
                lambda: self._redis.zrange(self._consumed_key, 0, -1, withscores=True),
            ),
        )
        found = ((member.rpartition(":"), int(score)) for member, score in raw)
        return {int(p): offset for (t, _, p), offset in found if t == topic}

    async def fence_epoch(self, topic: str) -> int:
        raw = await self._retry("read a fence epoch", lambda: self._redis.hget(self._epoch_key, topic))
        return int(raw) if raw is not None else 0

    async def reset_topic(self, reset: TopicReset) -> bool:
        keys = [self._epoch_key, self._consumed_key, self._letter_fence_key, self._resets_key]
        args: list[str | int] = [reset.topic, reset.epoch, reset.to_json()]
        # A retry after Redis applied it finds the epoch already moved and returns False: the
        # caller then re-reads the epoch and offsets, which is what it does when another worker won.
        moved = await self._retry("reset a topic's fences", lambda: self._reset(keys=keys, args=args))
        return bool(int(moved))

    async def topic_resets(self) -> list[TopicReset]:
        raw = await self._retry("read topic resets", lambda: self._redis.lrange(self._resets_key, 0, -1))
        return [TopicReset.from_json(r) for r in raw]

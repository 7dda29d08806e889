"""Partition evaluators' rows in Redis: one hash tag per ``purchases`` partition.

Stage two of partitioned evaluation (``docs/design-notes.md``, "Partitioned evaluation"): each
partition evaluator (``state.evaluator.partition_evaluator``) saves the rows it changed under its
partition's hash tag, so a save is one ``MULTI`` in one slot, a Redis Cluster spreads the
partitions over its masters, and no key gathers every customer. Keys:

- ``<p>eval:{p<n>}:rows`` hash: customer_id -> partition ``n``'s row, packed as the view's rows
  are (:mod:`state.adapters.view_rows`) with the instant it was created (``seen_ms``), from
  which the model owner rebuilds its replica in the one evaluator's row order
- ``<p>eval:{p<n>}:meta`` hash: ``clock_ms`` of partition ``n``'s last save, ``saves`` how many,
  ``epoch`` the partitioned evaluation's epoch it was saved in, if any: a save of an older epoch is
  refused (``Superseded``), so a host or owner that was replaced cannot write over its successor
- ``<p>eval:{p<n>}:batch:<made_at_ms>`` string: partition ``n``'s part of an open churn batch
  (:mod:`state.evaluator.batch_parts`), with ``<p>eval:{p<n>}:batches`` (zset: the made_at_ms of
  the parts it holds), written together before the owner's save names the batch, deleted after
  the owner's save that closed it; parts no owner's batch names (a crash between the two) are
  dropped at the next load

The model owner's models, clock, cut-points, open churn batches and versions log are one
evaluator's save without rows (:class:`state.adapters.redis_profiles.RedisProfileStore`, which
reads the rows from here when the owner's meta names a partition count). The worker saves here
when it evaluates split (``SEGSTREAM_EVALUATION_SPLIT``, ``agents.split_saves``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from redis.exceptions import WatchError

from state.adapters.redis_adapter import RedisAdapter
from state.adapters.view_rows import decode_row, encode_row
from state.customer.profile_store import Superseded

__all__ = ["RedisPartitionRows", "partition_key"]

_CHUNK = 5000


def partition_key(prefix: str, partition: int, name: str) -> str:
    """Partition ``partition``'s key ``name`` (``rows``, ``meta``) under namespace ``prefix``."""
    return f"{prefix}eval:{{p{partition}}}:{name}"


class RedisPartitionRows(RedisAdapter):
    """Each partition evaluator's rows, saved and loaded by partition."""

    decode_responses = False

    def _key(self, partition: int, name: str) -> str:
        return partition_key(self._prefix, partition, name)

    async def save(
        self, partition: int, clock_ms: int, records: Sequence[Mapping[str, object]], epoch: int | None = None
    ) -> int:
        """Write ``records`` (``PartitionEvaluator.take_dirty``) over partition ``partition``'s rows, with
        the clock, in one ``MULTI``; returns how many saves the partition has had. With ``epoch``,
        refused with :class:`Superseded` (nothing written) if the partition was saved in a newer
        one, or in the same one up to a later clock (a host the group dropped that still runs,
        behind the host that replaced it in the same epoch).

        Safe to run again (the retry after an error that reached us once the write was applied):
        the same rows are written again and the count moves once more.
        """
        return await self._retry(
            "save a partition's rows", lambda: self._save(partition, clock_ms, records, epoch)
        )

    async def _save(
        self, partition: int, clock_ms: int, records: Sequence[Mapping[str, object]], epoch: int | None
    ) -> int:
        while True:  # the meta moved between the epoch's read and the MULTI (another save): read it again
            with contextlib.suppress(WatchError):
                return await self._save_once(partition, clock_ms, records, epoch)

    async def _save_once(
        self, partition: int, clock_ms: int, records: Sequence[Mapping[str, object]], epoch: int | None
    ) -> int:
        rows, meta = self._key(partition, "rows"), self._key(partition, "meta")
        async with self._redis.pipeline(transaction=True) as pipe:  # MULTI ... EXEC, one slot
            if epoch is not None:
                await pipe.watch(meta)
                held, held_clock = await pipe.hmget(meta, ["epoch", "clock_ms"])
                if held is not None and int(held) > epoch:
                    raise Superseded(f"partition {partition} was saved in epoch {int(held)}, after {epoch}")
                if (
                    held is not None
                    and int(held) == epoch
                    and held_clock is not None
                    and int(held_clock) > clock_ms
                ):
                    raise Superseded(  # a second host of the partition in this epoch, behind the first
                        f"partition {partition} was saved up to {int(held_clock)} in epoch {epoch}, "
                        f"past {clock_ms}"
                    )
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.hset(meta, "epoch", epoch)
            for start in range(0, len(records), _CHUNK):
                chunk = records[start : start + _CHUNK]
                pipe.hset(rows, mapping={str(r["customer_id"]): encode_row(dict(r)) for r in chunk})
            pipe.hset(meta, "clock_ms", clock_ms)
            pipe.hincrby(meta, "saves", 1)
            replies = await pipe.execute()  # WatchError if the meta moved since it was watched
        return int(replies[-1])

    async def save_batch_parts(self, made_at_ms: int, parts: Sequence[bytes]) -> None:
        """Each partition's part of the batch made at ``made_at_ms`` (``parts[n]`` partition ``n``'s)."""

        async def write() -> None:  # SET and ZADD of the same values: safe to repeat
            pipe = self._redis.pipeline(transaction=False)
            for partition, data in enumerate(parts):
                pipe.set(self._key(partition, f"batch:{made_at_ms}"), data)
                pipe.zadd(self._key(partition, "batches"), {str(made_at_ms): made_at_ms})
            await pipe.execute()

        await self._retry("save a churn batch's parts", write)

    async def load_batch_parts(self, made_at_ms: int, partitions: int) -> list[bytes | None]:
        """Every partition's part of the batch made at ``made_at_ms`` (None where one is missing)."""

        async def read() -> list[bytes | None]:  # read-only
            pipe = self._redis.pipeline(transaction=False)
            for partition in range(partitions):
                pipe.get(self._key(partition, f"batch:{made_at_ms}"))
            return list(await pipe.execute())

        return await self._retry("load a churn batch's parts", read)

    async def drop_batch_parts(self, partitions: int, made_at: Iterable[int]) -> None:
        """Delete every partition's part of the batches made at ``made_at`` (closed ones)."""
        gone = sorted(set(made_at))

        async def drop() -> None:  # DEL and ZREM: safe to repeat
            pipe = self._redis.pipeline(transaction=False)
            for partition in range(partitions):
                for m in gone:
                    pipe.delete(self._key(partition, f"batch:{m}"))
                if gone:
                    pipe.zrem(self._key(partition, "batches"), *map(str, gone))
            await pipe.execute()

        await self._retry("drop churn batch parts", drop)

    async def keep_batch_parts(self, partitions: int, open_made_at: Iterable[int]) -> list[int]:
        """Delete the parts of every batch not in ``open_made_at`` (parts a crash left that no
        owner's save names); the made_at_ms of those batches."""

        async def read() -> list[list[bytes]]:  # read-only
            pipe = self._redis.pipeline(transaction=False)
            for partition in range(partitions):
                pipe.zrange(self._key(partition, "batches"), 0, -1)
            return cast(list[list[bytes]], await pipe.execute())

        held = {int(m) for made in await self._retry("read churn batch parts", read) for m in made}
        stale = sorted(held - set(open_made_at))
        if stale:
            await self.drop_batch_parts(partitions, stale)
        return stale

    async def load(self, partition: int) -> tuple[int | None, list[dict[str, object]]]:
        """Partition ``partition``'s clock at its last save (None: never saved) and its rows."""
        return await self._retry("load a partition's rows", lambda: self._load(partition))  # read-only

    async def _load(self, partition: int) -> tuple[int | None, list[dict[str, object]]]:
        clock = await self._redis.hget(self._key(partition, "meta"), "clock_ms")
        if clock is None:
            return None, []
        rows = [
            decode_row(field.decode(), value)
            async for field, value in self._redis.hscan_iter(self._key(partition, "rows"), count=_CHUNK)
        ]
        return int(clock), rows

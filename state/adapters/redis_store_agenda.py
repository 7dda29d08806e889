"""What the store keeps for the evaluator: the agenda, receipt times, and the customers' event logs.

Part of :class:`state.adapters.redis_store.RedisStore` (:class:`StoreAgenda`): the events not
evaluated yet (``due``, ``done``; one sorted set per evaluation partition,
:mod:`state.adapters.agenda_partitions`), when a worker first received each (latency metrics), the
logs of the customers due (one packed reply per call, :mod:`state.adapters.log_read`) and their
compaction once the evaluator's clock has passed them (``log_compact.lua``).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any, cast

from state.adapters.agenda_partitions import by_partition
from state.adapters.log_read import read_logs
from state.adapters.redis_store_base import SCAN_COUNT, StoreBase
from state.customer.event_log import CustomerLog
from state.customer.rfm import DAY_MS
from state.customer.store import AgendaEntry

__all__ = ["StoreAgenda"]

# Customers per log compaction call on a single node (each one's script work is its log's head).
_COMPACT_PER_CALL = 100
# Customers per log read call on a single node (state.adapters.log_read).
_LOGS_PER_CALL = 500
AGENDA_PAGE = 100_000
"""Agenda entries per read (:meth:`StoreAgenda.due`), a reply read well within the socket timeout."""


class StoreAgenda(StoreBase):
    """The agenda and receipt times of events not evaluated yet; customers' event logs."""

    async def due(
        self, up_to_ms: int, after_ms: int | None = None, *, partition: int | None = None
    ) -> list[AgendaEntry]:
        """The agenda's entries in (``after_ms``, ``up_to_ms``], every partition's (or only
        ``partition``'s), in score then member order (the order of one sorted set holding them all).

        Each partition is read :data:`AGENDA_PAGE` entries at a time: a catch-up tick can find
        millions due (3.96M at 1M generated customers), and as one reply it outlasted redis-py's 5 s
        socket timeout on every retry."""
        partitions = await self.eval_partitions()
        if partition is not None:
            if not 0 <= partition < partitions:
                raise ValueError(f"no evaluation partition {partition} of {partitions}")
            return await self._due_in(partition, up_to_ms, after_ms)
        pages = [await self._due_in(p, up_to_ms, after_ms) for p in range(partitions)]
        return list(heapq.merge(*pages, key=lambda entry: (entry[1], entry[0].encode())))

    async def _due_in(self, partition: int, up_to_ms: int, after_ms: int | None) -> list[AgendaEntry]:
        """One partition's entries in (``after_ms``, ``up_to_ms``]. Each page starts at the last score
        read, skipping the entries of that score already read (many events share a score: a day's
        purchases at midnight), so no page is re-read from the start. An entry added meanwhile is
        read now or at the next tick (as if added after the read); one that moves the pages under
        the reader may be read twice, and is returned once."""
        key = self._agenda_key("agenda", partition)
        entries: dict[str, int] = {}  # member -> score, in the agenda's order
        low: float | str = "-inf" if after_ms is None else f"({after_ms}"  # "(": exclusive
        skip = 0
        while True:

            async def page(low: float | str = low, skip: int = skip) -> list[tuple[str, float]]:  # read-only
                return cast(
                    list[tuple[str, float]],
                    await self._redis.zrangebyscore(
                        key, low, up_to_ms, start=skip, num=AGENDA_PAGE, withscores=True
                    ),
                )

            raw = await self._retry("read the agenda", page)
            for member, score in raw:
                entries.setdefault(member, int(score))
            if len(raw) < AGENDA_PAGE:
                return list(entries.items())
            last = raw[-1][1]
            at_last = sum(1 for _, score in raw if score == last)
            skip = (skip if last == low else 0) + at_last
            low = last

    async def earliest_due(self, up_to_ms: int) -> int | None:
        keys = [self._agenda_key("agenda", p) for p in range(await self.eval_partitions())]

        async def heads() -> list[list[tuple[str, float]]]:  # read-only
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.zrangebyscore(key, "-inf", up_to_ms, start=0, num=1, withscores=True)
            return cast(list[list[tuple[str, float]]], await pipe.execute())

        found = [int(head[0][1]) for head in await self._retry("read the agenda's head", heads) if head]
        return min(found, default=None)

    async def done(self, entries: Sequence[AgendaEntry]) -> None:
        partitions = await self.eval_partitions()
        for start in range(0, len(entries), SCAN_COUNT):
            grouped = by_partition(dict(entries[start : start + SCAN_COUNT]), partitions)

            async def remove(grouped: dict[int, dict[str, int]] = grouped) -> None:  # ZREM: idempotent
                pipe = self._redis.pipeline(transaction=False)
                for partition, members in grouped.items():
                    pipe.zrem(self._agenda_key("agenda", partition), *members)
                    pipe.zrem(self._agenda_key("received", partition), *members)
                await pipe.execute()

            await self._retry("remove agenda entries", remove)

    async def received(self, members: Sequence[str]) -> dict[str, int]:
        partitions = await self.eval_partitions()
        found: dict[str, int] = {}
        for start in range(0, len(members), SCAN_COUNT):
            grouped = by_partition(dict.fromkeys(members[start : start + SCAN_COUNT], 0), partitions)

            async def read(grouped: dict[int, dict[str, int]] = grouped) -> dict[str, int]:
                pipe = self._redis.pipeline(transaction=False)
                for partition, mine in grouped.items():
                    pipe.zmscore(self._agenda_key("received", partition), list(mine))
                replies = await pipe.execute()
                return {
                    m: int(s)
                    for mine, scores in zip(grouped.values(), replies, strict=True)
                    for m, s in zip(mine, scores, strict=True)
                    if s is not None
                }

            found.update(await self._retry("read receipt times", read))
        return found

    async def logs(self, customer_ids: Iterable[str]) -> dict[str, CustomerLog]:
        ids = list(customer_ids)
        logs: dict[str, CustomerLog] = {}
        per_call = self._per_call(_LOGS_PER_CALL)
        for start in range(0, len(ids), SCAN_COUNT):
            chunk = ids[start : start + SCAN_COUNT]

            async def read(chunk: list[str] = chunk) -> dict[str, CustomerLog]:  # read-only
                return await read_logs(self._redis, self._state_key, chunk, per_call=per_call)

            logs.update(await self._retry("read event logs", read))
        return logs

    async def compact(self, customer_ids: Iterable[str], before_ms: int) -> int:
        if before_ms % DAY_MS:
            raise ValueError(f"logs are compacted at a UTC midnight, not at {before_ms} ms")
        ids = list(customer_ids)
        folded = 0
        per_call = self._per_call(_COMPACT_PER_CALL)
        for start in range(0, len(ids), SCAN_COUNT):
            chunk = ids[start : start + SCAN_COUNT]

            async def run(chunk: list[str] = chunk) -> list[Any]:  # idempotent: a base never moves back
                pipe = self._redis.pipeline(transaction=False)
                for at in range(0, len(chunk), per_call):
                    keys = [
                        k
                        for c in chunk[at : at + per_call]
                        for k in (self._state_key(c), f"{self._state_key(c)}:log")
                    ]
                    await self._in_pipeline(pipe, self._compact, keys, [before_ms])
                return await pipe.execute()

            folded += sum(
                int(n) for n in await self._retry("compact event logs", partial(self._scripts_ready, run))
            )
        return folded

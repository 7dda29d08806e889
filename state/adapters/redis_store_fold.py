"""The store's write path: a batch of deliveries folded by one Lua call per hash slot (``rfm_fold.lua``).

Part of :class:`state.adapters.redis_store.RedisStore` (:class:`StoreFold`): each event is applied
atomically (offset fence, event_id dedupe, state, days, log, tallies), the partitions' watermarks,
the agenda and the receipt times (on their customers' evaluation partitions) follow in the same
pipeline; the call's arguments and the batch cuts are :mod:`state.adapters.fold_call`'s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from state.adapters.dedupe_window import Generation
from state.adapters.fold_call import by_hash_slot, by_tally_volume, fold_call
from state.adapters.redis_store_base import StoreBase
from state.customer.partitions import customer_partition
from state.customer.store import Delivery, Outcome, Stats, agenda_member, highest_per_key

__all__ = ["StoreFold"]

# Tallies per fold script call, and per pipeline of calls: ~5 us each in Lua, so a call stays near
# 0.1 s, far below Redis's 5-second busy-script threshold, and a pipeline near 1 MB, whatever a
# batch's baskets hold (events are atomic one by one, so cutting a batch changes nothing else).
_TALLIES_PER_CALL = 20_000


class StoreFold(StoreBase):
    """:meth:`apply_batch`, the store's one write of customers' events."""

    async def apply_batch(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        await self._watch()
        if not deliveries:
            return []
        # Retrying the fold is safe even if Redis applied it before the error reached us: the
        # offset fences turn every event already applied into REDELIVERED (event_id dedupe
        # catches the rest), the watermark and agenda writes are idempotent. Only the running
        # totals can then count such an event as redelivered as well as applied. On a single node
        # the fold counts them in the same atomic call; a cluster's totals hash is in another slot,
        # so there they follow in a call of their own (a crash between the two undercounts).
        outcomes = await self._retry("fold a batch", lambda: self._fold_batch(deliveries))
        if self._cluster:
            totals = Stats()
            totals.count(outcomes)
            await self._retry("add to the running totals", lambda: self._add_stats(totals))
        return outcomes

    async def _fold_batch(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        return await self._scripts_ready(lambda: self._fold_batch_once(deliveries))

    async def _fold_batch_once(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        epochs = {str(t): int(e) for t, e in (await self._redis.hgetall(self._epoch_key)).items()}
        partitions = await self.eval_partitions()
        groups = (
            by_hash_slot(deliveries, self._state_key) if self._cluster else [list(range(len(deliveries)))]
        )
        groups = [part for group in groups for part in by_tally_volume(group, deliveries, _TALLIES_PER_CALL)]
        outcomes: list[Outcome] = [Outcome.REDELIVERED] * len(deliveries)
        generation = self._dedupe.now()  # one per batch: every call agrees

        def record(sent: list[list[int]], results: Sequence[Any]) -> None:
            for group, codes in zip(sent, results, strict=False):
                for i, code in zip(group, codes, strict=True):
                    outcomes[i] = Outcome(int(code))

        # The script calls go in pipelines of at most _TALLIES_PER_CALL tallies (usually one for
        # the whole batch): a batch heavy with tallies is never one huge write to the socket.
        pipe, size = self._redis.pipeline(transaction=False), 0
        sent: list[list[int]] = []
        for group in groups:
            tallies = sum(len(deliveries[i].tallies) for i in group)
            if sent and size + tallies > _TALLIES_PER_CALL:
                record(sent, await pipe.execute())
                pipe, sent, size = self._redis.pipeline(transaction=False), [], 0
            keys, args = self._call_arguments([deliveries[i] for i in group], epochs, generation)
            await self._in_pipeline(pipe, self._fold, keys, args)
            sent.append(group)
            size += tallies
        watermarks = highest_per_key((d.partition, d.event.occurred_at_ms) for d in deliveries)
        pipe.zadd(self._watermark_key, {str(p): ms for p, ms in watermarks.items()}, gt=True)
        agenda: dict[int, dict[str, int]] = defaultdict(dict)  # partition -> member -> score
        receipts: dict[int, dict[str, int]] = defaultdict(dict)
        partition_of: dict[str, int] = {}
        for d in deliveries:
            customer = d.event.customer_id
            if (partition := partition_of.get(customer)) is None:
                partition = partition_of[customer] = customer_partition(customer, partitions)
            member = agenda_member(customer, d.event.event_id)
            agenda[partition][member] = d.event.occurred_at_ms + 1
            if d.received_ms is not None:
                receipts[partition].setdefault(member, d.received_ms)  # a resend keeps the first receipt
        for partition, entries in agenda.items():  # on the customers' evaluation partitions
            pipe.zadd(self._agenda_key("agenda", partition), entries)
            if partition in receipts:
                pipe.zadd(self._agenda_key("received", partition), receipts[partition], nx=True)
        record(sent, await pipe.execute())
        return outcomes

    def _call_arguments(
        self, deliveries: Sequence[Delivery], epochs: Mapping[str, int], generation: Generation
    ) -> tuple[list[str], list[str | int]]:
        stats_key = None if self._cluster else self._stats_key
        return fold_call(deliveries, epochs, generation, self._state_key, self._shared_tally_key, stats_key)

    async def _add_stats(self, totals: Stats) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for f in fields(Stats):
            value = getattr(totals, f.name)
            if value:
                pipe.hincrby(self._stats_key, f.name, value)
        await pipe.execute()

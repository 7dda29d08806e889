"""Campaign events waiting for the evaluator, cut by evaluation partition like the purchases' agenda.

Keys, per evaluation partition ``n`` (the customer's, :func:`state.customer.partitions.customer_partition`,
of the namespace's count ``<p>eval:partitions``, :mod:`state.adapters.agenda_partitions`), so no key
gathers every customer's pending events and a Redis Cluster spreads them over its masters:

- ``<p>eval:{p<n>}:campaign-events`` hash: event_id -> JSON campaign event, while it waits
- ``<p>eval:{p<n>}:campaign-agenda`` zset: event_ids not evaluated yet, by occurred_at + 1
- ``<p>eval:{p<n>}:campaign-ids:<g>`` set: event_ids added in dedupe generation ``g``
  (:mod:`state.adapters.dedupe_window`)

An event_id is known within its customer's partition: a resend with the same id and customer is
ignored within the dedupe window, as a purchase's is within its customer's.

Earlier versions kept all three in one slot (``<p>eval:{segments}:campaign-*``). The first store
that needs the partitions moves the events still waiting there onto them (each step idempotent: a
crash half-way leaves an event in both places, the next store moves the rest, and the partition's
hash says it was already added). The old id sets, and the old events hash's ids of versions that
kept every event, still stop resends: each add checks them while any of them exists (nothing
writes them any more, so the check stops for good once none is left).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Any, cast

import msgspec

from state.adapters.agenda_partitions import LEGACY_PAGE, count_key, resolve_partitions
from state.adapters.dedupe_window import DedupeWindow
from state.adapters.redis_access import RedisClient
from state.adapters.redis_partition_rows import partition_key
from state.customer.partitions import customer_partition
from streams.campaign_contract import CampaignEvent

__all__ = ["CampaignAgenda"]

Retry = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]

_CHUNK = 5000
# Each event_id once within the dedupe window: an event is new unless it waits on the agenda (its JSON
# is in the events hash) or its id is in the current or previous dedupe generation (KEYS[3], KEYS[4]:
# sets expiring at ARGV[1] and one window earlier). Atomic, so a crash cannot leave an event known
# but never evaluated.
_ADD = """
local added = 0
for i = 2, #ARGV, 3 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 0 and redis.call('SISMEMBER', KEYS[4], id) == 0
     and redis.call('SADD', KEYS[3], id) == 1 then
    redis.call('HSET', KEYS[1], id, ARGV[i + 1])
    redis.call('ZADD', KEYS[2], ARGV[i + 2], id)
    added = added + 1
  end
end
redis.call('EXPIREAT', KEYS[3], ARGV[1])
return added
"""
# Evaluated events leave the agenda and the events hash together; their ids stay in their
# generation's set until it expires.
_DONE = """
redis.call('ZREM', KEYS[2], unpack(ARGV))
redis.call('HDEL', KEYS[1], unpack(ARGV))
"""


class CampaignAgenda:
    """The campaign events' agenda of one namespace, by evaluation partition."""

    def __init__(self, client: RedisClient, prefix: str, retry: Retry, proposed_partitions: int) -> None:
        self._redis = client
        self._prefix = prefix
        self._retry = retry
        self.proposed_partitions = proposed_partitions
        """The count a new namespace gets (the worker's ``SEGSTREAM_PARTITIONS``); an existing one keeps its own."""
        self.dedupe = DedupeWindow()
        self._add = client.register_script(_ADD)
        self._done = client.register_script(_DONE)
        legacy = f"{prefix}eval:{{segments}}"
        self._legacy_events, self._legacy_agenda = f"{legacy}:campaign-events", f"{legacy}:campaign-agenda"
        self._legacy_ids = f"{legacy}:campaign-ids"
        self._partitions: int | None = None
        self._legacy_left = True  # until a check finds no key of an earlier version's left

    def _key(self, partition: int, name: str) -> str:
        return partition_key(self._prefix, partition, f"campaign-{name}")

    async def partitions(self) -> int:
        """The namespace's partition count; the first call moves an earlier version's waiting events."""
        if self._partitions is None:
            key, proposed = count_key(self._prefix), self.proposed_partitions
            count: int = await self._retry(
                "read the evaluation partitions", lambda: resolve_partitions(self._redis, key, proposed)
            )
            await self._retry(
                "move the campaign agenda onto the partitions", lambda: self._move_legacy(count)
            )
            self._partitions = count
        return self._partitions

    def _by_partition(
        self, events: Iterable[CampaignEvent], partitions: int
    ) -> dict[int, list[CampaignEvent]]:
        grouped: dict[int, list[CampaignEvent]] = defaultdict(list)
        for event in events:
            grouped[customer_partition(event.customer_id, partitions)].append(event)
        return grouped

    async def add(self, events: Sequence[CampaignEvent]) -> int:
        """Put the events not seen before on their partitions' agendas; return how many."""
        partitions = await self.partitions()
        fresh = await self._retry(
            "check earlier versions' campaign ids", lambda: self._unknown_to_legacy(events)
        )
        generation = self.dedupe.now()

        async def add_to(partition: int, mine: list[CampaignEvent]) -> int:
            args: list[str | bytes | int] = [generation.expires_at_s]
            for event in mine:
                args += [event.event_id, msgspec.json.encode(event), event.occurred_at_ms + 1]
            ids, previous = generation.keys(self._key(partition, "ids"))
            keys = [self._key(partition, "events"), self._key(partition, "agenda"), ids, previous]
            # a retry adds nothing twice: the ids are known by then (it may count fewer as added)
            return int(await self._retry("add campaign events", lambda: self._add(keys=keys, args=args)))

        added = await asyncio.gather(
            *(add_to(p, mine) for p, mine in self._by_partition(fresh, partitions).items())
        )
        return sum(added)

    async def due(self, up_to_ms: int) -> list[CampaignEvent]:
        """Every partition's events that occurred before ``up_to_ms``, by occurred_at then event_id."""
        partitions = await self.partitions()
        parts = await asyncio.gather(
            *(
                self._retry("read the campaign agenda", partial(self._due_in, p, up_to_ms))
                for p in range(partitions)
            )
        )
        return sorted((e for part in parts for e in part), key=lambda e: (e.occurred_at_ms, e.event_id))

    async def _due_in(self, partition: int, up_to_ms: int) -> list[CampaignEvent]:
        agenda, events_key = self._key(partition, "agenda"), self._key(partition, "events")
        ids = cast(list[bytes], await self._redis.zrangebyscore(agenda, "-inf", up_to_ms))
        events: list[CampaignEvent] = []
        for start in range(0, len(ids), _CHUNK):
            raw = await self._redis.hmget(events_key, ids[start : start + _CHUNK])
            events += [msgspec.json.decode(r, type=CampaignEvent) for r in raw if r is not None]
        return events

    async def done(self, events: Iterable[CampaignEvent]) -> None:
        """Remove evaluated events from their partitions' agendas (ZREM, HDEL: idempotent)."""
        partitions = await self.partitions()
        for partition, mine in self._by_partition(events, partitions).items():
            keys = [self._key(partition, "events"), self._key(partition, "agenda")]
            ids = [e.event_id for e in mine]
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                await self._retry(
                    "remove campaign agenda entries", partial(self._done, keys=keys, args=chunk)
                )

    async def _unknown_to_legacy(self, events: Sequence[CampaignEvent]) -> list[CampaignEvent]:
        """``events`` less those whose ids an earlier version's keys (one slot) still know."""
        if not self._legacy_left or not events:
            return list(events)
        current, previous = self.dedupe.now().keys(self._legacy_ids)
        if not await self._redis.exists(current, previous, self._legacy_events):
            self._legacy_left = False  # nothing writes them any more: none will come back
            return list(events)
        ids = [e.event_id for e in events]
        pipe = self._redis.pipeline(transaction=False)
        pipe.smismember(current, ids)
        pipe.smismember(previous, ids)
        pipe.hmget(self._legacy_events, ids)
        in_current, in_previous, kept = await pipe.execute()
        return [
            e
            for e, a, b, k in zip(events, in_current, in_previous, kept, strict=True)
            if not a and not b and k is None
        ]

    async def _move_legacy(self, partitions: int) -> None:
        """Move an earlier version's waiting events (one-slot agenda and hash) onto the partitions."""
        while True:
            page = cast(
                list[tuple[bytes, float]],
                await self._redis.zrange(self._legacy_agenda, 0, LEGACY_PAGE - 1, withscores=True),
            )
            if not page:
                return
            ids = [m for m, _ in page]
            raw = await self._redis.hmget(self._legacy_events, ids)
            pipe = self._redis.pipeline(transaction=False)
            for (event_id, score), value in zip(page, raw, strict=True):
                if value is None:
                    continue  # an entry without its event: nothing to evaluate
                event = msgspec.json.decode(value, type=CampaignEvent)
                partition = customer_partition(event.customer_id, partitions)
                pipe.hset(self._key(partition, "events"), event_id, value)
                pipe.zadd(self._key(partition, "agenda"), {event_id: int(score)})
            pipe.zrem(self._legacy_agenda, *ids)
            pipe.hdel(self._legacy_events, *ids)
            await pipe.execute()

"""The agenda cut by evaluation partition (``state/adapters/agenda_partitions.py``), on a real Redis
and a real 3-master Redis Cluster: each entry under its customer's partition, whatever store
wrote it; one count per namespace; an agenda of one key from before the cut moved once, even
after a crash half-way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from agents.settings import Settings
from segstream.redis_cluster import RedisClusterInfo
from state.adapters.redis_access import RedisAccess
from state.adapters.redis_store import RedisStore
from state.customer.store import Delivery, agenda_member, parse_agenda_member
from streams.contract import Purchase
from tests.store_helpers import DAY

pytestmark = pytest.mark.integration


@pytest.fixture(params=["redis", "redis-cluster"])
async def access(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RedisAccess, str]]:
    """Where a store connects, and a fresh namespace there."""
    if request.param == "redis-cluster":
        cluster: RedisClusterInfo = request.getfixturevalue("redis_cluster")
        yield RedisAccess(cluster.url, cluster=True), f"t{uuid.uuid4().hex[:10]}:"
    else:
        settings: Settings = request.getfixturevalue("settings")
        yield RedisAccess(settings.redis_url), settings.redis_prefix


def kafka_partition(customer_id: str, partitions: int) -> int:
    """The oracle: kafka-python's default partitioner, a second implementation of Kafka's."""
    return (kafka_python_murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


def purchases(customers: int, per_customer: int) -> list[Delivery]:
    return [
        Delivery(
            Purchase(f"e{c}-{i}", f"cust{c:04d}", (c % 9 + i) * DAY, 100 + i),
            "purchases",
            c % 4,
            n,
            received_ms=1000 + n,
        )
        for n, (c, i) in enumerate((c, i) for c in range(customers) for i in range(per_customer))
    ]


async def test_each_entry_is_on_its_customers_partition_and_the_namespace_keeps_its_count(
    access: tuple[RedisAccess, str],
) -> None:
    where, prefix = access
    first = RedisStore.connect(where, prefix, eval_partitions=4)
    other = RedisStore.connect(where, prefix, eval_partitions=3)  # another setting: the namespace's wins
    try:
        batch = purchases(120, 3)
        await first.apply_batch(batch[:200])
        await other.apply_batch(batch[200:])
        client = first._redis
        assert await client.get(f"{prefix}eval:partitions") == "4"
        held = {}
        for p in range(4):
            entries = await client.zrange(f"{prefix}eval:{{p{p}}}:agenda", 0, -1, withscores=True)
            assert entries, f"partition {p} holds none of 120 customers"
            assert {kafka_partition(parse_agenda_member(m), 4) for m, _ in entries} == {p}
            held.update({m: int(s) for m, s in entries})
        expected = {
            agenda_member(d.event.customer_id, d.event.event_id): d.event.occurred_at_ms + 1 for d in batch
        }
        assert held == expected
        assert not await client.exists(
            f"{prefix}eval:{{segments}}:agenda", f"{prefix}eval:{{segments}}:received"
        )
        if where.cluster:  # the partitions' keys spread over the masters
            assert isinstance(client, redis.RedisCluster)
            nodes = {client.get_node_from_key(f"{prefix}eval:{{p{p}}}:agenda").name for p in range(4)}
            assert len(nodes) >= 2

        due = await other.due(5 * DAY + 1)
        assert due == sorted(
            ((m, s) for m, s in expected.items() if s <= 5 * DAY + 1), key=lambda e: (e[1], e[0])
        )
        assert await other.earliest_due(100 * DAY) == min(expected.values())
        receipts = await first.received([m for m, _ in due])
        assert receipts == {
            agenda_member(d.event.customer_id, d.event.event_id): d.received_ms
            for d in batch
            if d.event.occurred_at_ms + 1 <= 5 * DAY + 1
        }
        await other.done(due)
        assert await first.due(5 * DAY + 1) == []
        assert await first.received([m for m, _ in due]) == {}
        assert len(await first.due(100 * DAY)) == len(expected) - len(due)
    finally:
        await first.close()
        await other.close()


async def test_an_agenda_of_one_key_moves_onto_the_partitions_once_even_after_a_crash_half_way(
    access: tuple[RedisAccess, str],
) -> None:
    """An earlier version's ``eval:{segments}:agenda``/``:received`` (written here as it wrote them),
    some entries already copied to their partition as a crash after the copy and before the removal
    leaves them: the first store to need the agenda moves the rest, and every entry is due once."""
    where, prefix = access
    store = RedisStore.connect(where, prefix, eval_partitions=2)
    client = store._redis
    try:
        legacy, legacy_received = f"{prefix}eval:{{segments}}:agenda", f"{prefix}eval:{{segments}}:received"
        entries = {agenda_member(f"old{c}", f"e{c}"): (c % 5 + 1) * DAY + 1 for c in range(50)}
        await client.zadd(legacy, entries)
        receipts = {m: 7_000 + i for i, m in enumerate(entries) if i % 3 == 0}
        await client.zadd(legacy_received, receipts)
        copied = dict(list(entries.items())[:10])
        for member, score in copied.items():  # the crash: copied, not removed
            await client.zadd(
                f"{prefix}eval:{{p{kafka_partition(parse_agenda_member(member), 2)}}}:agenda", {member: score}
            )

        due = await store.due(10 * DAY)
        assert due == sorted(entries.items(), key=lambda e: (e[1], e[0]))
        assert not await client.exists(legacy, legacy_received)
        assert await store.received(list(entries)) == receipts
        for p in range(2):
            for member, _ in await client.zrange(f"{prefix}eval:{{p{p}}}:agenda", 0, -1, withscores=True):
                assert kafka_partition(parse_agenda_member(member), 2) == p
        again = RedisStore.connect(where, prefix, eval_partitions=2)  # a second store: nothing left to move
        try:
            assert await again.due(10 * DAY) == due
        finally:
            await again.close()
    finally:
        await store.close()


async def test_a_count_that_is_not_one_is_refused_with_its_key(access: tuple[RedisAccess, str]) -> None:
    where, prefix = access
    store = RedisStore.connect(where, prefix)
    try:
        await store._redis.set(f"{prefix}eval:partitions", "four")
        with pytest.raises(ValueError, match=r"eval:partitions holds 'four', not a partition count"):
            await store.due(10)
    finally:
        await store.close()

"""The split evaluator in the worker's evaluator (``SEGSTREAM_EVALUATION_SPLIT``) on a real Redis and
a real 3-master Redis Cluster: the one evaluator's changes, alerts, summary and profiles, with the
rows under the partitions' hash tags; and a crash between the owner's save and a partition's,
after which that partition catches up alone and its changes of the lost chunk come again.

The oracle is the one evaluator (``SegmentEvaluator`` without ``split_rows``) over the same
purchases in another namespace of the same Redis; generated customers (``history``: 150
customers, churn batches made and labelled within the ticks) so that every model moves.
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest

from agents.evaluator import SegmentEvaluator
from agents.evaluator_keeper import LayoutMismatch
from agents.ingest import ingest_batch
from agents.settings import Settings
from segstream.redis_cluster import RedisClusterInfo
from state.adapters.redis_access import RedisAccess
from state.adapters.redis_partition_rows import RedisPartitionRows
from state.adapters.redis_profiles import RedisProfileStore
from state.adapters.redis_store import RedisStore
from state.customer.partitions import customer_partition
from state.customer.rfm import DAY_MS
from state.evaluator.batch_parts import BatchHead
from streams.outputs import Tick
from tests.unit.test_evaluator_saves import CONFIG, TICK_DAYS, history
from tests.unit.test_segment_evaluator import DAY0, TOPIC, Outbox, no_letters

pytestmark = pytest.mark.integration


class Namespace:
    """A store, a profile store and partition rows under one fresh prefix."""

    def __init__(self, access: RedisAccess, rows: type[RedisPartitionRows] = RedisPartitionRows) -> None:
        prefix = f"t{uuid.uuid4().hex[:10]}:"
        self.prefix = prefix
        self.store = RedisStore.connect(access, prefix, eval_partitions=4)
        self.profiles = RedisProfileStore.connect(access, prefix)
        self.rows = rows.connect(access, prefix)
        self.out = Outbox()

    def evaluator(self, *, split: bool) -> SegmentEvaluator:
        """A worker's evaluator with nothing cached: it loads what the namespace saved."""
        rows = self.rows if split else None
        return SegmentEvaluator(
            CONFIG, self.store, self.profiles, self.out, TOPIC, poll_s=0.01, split_rows=rows
        )

    async def close(self) -> None:
        for adapter in (self.store, self.profiles, self.rows):
            await adapter.close()


@pytest.fixture(params=["redis", "redis-cluster"])
def access(request: pytest.FixtureRequest) -> RedisAccess:
    if request.param == "redis-cluster":
        cluster: RedisClusterInfo = request.getfixturevalue("redis_cluster")
        return RedisAccess(cluster.url, cluster=True)
    settings: Settings = request.getfixturevalue("settings")
    return RedisAccess(settings.redis_url)


@pytest.fixture
async def one(access: RedisAccess) -> AsyncIterator[Namespace]:
    """The oracle's namespace, evaluated by the one evaluator at every tick."""
    namespace = Namespace(access)
    messages = history()
    await ingest_batch(messages, namespace.store, no_letters)
    evaluator = namespace.evaluator(split=False)
    for tick in ticks(len(messages)):
        await evaluator.on_tick(tick)
    yield namespace
    await namespace.close()


def ticks(messages: int) -> list[Tick]:
    return [Tick(DAY0 + day * DAY_MS, {0: messages}, "test") for day in TICK_DAYS]


def without_place(record: Mapping[str, object] | None) -> dict[str, object]:
    """A saved row without where it sits (row number, the instant it was created), which differ by layout."""
    assert record is not None
    return {k: v for k, v in record.items() if k not in ("row", "seen_ms")}


async def assert_same_profiles(split: Namespace, one: Namespace, customers: Sequence[str]) -> None:
    assert await split.profiles.summary() == await one.profiles.summary()
    for customer in customers[:20]:
        assert without_place(await split.profiles.profile(customer)) == without_place(
            await one.profiles.profile(customer)
        )
    ours, theirs = await split.profiles.profiles(customers), await one.profiles.profiles(customers)
    assert {c: without_place(r) for c, r in ours.items()} == {c: without_place(r) for c, r in theirs.items()}
    saved_split, saved_one = await split.profiles.load(), await one.profiles.load()
    assert saved_split is not None and saved_one is not None
    assert sorted(map(without_place, saved_split.records), key=str) == sorted(
        map(without_place, saved_one.records), key=str
    )
    assert len(saved_one.records) == len(customers)
    assert not await split.profiles._redis.exists(
        f"{split.prefix}eval:{{segments}}:view"
    )  # no key gathers them


async def test_the_split_reloaded_at_every_tick_gives_the_one_evaluators_changes_alerts_and_profiles(
    access: RedisAccess, one: Namespace
) -> None:
    split = Namespace(access)
    try:
        messages = history()
        await ingest_batch(messages, split.store, no_letters)
        for tick in ticks(len(messages)):
            await split.evaluator(split=True).on_tick(tick)  # another worker each time: loads the split
        assert split.out.changes == one.out.changes and len(one.out.changes) > 1000
        assert split.out.alerts == one.out.alerts and one.out.alerts
        customers = sorted({c.customer_id for c in one.out.changes})
        await assert_same_profiles(split, one, customers)
        assert await split.profiles.split_partitions() == 4
        # the open churn batches: a head with the owner (its sample, not every buyer), a part per partition
        saved, saved_one = (
            await split.profiles.load(with_rows=False),
            await one.profiles.load(with_rows=False),
        )
        assert saved is not None and saved_one is not None and saved.batches
        assert [m for m, _ in saved.batches] == [m for m, _ in saved_one.batches]
        for made_at, head in saved.batches:
            assert isinstance(pickle.loads(head), BatchHead)
            assert all(await split.rows.load_batch_parts(made_at, 4))
        assert max(len(h) for _, h in saved.batches) < min(len(b) for _, b in saved_one.batches)
        await split.rows.save_batch_parts(12_345, [b"left by a crash"] * 4)  # parts no batch names
        await split.evaluator(split=True).on_tick(ticks(len(messages))[-1])  # a load drops them
        assert await split.rows.load_batch_parts(12_345, 4) == [None] * 4
        assert all(await split.rows.load_batch_parts(saved.batches[0][0], 4))
        for p in range(4):  # every partition's rows are its customers'
            _, rows = await split.rows.load(p)
            assert rows and {customer_partition(str(r["customer_id"]), 4) for r in rows} == {p}
        with pytest.raises(LayoutMismatch, match="saved by split into 4 partitions"):
            await split.evaluator(split=False).on_tick(ticks(len(messages))[-1])
    finally:
        await split.close()


class FailingRows(RedisPartitionRows):
    """Partition 1's save fails once, at its ``fail_at``-th save, having written nothing."""

    fail_at = 0
    saves = 0

    async def save(
        self, partition: int, clock_ms: int, records: Sequence[Mapping[str, object]], epoch: int | None = None
    ) -> int:
        if partition == 1:
            type(self).saves += 1
            if type(self).saves == type(self).fail_at:
                raise ConnectionError("Redis gone before partition 1's save")
        return await super().save(partition, clock_ms, records, epoch)


async def test_a_crash_between_the_owners_save_and_a_partitions_publishes_its_chunk_again_and_goes_on(
    access: RedisAccess, one: Namespace
) -> None:
    """Partition 1's save fails after the owner's and partition 0's: partitions 1, 2 and 3 (saved
    in order, so never reached) restore one save behind, catch up alone, and publish their changes
    and alerts of that chunk again, partition by partition; then everything goes on as the one
    evaluator (every tick here is one chunk of instants after the first)."""
    FailingRows.fail_at, FailingRows.saves = 3, 0
    split = Namespace(access, FailingRows)
    try:
        messages = history()
        await ingest_batch(messages, split.store, no_letters)
        evaluator = split.evaluator(split=True)
        crashed: tuple[int, int, int] | None = None
        for i, tick in enumerate(ticks(len(messages))):
            try:
                await evaluator.on_tick(tick)
            except ConnectionError:
                crashed = i, len(split.out.changes), len(split.out.alerts)
                evaluator = split.evaluator(split=True)  # the restarted worker
                await evaluator.on_tick(tick)
        assert crashed is not None and crashed[0] > 0 and FailingRows.saves > FailingRows.fail_at
        i, changes, alerts = crashed
        window = ticks(len(messages))[i - 1].as_of_ms, ticks(len(messages))[i].as_of_ms

        def in_chunk(at_ms: int) -> bool:
            return window[0] < at_ms <= window[1]

        def partition(customer_id: str) -> int:
            return customer_partition(customer_id, 4)

        behind = (1, 2, 3)
        chunk = [c for c in one.out.changes if in_chunk(c.at_ms)]
        again = [c for p in behind for c in chunk if partition(c.customer_id) == p]
        assert again and split.out.changes[changes : changes + len(again)] == again
        assert split.out.changes[:changes] + split.out.changes[changes + len(again) :] == one.out.changes
        chunk_alerts = [a for a in one.out.alerts if in_chunk(a.at_ms) and a.kind != "segment_drift"]
        alerts_again = [a for p in behind for a in chunk_alerts if partition(a.customer_id) == p]
        assert split.out.alerts[alerts : alerts + len(alerts_again)] == alerts_again
        assert split.out.alerts[:alerts] + split.out.alerts[alerts + len(alerts_again) :] == one.out.alerts
        customers = sorted({c.customer_id for c in one.out.changes})
        await assert_same_profiles(split, one, customers)
    finally:
        await split.close()

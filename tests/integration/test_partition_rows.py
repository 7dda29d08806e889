"""Partition evaluators' rows in a real Redis and a real 3-master Redis Cluster.

A three-way split (``state.evaluator.partitioned``) saves at every tick what changed: each
partition evaluator its rows under its own hash tag (``RedisPartitionRows``), the model owner its
models, clock, cut-points and open churn batches (``RedisProfileStore``, without rows). Half way
through, everything is loaded back from Redis into a new split, which goes on to end with the
one evaluator's changes, alerts, models and rows (the oracle of
``tests/unit/test_partitioned_evaluation.py``), with one partition a save behind the owner.
"""

from __future__ import annotations

import asyncio
import pickle
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from agents.settings import Settings
from segstream.redis_cluster import RedisClusterInfo
from segstream.stack_processes import free_ports
from state.adapters.redis_access import RedisAccess
from state.adapters.redis_partition_rows import RedisPartitionRows
from state.adapters.redis_profiles import RedisProfileStore
from state.adapters.retry import RetryPolicy, StoreUnavailable
from state.customer.profile_store import Superseded
from state.customer.profiles import Change
from state.evaluator.partitioned import PartitionedEvaluator, SplitSave
from tests.unit.test_evaluate import UNGATED
from tests.unit.test_partitioned_evaluation import assert_same, one_run, shuffled_ticks

pytestmark = pytest.mark.integration

Stores = tuple[RedisPartitionRows, RedisProfileStore, str | None]


@pytest.fixture(params=["redis", "redis-cluster"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    """The two adapters on one Redis or on the cluster (with the cluster's URL, to look at its masters)."""
    if request.param == "redis-cluster":
        cluster: RedisClusterInfo = request.getfixturevalue("redis_cluster")
        access, prefix, url = (
            RedisAccess(cluster.url, cluster=True),
            f"t{uuid.uuid4().hex[:10]}:",
            cluster.url,
        )
    else:
        settings: Settings = request.getfixturevalue("settings")
        access, prefix, url = RedisAccess(settings.redis_url), settings.redis_prefix, None
    rows, owner = RedisPartitionRows.connect(access, prefix), RedisProfileStore.connect(access, prefix)
    yield rows, owner, url
    await rows.close()
    await owner.close()


async def test_a_split_saved_in_redis_and_restored_from_it_goes_on_as_the_one_evaluator(
    stores: Stores,
) -> None:
    """The owner saves first (its models and versions log in one MULTI), then each partition;
    at the last tick before the crash partition 1 does not get to save, so it restores from its
    save before and catches up alone from the log it reads back."""
    rows_store, owner_store, cluster_url = stores
    one, ones, alerts = one_run()
    ticks = shuffled_ticks()
    half, lost = len(ticks) // 2, 1
    split = PartitionedEvaluator(UNGATED, 3)
    changes: list[Change] = []
    for i, (tick, logs) in enumerate(ticks[:half]):
        changes += split.advance(tick, logs)
        owner = split.owner
        parts = owner.take_saved_parts()
        cutpoints = owner.cutpoints.to_json() if owner.cutpoints else None
        await owner_store.save(
            tick,
            cutpoints,
            parts.model,
            [],
            {},
            batches_added=parts.batches_added,
            batches_removed=parts.batches_removed,
            versions_log=pickle.dumps(owner.take_log()),
        )
        for part in split.partitions:
            if i < half - 1 or part.partition != lost:
                await rows_store.save(part.partition, tick, part.take_dirty())
    saved = await owner_store.load()
    assert saved is not None and saved.model is not None and saved.records == []
    assert saved.versions_log is not None
    loaded = [await rows_store.load(p) for p in range(3)]
    clocks = [clock for clock, _ in loaded]
    assert clocks == [ticks[half - 1][0], ticks[half - 2][0], ticks[half - 1][0]]
    restored = PartitionedEvaluator.restore(
        UNGATED,
        SplitSave(
            saved.clock_ms,
            saved.cutpoints_json,
            saved.model,
            saved.batches,
            [r for _, r in loaded],
            clocks,
            pickle.loads(saved.versions_log),
        ),
        partition_of=split.partition_of,
        logs=ticks[half - 1][1],
    )
    assert restored.caught_up  # partition 1's changes of the last tick again
    again = len(restored.alerts)  # and its alerts of it
    assert len(restored.owner.population) == len(split.owner.population)
    for tick, logs in ticks[half:]:
        changes += restored.advance(tick, logs)
    assert changes == ones
    chunk_alerts = split.take_alerts()  # up to the crash
    assert (
        again and chunk_alerts + restored.take_alerts()[again:] == alerts
    )  # partition 1's of the last tick first
    assert_same(one, restored, restored=True)
    if cluster_url is not None:  # each partition's rows in its own slot, not all on one master
        raw = redis.RedisCluster.from_url(cluster_url)
        try:
            await raw.initialize()
            slots = {raw.keyslot(f"eval:{{p{p}}}:rows") for p in range(3)}
            masters = {raw.get_node_from_key(f"eval:{{p{p}}}:rows").name for p in range(3)}
        finally:
            await raw.aclose()
        assert len(slots) == 3 and len(masters) > 1


async def test_a_partition_never_saved_loads_as_nothing(stores: Stores) -> None:
    rows_store, _, _ = stores
    assert await rows_store.load(7) == (None, [])
    assert await rows_store.save(7, 10, []) == 1
    assert await rows_store.load(7) == (10, [])
    assert await rows_store.save(7, 12, []) == 2 and (await rows_store.load(7))[0] == 12


async def test_a_partitions_save_in_an_older_epoch_is_refused(stores: Stores) -> None:
    """A host (or owner) of an epoch before the one the partition was last saved in writes nothing."""
    rows_store, _, _ = stores
    row = {"customer_id": "c1", "row": 0, "seen_ms": 5, "frequency": 1}
    assert await rows_store.save(3, 10, [], epoch=5) == 1
    with pytest.raises(Superseded, match="partition 3 was saved in epoch 5, after 4"):
        await rows_store.save(3, 20, [row], epoch=4)
    assert await rows_store.load(3) == (10, [])  # nothing written
    assert await rows_store.save(3, 20, [], epoch=5) == 2  # the same epoch saves on
    with pytest.raises(Superseded, match="partition 3 was saved up to 20 in epoch 5, past 15"):
        await rows_store.save(3, 15, [row], epoch=5)  # a second host of epoch 5, a chunk behind
    assert await rows_store.save(3, 20, [], epoch=5) == 3  # the same chunk again (a copy): saved
    assert await rows_store.load(3) == (20, [])
    assert await rows_store.save(3, 30, [], epoch=6) == 4
    with pytest.raises(Superseded):
        await rows_store.save(3, 40, [], epoch=5)
    assert await rows_store.save(3, 50, []) == 5 and (await rows_store.load(3))[0] == 50  # no epoch: no fence


async def test_saves_of_the_same_epoch_at_once_all_land(stores: Stores) -> None:
    """Another save between a save's read of the epoch and its MULTI is not a newer epoch: it reads again."""
    rows_store, _, _ = stores
    await asyncio.gather(*(rows_store.save(2, 10, [], epoch=7) for n in range(20)))
    assert await rows_store.save(2, 99, [], epoch=7) == 21


async def test_a_dead_redis_fails_a_partitions_save_with_where_and_what_once_the_budget_is_spent() -> None:
    """Nothing listens on the port: the worker's retry policy (here a budget of 0.3 s) gives up with
    the address, the operation and the setting that bounds it."""
    port = free_ports(1)[0]
    rows = RedisPartitionRows.connect(
        RedisAccess(f"redis://127.0.0.1:{port}/0"),
        "t:",
        retry=RetryPolicy(budget_s=0.3, base_s=0.05, cap_s=0.1),
    )
    try:
        with pytest.raises(
            StoreUnavailable,
            match=rf"Redis at 127.0.0.1:{port}/0: save a partition's rows failed .*SEGSTREAM_REDIS_RETRY_S",
        ):
            await rows.save(0, 10, [])
        with pytest.raises(StoreUnavailable, match="save a churn batch's parts failed"):
            await rows.save_batch_parts(10, [b"part"])
    finally:
        await rows.close()

"""A worker on a real 3-master Redis Cluster (``SEGSTREAM_REDIS_CLUSTER``) evaluating split
(``SEGSTREAM_EVALUATION_SPLIT``: each evaluation partition's rows under its own hash tag, so on
several masters) publishes what segstream publishes on a single Redis with the one evaluator: the
CDNOW sample replayed with clock ticks gives every change, the ``customer-segments`` profiles and
the exported RFM state of the references. (The one evaluator on the cluster is held to the split
one at the evaluator's level, ``test_split_evaluation``; a worker with it on one Redis, in
``test_segments_live``.)

The references are the ones the single-node tests hold the worker to, so equality here is equality
with a single node: the pure evaluator fed the same history (``test_segments_live``: a worker on one
Redis publishes exactly its changes) and the pandas RFM table (``test_pipeline``). One worker, on the
cluster only, keeps the test short.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from agents.settings import Settings
from segstream.batch import rfm_table
from segstream.kafka_io import ensure_topics
from segstream.redis_cluster import RedisClusterInfo
from segstream.replay import replay_history
from segstream.sources import load_cdnow, occurred_at_ms
from state.adapters.redis_profiles import RedisProfileStore
from tests.conftest import WorkerFactory, wait_for_stats
from tests.integration.test_pipeline import assert_same_table, export_customers
from tests.integration.test_segments_live import (
    SAMPLE_CUSTOMERS,
    SAMPLE_EVENTS,
    changes_of,
    latest_profiles,
    pure_run,
)

pytestmark = pytest.mark.integration


def evaluator_clock(settings: Settings) -> int | None:
    """The clock of the evaluator's last save, on whichever Redis ``settings`` name (node or cluster)."""

    async def go() -> int | None:
        profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
        try:
            summary = await profiles.summary()
            return int(summary["as_of_ms"]) if summary else None
        finally:
            await profiles.close()

    return asyncio.run(go())


def test_a_worker_on_a_redis_cluster_publishes_what_one_on_a_single_node_does(
    settings: Settings, redis_cluster: RedisClusterInfo, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    history = load_cdnow(sample=True)
    on_cluster = settings.model_copy(
        update={"redis_url": redis_cluster.url, "redis_cluster": True, "evaluation_split": True}
    )
    assert on_cluster.redis_access.cluster
    ensure_topics(on_cluster)
    worker = start_worker(on_cluster, "cluster")
    replay_history(history, on_cluster, progress=False, tick_every=3500)  # ticks at midnights and the end
    stats = wait_for_stats(on_cluster, lambda st: st.applied >= SAMPLE_EVENTS, [worker])
    assert (stats.applied, stats.customers, stats.invalid) == (SAMPLE_EVENTS, SAMPLE_CUSTOMERS, 0)

    end = max(occurred_at_ms(history)) + 1  # the replay's last tick
    deadline = time.monotonic() + 120
    while evaluator_clock(on_cluster) != end:
        assert worker.poll() is None and time.monotonic() < deadline, (
            f"evaluator clock {evaluator_clock(on_cluster)}"
        )
        time.sleep(0.25)
    pure, _, _ = pure_run(history, end)
    published = {c["change_id"]: c for c in changes_of(on_cluster)}  # at least once: dedupe on the id
    assert Counter(json.dumps(c, sort_keys=True) for c in published.values()) == Counter(
        json.dumps(c, sort_keys=True) for c in pure
    )
    latest = latest_profiles(on_cluster)
    final = {c["customer_id"]: c["after"] for c in pure}  # each customer's last change, in order
    assert len(latest) == SAMPLE_CUSTOMERS
    assert {c: {k: doc[k] for k in final[c]} for c, doc in latest.items()} == final
    assert_same_table(export_customers(on_cluster, tmp_path / "cluster.parquet"), rfm_table(history))
    assert asyncio.run(split_partitions(on_cluster)) == on_cluster.partitions  # it did evaluate split


async def split_partitions(settings: Settings) -> int | None:
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        return await profiles.split_partitions()
    finally:
        await profiles.close()

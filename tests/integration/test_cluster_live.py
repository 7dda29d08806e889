"""A worker on a real 3-master Redis Cluster (``SEGSTREAM_REDIS_CLUSTER``) publishes what one on a single
Redis publishes: the same CDNOW sample replay, with the same clock ticks, gives the same
``customer-segments`` profiles and the same exported RFM state on both."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pandas as pd
import pytest

from agents.settings import Settings
from segstream.kafka_io import ensure_topics
from segstream.redis_cluster import RedisClusterInfo
from segstream.replay import replay_history
from segstream.sources import load_cdnow, occurred_at_ms
from state.adapters.redis_profiles import RedisProfileStore
from tests.conftest import WorkerFactory, wait_for_stats
from tests.integration.test_pipeline import export_customers
from tests.integration.test_segments_live import SAMPLE_CUSTOMERS, SAMPLE_EVENTS, latest_profiles

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
        update={"namespace": settings.namespace + "c", "redis_url": redis_cluster.url, "redis_cluster": True}
    )
    assert on_cluster.redis_access.cluster and not settings.redis_access.cluster
    ensure_topics(on_cluster)
    single_worker = start_worker(settings, "single")  # the reference: the session stack's one Redis
    cluster_worker = start_worker(on_cluster, "cluster")
    for s in (settings, on_cluster):
        replay_history(
            history, s, progress=False, tick_every=3500
        )  # the same events and ticks (one midway, one at the end)
    for s, w in ((settings, single_worker), (on_cluster, cluster_worker)):
        stats = wait_for_stats(s, lambda st: st.applied >= SAMPLE_EVENTS, [w])
        assert (stats.applied, stats.customers, stats.invalid) == (SAMPLE_EVENTS, SAMPLE_CUSTOMERS, 0)

    end = max(occurred_at_ms(history)) + 1  # the replay's last tick
    for s, w in ((settings, single_worker), (on_cluster, cluster_worker)):
        deadline = time.monotonic() + 120
        while evaluator_clock(s) != end:
            assert w.poll() is None and time.monotonic() < deadline, f"evaluator clock {evaluator_clock(s)}"
            time.sleep(0.25)
    single = latest_profiles(settings)
    assert len(single) == SAMPLE_CUSTOMERS
    assert latest_profiles(on_cluster) == single
    cluster_rfm = export_customers(on_cluster, tmp_path / "cluster.parquet")
    pd.testing.assert_frame_equal(cluster_rfm, export_customers(settings, tmp_path / "single.parquet"))
    assert len(cluster_rfm) == SAMPLE_CUSTOMERS

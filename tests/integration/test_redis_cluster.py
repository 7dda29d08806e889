"""The adapters on a real 3-master Redis Cluster: what only a cluster can show.

The store contracts (``test_store_contract``, ``test_profile_store_contract``) run on the cluster
too; here: customers' keys really spread over the masters, a master that forgot the scripts
(NOSCRIPT) is given them again, the catalogue works there, and the review fold, whose region
counters cannot share a slot with its customers, is refused with a clear message.
"""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as redis

from segstream.redis_cluster import RedisClusterInfo
from state.adapters.redis_access import RedisAccess
from state.adapters.redis_catalogue import RedisCatalogue
from state.adapters.redis_reviews import RedisReviewStore
from state.adapters.redis_store import RedisStore
from state.analytics.catalogue import Keyed
from state.analytics.review_store import ReviewDelivery
from state.customer.store import Delivery, Outcome
from streams.catalogue_contract import Product
from streams.contract import Purchase
from streams.review_contract import Review

pytestmark = pytest.mark.integration

DAY = 86_400_000


def _access(cluster: RedisClusterInfo) -> RedisAccess:
    return RedisAccess(cluster.url, cluster=True)


async def test_customers_spread_over_every_master_and_lost_scripts_are_loaded_again(
    redis_cluster: RedisClusterInfo,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    store = RedisStore.connect(_access(redis_cluster), prefix, watch_restarts=True)
    raw = redis.RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        batch = [Delivery(Purchase(f"e{i}", f"c{i}", DAY, 100), "purchases", 0, i) for i in range(60)]
        assert await store.apply_batch(batch) == [Outcome.NEW_CUSTOMER] * 60
        masters = (await raw.initialize()).get_primaries()
        assert len(masters) == 3
        for master in masters:  # no master holds every customer, every master holds some
            held = [k async for k in raw.scan_iter(f"{prefix}seg:{{*}}", _type="hash", target_nodes=master)]
            assert 0 < len(held) < 60
        await raw.script_flush()  # on every master, as after restarts
        again = [Delivery(Purchase(f"f{i}", f"c{i}", 2 * DAY, 50), "purchases", 0, 60 + i) for i in range(60)]
        assert await store.apply_batch(again) == [Outcome.APPLIED] * 60
        assert await store.apply_batch(again) == [Outcome.REDELIVERED] * 60
        await raw.script_flush()
        assert await store.compact([f"c{i}" for i in range(60)], 2 * DAY) == 60
        states = {s.customer_id: s for s in await store.all_customers()}
        assert len(states) == 60 and {s.frequency for s in states.values()} == {2}
        stats = await store.stats()
        assert (stats.customers, stats.applied, stats.redelivered) == (60, 120, 60)
    finally:
        await raw.aclose()
        await store.close()


async def test_the_catalogue_runs_on_a_cluster(redis_cluster: RedisClusterInfo) -> None:
    catalogue = RedisCatalogue.connect(_access(redis_cluster), f"t{uuid.uuid4().hex[:10]}:")
    try:
        product = Product("p1", "dairy", "milk")
        assert await catalogue.apply_products([Keyed("p1", product, 0, 5)], 0) == [True]
        assert await catalogue.apply_products([Keyed("p1", None, 0, 5)], 0) == [False]  # fenced
        assert await catalogue.products_of(["p1", "p2"]) == {"p1": product}
    finally:
        await catalogue.close()


async def test_the_review_fold_is_refused_on_a_cluster_with_the_reason(
    redis_cluster: RedisClusterInfo,
) -> None:
    reviews = RedisReviewStore.connect(_access(redis_cluster), f"t{uuid.uuid4().hex[:10]}:")
    try:
        review = Review("r1", "o1", "c1", 5, "north", DAY)
        with pytest.raises(ValueError, match="single Redis node"):
            await reviews.apply_reviews([ReviewDelivery(review, "reviews", 0, 0)], {})
        assert await reviews.regions() == {} and await reviews.customers() == {}
    finally:
        await reviews.close()

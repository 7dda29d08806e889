"""Basket tables on real Redis: pruned pair counts stay within the threshold of the truth, and a
batch with many tallies folds in several script calls exactly like the reference store."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import redis.asyncio as redis

from agents.settings import Settings
from state.adapters.redis_baskets import RedisBaskets
from state.adapters.redis_store import RedisStore
from state.customer.memory_store import MemoryStore
from state.customer.store import Delivery, Outcome, Tally
from streams.contract import Purchase

pytestmark = pytest.mark.integration
DAY = 86_400_000


async def test_pruned_counts_are_lower_bounds_within_the_threshold_and_keep_every_frequent_pair(
    settings: Settings,
) -> None:
    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    key = baskets.key("sku", "pair")
    rng = random.Random(3)
    skus = [f"s{i}" for i in range(400)]
    weights = [1 / (i + 1) for i in range(len(skus))]
    truth: Counter[str] = Counter()
    thresholds = []
    try:
        for _ in range(30):
            pipe = client.pipeline(transaction=False)
            for _ in range(300):  # baskets: the fold's HINCRBY per pair
                names = sorted(set(rng.choices(skus, weights, k=rng.randint(2, 9))))
                for i, a in enumerate(names):
                    for b in names[i + 1 :]:
                        pipe.hincrby(key, f"{a}\x1f{b}", 1)
                        truth[f"{a}\x1f{b}"] += 1
            await pipe.execute()
            result = await baskets.prune("sku", 2000)
            stored = {f: int(v) for f, v in (await client.hgetall(key)).items()}
            t = result.threshold
            thresholds.append(t)
            assert len(stored) == result.left <= 2000
            for field, count in stored.items():
                assert count <= truth[field] <= count + t, field
            assert all(field in stored for field, n in truth.items() if n > t)
            tables = await baskets.tables("sku")
            assert tables.pairs == stored and tables.threshold == t
        assert thresholds == sorted(thresholds) and 0 < thresholds[-1] < max(truth.values()) // 4
        assert len(truth) > 5 * 2000, "the stream must outgrow the bound many times over"
        meta = await client.hgetall(baskets.key("sku", "pair:meta"))
        assert int(meta["prunes"]) >= 10 and int(meta["pruned"]) > len(truth) - 2000
        memory = await baskets.memory("sku")
        assert memory["pair_fields"] == len(stored) and memory["pair_bytes"] > 0

        # a level within its bound is never touched: exact counts, threshold 0
        small = baskets.key("category", "pair")
        await client.hset(small, mapping={"a\x1fb": 3, "a\x1fc": 1})
        assert await baskets.prune("category", 2000) == type(result)("category", 0, 0, 2)
        assert (await baskets.tables("category")).pairs == {"a\x1fb": 3, "a\x1fc": 1}
    finally:
        await client.aclose()
        await baskets.close()


async def test_a_batch_with_many_tallies_folds_in_several_calls_like_the_reference_store(
    settings: Settings,
) -> None:
    """60,000 tallies (the fold cuts them into calls of at most 20,000): the same outcomes and
    counters as the in-memory store, resends and a redelivery included."""
    rng = random.Random(5)
    deliveries = []
    for i in range(60):
        event = Purchase(f"e{i % 50}", f"c{i % 50 % 7}", DAY * (i % 50 + 1), 100)  # e0..e9 resent at 50..59
        tallies = tuple(Tally("basket:sku:pair", f"p{rng.randrange(300)}") for _ in range(1000))
        deliveries.append(
            Delivery(event, "purchases", 0, i, (*tallies, Tally("cust:x", "n", per_customer=True)))
        )
    reference, store = MemoryStore(), RedisStore.from_url(settings.redis_url, settings.redis_prefix)
    try:
        assert await store.apply_batch(deliveries) == await reference.apply_batch(deliveries)
        assert await store.apply_batch(deliveries[:20]) == [Outcome.REDELIVERED] * 20
        assert await store.tally("basket:sku:pair") == await reference.tally("basket:sku:pair")
        customers = [f"c{i}" for i in range(7)]
        assert await store.tallies("cust:x", customers) == await reference.tallies("cust:x", customers)
        assert sum((await store.tally("basket:sku:pair")).values()) == 50 * 1000
    finally:
        await store.close()

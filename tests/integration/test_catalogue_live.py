"""The ``products`` and ``customer-traits`` topics on the real Kafka and Redis.

- The Redis adapter behaves like the memory store (the same generated history with redeliveries,
  the same lookups), on the session's Redis without a worker.
- Through one worker: The Complete Journey's catalogue and traits of 40 households (``segstream
  replay completejourney-traits`` as a user runs it), an update, a tombstone and two bad messages;
  Redis holds the latest values, the bad ones are in the dead-letter topics with their reasons,
  and the HTTP pages show the product and the customer's traits. Their purchases, folded after
  the catalogue, tally each customer's baskets per category (pandas oracle), and ``GET /segments``
  and ``segstream segments --profile`` show the segment profiles.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import pandas as pd
import pytest

from agents.settings import Settings
from segstream.catalogue_replay import (
    load_completejourney_products,
    load_completejourney_traits,
    product_messages,
)
from segstream.kafka_io import Publisher, read_topic, send_tick
from segstream.replay import publish_paced, replay_history
from segstream.sources import load_completejourney, occurred_at_ms
from segstream.stack_info import StackInfo
from state.adapters.redis_catalogue import RedisCatalogue
from state.adapters.redis_store import RedisStore
from state.analytics.catalogue import Keyed, MemoryCatalogue
from state.analytics.profile_tallies import CATEGORY_TABLE
from streams.catalogue_contract import Product, Traits, decode_traits, encode_product
from streams.topics import CUSTOMER_TRAITS_DLQ, PRODUCTS, PRODUCTS_DLQ
from tests.conftest import WorkerFactory, wait_for_stats
from tests.integration.test_pipeline import run_cli
from tests.integration.test_segments_live import get, wait_for_clock
from tests.schema_helpers import validate

pytestmark = pytest.mark.integration

HOUSEHOLDS = 40


def _generated(seed: int) -> list[Keyed[Product]]:
    rng = random.Random(seed)
    offsets = [0, 0, 0]
    history: list[Keyed[Product]] = []
    for version in range(400):
        sku = f"s{rng.randrange(30)}"
        partition = int(sku[1:]) % 3
        value = None if rng.random() < 0.2 else Product(sku, "D", rng.choice(["A", "B", None]), None, version)
        history.append(Keyed(sku, value, partition, offsets[partition]))
        offsets[partition] += 1
    return history


def test_the_redis_catalogue_behaves_like_the_memory_one(stack: StackInfo) -> None:
    async def run() -> None:
        history = _generated(seed=11)
        rng = random.Random(5)
        batches = [history[i : i + 50] for i in range(0, len(history), 50)]
        deliveries = [*batches, *rng.sample(batches, 3)]  # redelivered batches, older after newer
        memory = MemoryCatalogue()
        redis = RedisCatalogue.connect(Settings(redis_url=stack.redis_url).redis_access, "catalogue-test:")
        try:
            for batch in deliveries:
                expected = await memory.apply_products(batch, epoch=0)
                assert await redis.apply_products(batch, epoch=0) == expected
            skus = [f"s{i}" for i in range(31)]
            assert await redis.products_of(skus) == await memory.products_of(skus)
            assert await redis.categories_of(skus) == await memory.categories_of(skus)
            assert await redis.departments_of(skus) == await memory.departments_of(skus)
            t = Traits("c1", "25-34", None, "3", None, "North", {"k": "v"})
            await redis.apply_traits([Keyed("c1", t, 0, 0), Keyed("c2", None, 0, 1)], epoch=0)
            assert await redis.traits_of(["c1", "c2"]) == {"c1": t}
        finally:
            await redis.close()

    asyncio.run(run())


def _read(settings: Settings, topic: str) -> list[dict[str, Any]]:
    return [json.loads(m.value) for m in read_topic(settings, settings.topic(topic))]


def _wait_for_catalogue(
    settings: Settings, sku: str, expected: Product, worker: Any, timeout_s: float = 120
) -> None:
    """Until the worker has stored ``expected`` for ``sku`` (the last product message published)."""

    async def stored() -> Product | None:
        catalogue = RedisCatalogue.connect(settings.redis_access, settings.redis_prefix)
        try:
            return (await catalogue.products_of([sku])).get(sku)
        finally:
            await catalogue.close()

    deadline = time.monotonic() + timeout_s
    while asyncio.run(stored()) != expected:
        assert worker.poll() is None, f"worker exited with code {worker.returncode}"
        assert time.monotonic() < deadline, "the catalogue was not stored in time"
        time.sleep(0.25)


def _expected_tallies(
    purchases: pd.DataFrame, products: pd.DataFrame, first: str, second: str
) -> dict[str, dict[str, int]]:
    """Per customer, baskets per category with pandas: the catalogue as it stood at the fold (final here)."""
    lines = pd.DataFrame(
        [
            (c, e, item["sku"])
            for c, e, items in zip(
                purchases["customer_id"], purchases["event_id"], purchases["items"], strict=True
            )
            for item in items or ()
        ],
        columns=["customer", "event", "sku"],
    )
    catalogue = products.assign(sku=products["product_id"].astype(str)).set_index("sku")["product_category"]
    catalogue = catalogue.drop(second)
    catalogue[first] = "RENAMED"
    lines["category"] = lines["sku"].map(catalogue)
    counted = lines.dropna(subset=["category"]).drop_duplicates(["event", "category"])
    table = counted.groupby(["customer", "category"]).size()
    return {c: {k: int(n) for k, n in table[c].items()} for c in table.index.get_level_values(0).unique()}


def test_catalogue_and_traits_through_a_worker(settings: Settings, start_worker: WorkerFactory) -> None:
    purchases = load_completejourney()
    households = sorted(purchases["customer_id"].unique(), key=int)[:HOUSEHOLDS]
    purchases = purchases[purchases["customer_id"].isin(households)]
    purchases = purchases.assign(  # lines without a category of their own: the catalogue labels them
        items=[
            [{k: v for k, v in item.items() if k != "category"} for item in items] if items else items
            for items in purchases["items"]
        ]
    )
    skus = {item["sku"] for items in purchases["items"] if items for item in items}
    products = load_completejourney_products()
    products = products[products["product_id"].astype(str).isin(skus)]
    web = settings.model_copy(update={"web_enabled": True})
    worker = start_worker(web)

    run_cli(settings, "replay", "completejourney-traits", "--limit", str(HOUSEHOLDS), "--no-progress")
    publisher = Publisher(settings)
    try:
        publish_paced(
            publisher,
            settings.topic(PRODUCTS),
            product_messages(products),
            None,
            speed=None,
            progress=False,
            stop=None,
        )
        first, second = sorted(skus, key=int)[:2]
        renamed = Product(first, "GROCERY", "RENAMED", "Private", 1.5, {"note": "update"})
        publisher.send(settings.topic(PRODUCTS), first, encode_product(renamed))  # a later update wins
        publisher.send(settings.topic(PRODUCTS), second, None)  # type: ignore[arg-type]  # a tombstone
        publisher.send(settings.topic(PRODUCTS), "bad", b'{"sku":"bad"}')  # no department
        publisher.send(settings.topic("customer-traits"), households[0], b'{"customer_id":"someone else"}')
        publisher.flush()
    finally:
        publisher.close()
    _wait_for_catalogue(settings, first, renamed, worker)  # items are labelled at the fold: catalogue first
    replay_history(purchases, settings, progress=False, tick_every=None)
    wait_for_stats(settings, lambda s: s.applied >= len(purchases), [worker])
    end = max(occurred_at_ms(purchases)) + 1
    send_tick(settings, end, source="test")
    wait_for_clock(settings, end, worker)

    async def lookups() -> tuple[dict[str, Product], dict[str, Traits]]:
        catalogue = RedisCatalogue.connect(settings.redis_access, settings.redis_prefix)
        try:
            return await catalogue.products_of(sorted(skus)), await catalogue.traits_of(households)
        finally:
            await catalogue.close()

    stored, traits = asyncio.run(lookups())
    assert stored[first] == renamed and second not in stored
    assert len(stored) == len(products) - 1
    expected_traits = load_completejourney_traits()
    expected_traits = expected_traits[expected_traits["household_id"].astype(str).isin(households)]
    assert len(traits) == len(expected_traits) > 0  # not every household has demographics
    one = next(iter(traits.values()))
    assert one.age_band and one.income_band and one.household_size and one.household_composition

    reasons = [letter["reason"] for letter in _read(settings, PRODUCTS_DLQ)]
    assert reasons == ["department: missing required field"]
    (letter,) = _read(settings, CUSTOMER_TRAITS_DLQ)
    validate("purchase-dlq", letter)
    assert letter["reason"].startswith("customer_id: 'someone else' does not match the message key")

    status, body = get(f"http://127.0.0.1:{web.web_port}/products/{first}")
    assert status == 200 and body == json.loads(encode_product(renamed))
    validate("product", body)
    assert get(f"http://127.0.0.1:{web.web_port}/products/{second}")[0] == 404
    customer = one.customer_id
    status, doc = get(f"http://127.0.0.1:{web.web_port}/customers/{customer}")
    assert status == 200
    validate("http-customer", doc)
    assert doc["traits"] is not None
    assert decode_traits(customer.encode(), json.dumps(doc["traits"]).encode())[1] == traits[customer]

    # segment profiles: per-customer category counts labelled from the catalogue, and the pages
    async def tallied() -> dict[str, dict[str, int]]:
        store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
        try:
            return await store.tallies(CATEGORY_TABLE, households)
        finally:
            await store.close()

    expected = _expected_tallies(purchases, products, first, second)
    assert {c: t for c, t in asyncio.run(tallied()).items() if t} == expected
    status, table = get(f"http://127.0.0.1:{web.web_port}/segments")
    assert status == 200
    validate("http-segments", table)
    found = table["profiles"]
    assert found["population"]["customers"] == sum(s["customers"] for s in table["segments"])
    assert found["population"]["channel_mix"] == {"unknown": 1.0}  # The Complete Journey names no channel
    assert found["population"]["traits"]["customers"] == len(traits)
    top = found["population"]["top_categories"][0]
    assert top["lift"] == 1.0 and top["share"] == round(
        sum(top["category"] in t for t in expected.values()) / found["population"]["customers"], 4
    )
    printed = run_cli(settings, "segments", "--profile")
    assert (
        "segment profiles as of" in printed and f"{top['category']} {top['share']:.2f} (lift 1.00)" in printed
    )

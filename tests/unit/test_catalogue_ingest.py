"""The catalogue ingest step on the memory stores: latest value per key, tombstones, fences, dead letters.

The oracle is computed another way, with pandas: per key, the message with the highest offset
among everything ever delivered (redeliveries included); the key is absent if that message is a
tombstone. Delivery order (batches redelivered, older messages after newer ones) must not matter.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence

import pandas as pd

from agents.catalogue_ingest import ingest_catalogue_batch
from agents.ingest import DeadLetter, RawMessage
from state.analytics.catalogue import Keyed, MemoryCatalogue
from state.customer.memory_store import MemoryStore
from state.customer.store import TopicReset
from streams.catalogue_contract import Product, Traits, encode_product, encode_traits

TOPIC = "products"


def _product(sku: str, category: str | None, version: int) -> bytes:
    return encode_product(Product(sku, "GROCERY", category, "National", float(version)))


def _history(seed: int) -> list[RawMessage]:
    """300 messages over 20 skus on 2 partitions (a key keeps its partition): values and tombstones."""
    rng = random.Random(seed)
    offsets = [0, 0]
    messages = []
    for version in range(300):
        sku = f"sku-{rng.randrange(20)}"
        partition = int(sku.removeprefix("sku-")) % 2
        value = None if rng.random() < 0.15 else _product(sku, rng.choice(["SOUP", "BREAD", None]), version)
        messages.append(RawMessage(TOPIC, partition, offsets[partition], sku.encode(), value))
        offsets[partition] += 1
    return messages


def _oracle(delivered: Sequence[RawMessage]) -> dict[str, Product]:
    frame = pd.DataFrame(
        {
            "key": [m.key.decode() for m in delivered if m.key],
            "offset": [m.offset for m in delivered],
            "partition": [m.partition for m in delivered],
            "value": [m.value for m in delivered],
        }
    ).drop_duplicates(["partition", "offset"])
    latest = frame.sort_values("offset").groupby("key").tail(1)
    return {row.key: Product(**json.loads(row.value)) for row in latest.itertuples() if row.value is not None}


async def _ingest(
    batches: Sequence[Sequence[RawMessage]], store: MemoryStore, catalogue: MemoryCatalogue
) -> list[DeadLetter]:
    letters: list[DeadLetter] = []

    async def publish(new: Sequence[DeadLetter]) -> None:
        letters.extend(new)

    for batch in batches:
        await ingest_catalogue_batch("products", batch, store, catalogue, publish)
    return letters


def test_the_store_holds_the_latest_value_per_key_whatever_the_redeliveries() -> None:
    messages = _history(seed=7)
    batches = [messages[i : i + 40] for i in range(0, len(messages), 40)]
    rng = random.Random(3)
    redelivered = [*batches, *rng.sample(batches, 4)]  # whole batches again, after newer ones
    rng.shuffle(redelivered[len(batches) :])
    store, catalogue = MemoryStore(), MemoryCatalogue()
    asyncio.run(_ingest(redelivered, store, catalogue))
    assert catalogue.products == _oracle(messages)
    assert store.next_offsets == {
        (TOPIC, p): max(m.offset for m in messages if m.partition == p) + 1 for p in (0, 1)
    }


def test_an_older_redelivery_never_overwrites_and_a_tombstone_stays_deleted() -> None:
    store, catalogue = MemoryStore(), MemoryCatalogue()
    old, new = _product("812", "SOUP", 1), _product("812", "BROTH", 2)
    first = [RawMessage(TOPIC, 0, 0, b"812", old), RawMessage(TOPIC, 0, 1, b"812", new)]
    asyncio.run(_ingest([first, first[:1]], store, catalogue))
    assert catalogue.products["812"].category == "BROTH"
    asyncio.run(_ingest([[RawMessage(TOPIC, 0, 2, b"812", None)], first], store, catalogue))
    assert "812" not in catalogue.products
    assert asyncio.run(catalogue.categories_of(["812"])) == {}


def test_results_count_what_happened() -> None:
    store, catalogue = MemoryStore(), MemoryCatalogue()
    letters: list[DeadLetter] = []

    async def publish(new: Sequence[DeadLetter]) -> None:
        letters.extend(new)

    batch = [
        RawMessage(TOPIC, 0, 0, b"1", _product("1", "SOUP", 1)),
        RawMessage(TOPIC, 0, 1, b"2", _product("2", None, 1)),
        RawMessage(TOPIC, 0, 2, b"1", None),
        RawMessage(TOPIC, 0, 3, b"3", b'{"sku":"3"}'),
        RawMessage(TOPIC, 0, 4, None, _product("4", "SOUP", 1)),
    ]
    result = asyncio.run(ingest_catalogue_batch("products", batch, store, catalogue, publish))
    assert (result.stored, result.deleted, result.stale) == (2, 1, 0)
    assert result.invalid_reasons == [
        "department: missing required field",
        "key: missing; the message key is the sku",
    ]
    again = asyncio.run(ingest_catalogue_batch("products", batch, store, catalogue, publish))
    assert (again.stored, again.deleted, again.stale, again.invalid_reasons) == (0, 0, 3, [])
    assert len(letters) == 2  # the dead-letter fence: a redelivered bad message is not sent twice
    assert [json.loads(value)["source"]["offset"] for _, value in letters] == [3, 4]


def test_a_new_fence_epoch_accepts_the_recreated_topics_offsets() -> None:
    store, catalogue = MemoryStore(), MemoryCatalogue()
    asyncio.run(_ingest([[RawMessage(TOPIC, 0, 9, b"1", _product("1", "SOUP", 1))]], store, catalogue))
    asyncio.run(store.reset_topic(TopicReset(TOPIC, 1, 0, {0: (10, 0)})))
    asyncio.run(_ingest([[RawMessage(TOPIC, 0, 0, b"1", _product("1", "BREAD", 2))]], store, catalogue))
    assert catalogue.products["1"].category == "BREAD"


def test_traits_and_the_batched_lookups() -> None:
    store, catalogue = MemoryStore(), MemoryCatalogue()

    async def publish(new: Sequence[DeadLetter]) -> None:
        raise AssertionError(new)

    t = Traits("7", "45-54", "50-74K", "2", "2 Adults Kids", None, {"kids_count": "0"})
    batch = [RawMessage("customer-traits", 1, 0, b"7", encode_traits(t))]
    result = asyncio.run(ingest_catalogue_batch("traits", batch, store, catalogue, publish))
    assert result.stored == 1
    assert asyncio.run(catalogue.traits_of(["7", "8"])) == {"7": t}
    soup = Product("1", "GROCERY", "SOUP", "National")
    plain = Product("2", "PRODUCE", None, None)
    asyncio.run(catalogue.apply_products([Keyed("1", soup, 0, 0), Keyed("2", plain, 0, 1)], 0))
    assert asyncio.run(catalogue.categories_of(["1", "2", "3"])) == {"1": "SOUP"}
    assert asyncio.run(catalogue.departments_of(["1", "2"])) == {"1": "GROCERY", "2": "PRODUCE"}
    assert asyncio.run(catalogue.brands_of(["2", "1"])) == {"1": "National"}

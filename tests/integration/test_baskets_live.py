"""Basket counts, rules and bundles through a real worker: exactly once, equal to mlxtend and pandas.

60 households of The Complete Journey (3,908 baskets, each line with its product category) are
published shuffled with 10% producer resends, then one clock tick. The worker's pair bound is
20,000 counters: the category level (18,612 distinct pairs) stays exact, the sku level (323,364)
is pruned many times. Checked against counts pandas takes from the same baskets:

- every category counter and every customer's ``cust:category`` equal the truth (no resend
  counted twice); sku singles exact; every stored sku pair count within the reported threshold;
- ``segstream basket rules --level category --min-support 0.01`` equals mlxtend;
- the topic's first 1,000 messages folded again at their offsets (a Kafka redelivery through the
  worker's own ingest step) change no counter;
- the HTTP pages and the export's ``bundles`` column equal the bundle model built from the true
  counts and the evaluator's segments.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlxtend.frequent_patterns import apriori, association_rules

from agents.baskets import bundle_config
from agents.ingest import RawMessage, ingest_batch
from agents.settings import Settings
from agents.tallies import basket_config
from segstream.kafka_io import read_topic
from segstream.sources import load_completejourney, occurred_at_ms
from state.analytics.basket_tally import CUSTOMER_TABLE, SEP, TOTAL, basket_tallier
from state.analytics.baskets import BasketCounts
from agents.bundle_source import segment_of
from state.analytics.bundles import bundle_model, rank_bundles, segment_affinity, segment_bundles
from state.adapters.redis_baskets import LevelTables, RedisBaskets
from state.adapters.redis_profiles import RedisProfileStore
from state.adapters.redis_store import RedisStore
from state.customer.store import Outcome
from streams.topics import PURCHASES
from tests.conftest import WorkerFactory, wait_for_stats
from tests.integration.test_pipeline import export_customers, run_cli
from tests.integration.test_segments_live import get, publish_shuffled_with_resends, wait_for_clock
from tests.schema_helpers import validate

pytestmark = pytest.mark.integration

HOUSEHOLDS = [str(i) for i in range(1, 61)]
MAX_PAIRS = 20_000


def truth(history: pd.DataFrame) -> dict[str, Any]:
    """Counts taken from the baskets directly (sets of skus and categories per purchase)."""
    found: dict[str, Any] = {level: {"n": Counter(), "pair": Counter()} for level in ("sku", "category")}
    customers: dict[str, Counter[str]] = {}
    for customer, items in zip(history["customer_id"], history["items"], strict=True):
        names = {
            "sku": {i["sku"] for i in items or ()},
            "category": {i["category"] for i in items or () if i.get("category")},
        }
        for level, these in names.items():
            if these:
                found[level]["n"][TOTAL] += 1
                found[level]["n"].update(these)
                found[level]["pair"].update(f"{a}{SEP}{b}" for a, b in combinations(sorted(these), 2))
        customers.setdefault(customer, Counter()).update(names["category"])
    found["customers"] = customers
    found["category_baskets"] = [
        {i["category"] for i in items if i.get("category")}
        for items in history["items"]
        if items and any(i.get("category") for i in items)
    ]
    return found


def mlxtend_rules(baskets: list[set[str]]) -> pd.DataFrame:
    names = sorted(set().union(*baskets))
    onehot = pd.DataFrame([[n in b for n in names] for b in baskets], columns=names)
    frequent = apriori(onehot, min_support=0.01, use_colnames=True, max_len=2)
    found = association_rules(frequent, len(baskets), metric="confidence", min_threshold=0.0)
    return pd.DataFrame(
        {
            "antecedent": [next(iter(a)) for a in found["antecedents"]],
            "consequent": [next(iter(c)) for c in found["consequents"]],
            "support": found["support"],
            "confidence": found["confidence"],
            "lift": found["lift"],
        }
    ).set_index(["antecedent", "consequent"])


async def live_tables(settings: Settings, customers: list[str]) -> tuple[dict[str, LevelTables], Any]:
    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        levels = {level: await baskets.tables(level) for level in ("sku", "category")}  # type: ignore[arg-type]
        return levels, await store.tallies(CUSTOMER_TABLE, customers)
    finally:
        await baskets.close()
        await store.close()


async def redeliver(settings: Settings, count: int) -> list[Outcome]:
    topic = settings.topic(PURCHASES)
    messages = [RawMessage(topic, m.partition, m.offset, m.key, m.value) for m in read_topic(settings, topic)]
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)

    async def no_dead_letters(letters: Any) -> None:
        raise AssertionError(letters)

    try:
        tallier = basket_tallier(basket_config(settings))
        return (await ingest_batch(messages[:count], store, no_dead_letters, tallier=tallier)).outcomes
    finally:
        await store.close()


async def evaluator_records(settings: Settings) -> list[dict[str, Any]]:
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        saved = await profiles.load()
        return saved.records if saved else []
    finally:
        await profiles.close()


def test_live_baskets_are_exactly_once_equal_mlxtend_and_serve_bundles(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    history = load_completejourney(HOUSEHOLDS)
    settings = settings.model_copy(update={"basket_max_pairs": MAX_PAIRS, "basket_refresh_s": 0.0})
    web = settings.model_copy(update={"web_enabled": True})
    worker = start_worker(web)
    publish_shuffled_with_resends(settings, history, seed=8)  # and a tick past the last basket
    resends = len(history) // 10
    wait_for_stats(settings, lambda s: s.applied + s.duplicates >= len(history) + resends, [worker])
    wait_for_clock(settings, max(occurred_at_ms(history)) + 1, worker)

    expected = truth(history)
    customers = sorted(expected["customers"])
    levels, bought = asyncio.run(live_tables(settings, customers))
    category, sku = levels["category"], levels["sku"]
    assert category.threshold == 0 and category.items == dict(expected["category"]["n"])
    assert category.pairs == dict(expected["category"]["pair"])
    assert bought == {c: dict(n) for c, n in expected["customers"].items()}
    assert sku.items == dict(expected["sku"]["n"])
    true_pairs = expected["sku"]["pair"]
    assert sku.threshold > 0 and len(sku.pairs) < len(true_pairs) // 4  # pruned after each batch
    assert all(c <= true_pairs[f] <= c + sku.threshold for f, c in sku.pairs.items())
    assert all(f in sku.pairs for f, n in true_pairs.items() if n > sku.threshold)

    out = tmp_path / "rules.csv"
    run_cli(settings, "basket", "rules", "--level", "category", "--min-support", "0.01", "--output", str(out))
    live = pd.read_csv(out, keep_default_na=False).set_index(["antecedent", "consequent"])
    theirs = mlxtend_rules(expected["category_baskets"])
    assert len(theirs) > 100 and set(live.index) == set(theirs.index)
    assert (live.loc[theirs.index] - theirs).abs().max().max() <= 1e-9

    assert set(asyncio.run(redeliver(settings, 1000))) == {Outcome.REDELIVERED}
    assert asyncio.run(live_tables(settings, customers)) == (levels, bought)

    records = asyncio.run(evaluator_records(settings))
    segments = {str(r["customer_id"]): segment_of(r) for r in records}
    counts = BasketCounts.from_tables(dict(expected["category"]["n"]), dict(expected["category"]["pair"]))
    affinity = segment_affinity(((segments[c], expected["customers"].get(c, {})) for c in segments), 10.0)
    model = bundle_model(counts, affinity, bundle_config(settings))

    base = f"http://127.0.0.1:{web.web_port}"
    with_bundles = 0
    for customer in customers[:25]:
        status, body = get(f"{base}/customers/{customer}/bundles")
        assert status == 200
        validate("http-customer-bundles", body)
        mine = rank_bundles(expected["customers"][customer], segments.get(customer), model)
        assert [b["category"] for b in body["bundles"]] == [b.category for b in mine]
        assert [b["score"] for b in body["bundles"]] == pytest.approx([b.score for b in mine], rel=1e-12)
        with_bundles += bool(mine)
    assert with_bundles >= 20

    segment = max(affinity.customers, key=lambda s: affinity.customers[s])
    status, body = get(f"{base}/segments/{urllib.parse.quote(segment)}/bundles")
    assert status == 200
    validate("http-segment-bundles", body)
    assert [tuple(b["items"]) for b in body["bundles"]] == [b.items for b in segment_bundles(segment, model)]

    top = max(expected["sku"]["n"], key=lambda s: (expected["sku"]["n"][s], s) if s != TOTAL else (-1, s))
    status, body = get(f"{base}/products/{top}/together?limit=1000")
    assert status == 200
    validate("http-together", body)
    assert body["max_undercount"] == sku.threshold and body["baskets"] == expected["sku"]["n"][top]
    for partner in body["together"]:
        field = SEP.join(sorted((top, partner["sku"])))
        assert partner["baskets"] <= true_pairs[field] <= partner["baskets"] + sku.threshold

    for path, status_wanted in (
        ("/customers/nobody/bundles", 404),
        ("/segments/Nobody/bundles", 404),
        ("/products/no-such-sku/together", 404),
        (f"/products/{top}/together?limit=0", 400),
    ):
        status, body = get(base + path)
        assert status == status_wanted, path
        validate("http-error", body)

    table = export_customers(settings, tmp_path / "customers.parquet").set_index("customer_id")
    for customer in customers:
        mine = rank_bundles(expected["customers"][customer], segments.get(customer), model)
        assert list(table.loc[customer, "bundles"]) == [b.category for b in mine]

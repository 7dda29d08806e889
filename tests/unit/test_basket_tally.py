"""Basket tallies folded by the in-memory store equal counts pandas takes from the baskets directly."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from state.analytics.basket_tally import (
    CUSTOMER_TABLE,
    SEP,
    TOTAL,
    BasketConfig,
    basket_names,
    basket_tallier,
    basket_tallies,
    batch_cap,
    pair_members,
    split_pair,
    table,
)
from state.customer.memory_store import MemoryStore
from state.customer.store import Delivery
from streams.contract import Item, Purchase

CATALOGUE = {f"s{i}": f"cat{i % 7}" for i in range(40)}  # skus s0..s39, 7 categories


def random_purchases(rng: random.Random, count: int) -> list[Purchase]:
    """Baskets of 1-12 lines (repeats allowed); some lines carry their category, some do not,
    s35..s39 are unknown to the catalogue; a few refunds with items."""
    purchases = []
    for i in range(count):
        lines = []
        for _ in range(rng.randint(1, 12)):
            sku = f"s{rng.randrange(40)}"
            own = CATALOGUE[sku] if rng.random() < 0.5 and int(sku[1:]) < 35 else None
            lines.append(Item(sku, rng.randint(1, 3), 1.0, own))
        kind = "refund" if rng.random() < 0.05 else "purchase"
        cents = -100 if kind == "refund" else 100
        purchases.append(Purchase(f"e{i}", f"c{rng.randrange(15)}", i, cents, kind, items=tuple(lines)))
    return purchases


def known(skus: Sequence[str]) -> dict[str, str]:
    return {s: CATALOGUE[s] for s in skus if int(s[1:]) < 35}


def oracle(purchases: Sequence[Purchase]) -> dict[str, pd.DataFrame]:
    """One-hot basket x name matrices; pair counts are X^T X (pandas, no tallies)."""
    rows: dict[str, list[dict[str, object]]] = {"sku": [], "category": []}
    for p in purchases:
        if p.type != "purchase":
            continue
        for i in p.items or ():
            rows["sku"].append({"basket": p.event_id, "name": i.sku, "customer": p.customer_id})
            category = i.category or known([i.sku]).get(i.sku)
            if category:
                rows["category"].append({"basket": p.event_id, "name": category, "customer": p.customer_id})
    return {level: pd.DataFrame(r).drop_duplicates() for level, r in rows.items()}


async def fold(purchases: Sequence[Purchase]) -> MemoryStore:
    store = MemoryStore()
    tallies = await basket_tallier(categories=fake_catalogue)(purchases)
    await store.apply_batch(
        [Delivery(p, "purchases", 0, i, t) for i, (p, t) in enumerate(zip(purchases, tallies, strict=True))]
    )
    return store


async def fake_catalogue(skus: Sequence[str]) -> Mapping[str, str]:
    return known(skus)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_counts_equal_one_hot_products(seed: int) -> None:
    purchases = random_purchases(random.Random(seed), 300)
    store = await fold(purchases)
    for level, frame in oracle(purchases).items():
        onehot = pd.crosstab(frame["basket"], frame["name"]).clip(upper=1)
        n = await store.tally(table(level, "n"))  # type: ignore[arg-type]
        assert n.pop(TOTAL) == len(onehot)
        assert n == {k: int(v) for k, v in onehot.sum().items()}
        together = onehot.T.dot(onehot).to_numpy()
        names = list(onehot.columns)
        expected = {
            (names[i], names[j]): int(together[i, j])
            for i, j in zip(*np.triu_indices(len(names), 1), strict=True)
            if together[i, j] > 0
        }
        pairs = await store.tally(table(level, "pair"))  # type: ignore[arg-type]
        assert {split_pair(f): c for f, c in pairs.items()} == expected
    per_customer = oracle(purchases)["category"].groupby(["customer", "name"]).size()
    for customer in {p.customer_id for p in purchases}:
        mine = per_customer.get(customer)
        expected_mine = {} if mine is None else {str(k): int(v) for k, v in mine.items()}
        assert await store.tally(CUSTOMER_TABLE, customer) == expected_mine


async def test_resends_and_redeliveries_change_no_count() -> None:
    purchases = random_purchases(random.Random(4), 100)
    once = await fold(purchases)
    store = MemoryStore()
    tallies = await basket_tallier(categories=fake_catalogue)(purchases)
    deliveries = [
        Delivery(p, "purchases", 0, i, t) for i, (p, t) in enumerate(zip(purchases, tallies, strict=True))
    ]
    await store.apply_batch(deliveries)
    await store.apply_batch(deliveries[:40])  # redelivered: same partition and offsets
    resent = [Delivery(d.event, "purchases", 1, 100 + i, d.tallies) for i, d in enumerate(deliveries[::3])]
    await store.apply_batch(resent)  # producer resends: same event_id, new offsets
    assert store.counters == once.counters


def test_refunds_and_baskets_without_usable_names_add_nothing() -> None:
    refund = Purchase("e1", "c1", 0, -100, "refund", items=(Item("a", 1, 1.0, "X"),))
    assert basket_tallies(refund, {}) == ()
    assert basket_tallies(Purchase("e2", "c1", 0, 100), {}) == ()
    odd = Purchase("e3", "c1", 0, 100, items=(Item(f"a{SEP}b", 1, 1.0, ""), Item("", 1, 1.0, f"x{SEP}")))
    assert basket_tallies(odd, {}) == ()


def test_items_without_a_category_count_at_sku_level_only() -> None:
    p = Purchase("e1", "c1", 0, 100, items=(Item("a", 1, 1.0), Item("b", 1, 1.0)))
    tables = {t.table for t in basket_tallies(p, {})}
    assert tables == {"basket:sku:n", "basket:sku:pair"}


def test_a_hostile_basket_adds_a_bounded_number_of_pairs_chosen_stably() -> None:
    items = tuple(Item(f"sku-{i}", 1, 1.0, f"cat-{i}") for i in range(1000))
    config = BasketConfig(pair_items=50)
    tallies = basket_tallies(Purchase("e1", "c1", 0, 100, items=items), {}, config)
    for level in ("sku", "category"):
        pairs = [t for t in tallies if t.table == f"basket:{level}:pair"]
        singles = [t for t in tallies if t.table == f"basket:{level}:n" and t.field != TOTAL]
        assert len(pairs) == 50 * 49 // 2 and len(singles) == 1000
    shuffled = list(items)
    random.Random(5).shuffle(shuffled)
    again = basket_tallies(Purchase("e1", "c1", 0, 100, items=tuple(shuffled)), {}, config)
    assert sorted(again, key=repr) == sorted(tallies, key=repr)
    members = pair_members([i.sku for i in items], 50)
    assert members == sorted(members) and len(set(members)) == 50
    with pytest.raises(ValueError, match="at least 2"):
        BasketConfig(pair_items=1)


async def test_the_catalogue_is_asked_once_per_batch_for_lines_without_a_category() -> None:
    asked: list[list[str]] = []

    async def catalogue(skus: Sequence[str]) -> Mapping[str, str]:
        asked.append(list(skus))
        return {"b": "B"}

    purchases = [
        Purchase("e1", "c1", 0, 100, items=(Item("a", 1, 1.0, "A"), Item("b", 1, 1.0))),
        Purchase("e2", "c2", 0, 100, items=(Item("b", 1, 1.0), Item("c", 1, 1.0))),
    ]
    first, second = await basket_tallier(categories=catalogue)(purchases)
    assert asked == [["b", "c"]]
    assert [t.field for t in first if t.table == "basket:category:pair"] == [f"A{SEP}B"]
    assert [t.field for t in second if t.table == "basket:category:n"] == [TOTAL, "B"]
    assert await basket_tallier(categories=catalogue)([]) == []
    assert len(asked) == 1


@pytest.mark.parametrize("budget", [1000, 5000, 20_000, 10**6])
async def test_the_batch_cap_is_the_largest_that_fits_the_budget(budget: int) -> None:
    rng = random.Random(budget)
    purchases = [
        Purchase(
            f"e{j}",
            f"c{j}",
            0,
            100,
            items=tuple(
                Item(f"s{j}-{i}", 1, 1.0, f"k{i % rng.randint(1, 60)}") for i in range(rng.randint(1, 150))
            ),
        )
        for j in range(40)
    ]
    config = BasketConfig(pair_items=100, batch_tallies=budget)
    named = [basket_names(p, {}, config) for p in purchases]
    cap = batch_cap(named, config)
    counted = sum(map(len, await basket_tallier(config)(purchases)))  # what the tallier really adds

    def counters(k: int | None) -> int:  # brute force: every tally of every basket cut to k names
        total = 0
        for p in named:
            for names in p.values():
                kept = sorted(names)[:k] if k else sorted(names)
                pairs = len(list(combinations(kept[:100], 2)))
                total += (1 + len(kept) + pairs) + (len(kept) if p.get("category") is names else 0)
        return total

    assert counted == counters(cap)
    if cap is None:
        assert counters(None) <= budget
    else:
        assert cap >= 2 and (counters(cap) <= budget or cap == 2) and counters(cap + 1) > budget


async def test_a_hostile_batch_adds_at_most_its_budget_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    items = [tuple(Item(f"sku-{j}-{i}", 1, 1.0, f"cat-{j}-{i}") for i in range(1000)) for j in range(50)]
    purchases = [Purchase(f"e{j}", f"c{j}", 0, 100, items=lines) for j, lines in enumerate(items)]
    config = BasketConfig(pair_items=100, batch_tallies=50_000)
    with caplog.at_level("WARNING"):
        tallies = await basket_tallier(config)(purchases)
    assert 40_000 < sum(map(len, tallies)) <= 50_000
    assert "SEGSTREAM_BASKET_BATCH_TALLIES" in caplog.text
    alone = await basket_tallier(config)(
        purchases[:1]
    )  # one such basket alone fits: every name, 2 x 4,950 pairs
    assert sum(1 for t in alone[0] if t.table.endswith(":pair")) == 2 * 4950
    assert sum(1 for t in alone[0] if t.table.endswith(":n")) == 2 * 1001

"""Rules from the tallied counts equal mlxtend's apriori + association_rules on the same baskets."""

from __future__ import annotations

import random

import pandas as pd
import pytest
from mlxtend.frequent_patterns import apriori, association_rules

from state.analytics.basket_tally import basket_tallies, table
from state.analytics.baskets import BasketCounts, Rule, partners, rules
from state.customer.memory_store import MemoryStore
from state.customer.store import Delivery
from streams.contract import Item, Purchase


def random_baskets(seed: int, count: int, names: int = 25) -> list[set[str]]:
    """Baskets of 1-8 distinct names drawn with Zipf-like weights (some pairs frequent, most rare)."""
    rng = random.Random(seed)
    population = [f"n{i:02d}" for i in range(names)]
    weights = [1 / (i + 1) for i in range(names)]
    return [set(rng.choices(population, weights, k=rng.randint(1, 8))) for _ in range(count)]


async def counts_of(baskets: list[set[str]]) -> BasketCounts:
    """Through the real tallies and the in-memory fold (category level: every name is a category)."""
    store = MemoryStore()
    purchases = [
        Purchase(f"e{i}", f"c{i % 9}", i, 100, items=tuple(Item(f"sku-{n}", 1, 1.0, n) for n in sorted(b)))
        for i, b in enumerate(baskets)
    ]
    await store.apply_batch(
        [Delivery(p, "purchases", 0, i, basket_tallies(p, {})) for i, p in enumerate(purchases)]
    )
    return BasketCounts.from_tables(
        await store.tally(table("category", "n")), await store.tally(table("category", "pair"))
    )


def mlxtend_rules(baskets: list[set[str]], min_support: float, min_confidence: float) -> pd.DataFrame:
    names = sorted(set().union(*baskets))
    onehot = pd.DataFrame([[n in b for n in names] for b in baskets], columns=names)
    frequent = apriori(onehot, min_support=min_support, use_colnames=True, max_len=2)
    found = association_rules(frequent, len(baskets), metric="confidence", min_threshold=min_confidence)
    return pd.DataFrame(
        {
            "antecedent": [next(iter(a)) for a in found["antecedents"]],
            "consequent": [next(iter(c)) for c in found["consequents"]],
            "support": found["support"],
            "confidence": found["confidence"],
            "lift": found["lift"],
        }
    )


def assert_same_rules(ours: list[Rule], theirs: pd.DataFrame) -> None:
    mine = {(r.antecedent, r.consequent): r for r in ours}
    expected = {(a, c): row for a, c, *row in theirs.itertuples(index=False)}
    assert set(mine) == set(expected), set(mine) ^ set(expected)
    for key, (support, confidence, lift) in expected.items():
        r = mine[key]
        assert abs(r.support - support) <= 1e-9, key
        assert abs(r.confidence - confidence) <= 1e-9, key
        assert abs(r.lift - lift) <= 1e-9, key


@pytest.mark.parametrize(
    ("seed", "min_support", "min_confidence"),
    [(1, 0.05, 0.0), (2, 0.02, 0.0), (3, 0.01, 0.3), (4, 0.1, 0.5), (5, 0.003, 0.0)],
)
async def test_rules_equal_mlxtend(seed: int, min_support: float, min_confidence: float) -> None:
    baskets = random_baskets(seed, 800)
    counts = await counts_of(baskets)
    assert counts.baskets == len(baskets) and counts.max_undercount == 0
    found = rules(counts, min_support, min_confidence)
    theirs = mlxtend_rules(baskets, min_support, min_confidence)
    assert len(theirs) > 0
    assert_same_rules(found, theirs)
    keys = [(-r.support, -r.confidence, r.antecedent, r.consequent) for r in found]
    assert keys == sorted(keys)


async def test_partners_are_the_rules_from_one_name() -> None:
    baskets = random_baskets(6, 500)
    counts = await counts_of(baskets)
    theirs = mlxtend_rules(baskets, 1 / len(baskets), 0.0)  # every pair seen at least once
    for name in ("n00", "n07", "n20"):
        mine = partners(counts, name)
        assert_same_rules(mine, theirs[theirs["antecedent"] == name])
        assert [r.lift for r in mine] == sorted((r.lift for r in mine), reverse=True)
        assert len(partners(counts, name, limit=3)) == 3
    assert partners(counts, "nobody") == []


def test_thresholds_are_checked_and_empty_counts_give_no_rules() -> None:
    empty = BasketCounts.from_tables({}, {})
    assert rules(empty, 0.5) == []
    for support, confidence in ((0.0, 0.0), (1.5, 0.0), (0.1, -0.1), (0.1, 1.1)):
        with pytest.raises(ValueError, match="min_support"):
            rules(empty, support, confidence)


def test_an_undercount_bound_travels_with_the_counts() -> None:
    counts = BasketCounts.from_tables({"": 10, "a": 4, "b": 5}, {"a\x1fb": 3, "a\x1fc": 0}, threshold=2)
    assert counts.max_undercount == 2 and counts.pairs == {("a", "b"): 3}
    assert counts.support("a") == 0.4 and counts.support("zzz") == 0.0

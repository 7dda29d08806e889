"""Bundles: affinities and rankings against pandas computing the same definitions another way."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from state.analytics.baskets import BasketCounts
from state.analytics.bundles import (
    Affinity,
    BundleConfig,
    Strength,
    bundle_model,
    rank_bundles,
    segment_affinity,
    segment_bundles,
    top_bundle,
)

CATEGORIES = [f"k{i}" for i in range(12)]
SEGMENTS = ["Champions", "At Risk", "New Customers"]


def customers(seed: int, count: int = 200) -> pd.DataFrame:
    """One row per (customer, category bought, baskets), segment per customer (some unevaluated)."""
    rng = random.Random(seed)
    rows = []
    for c in range(count):
        segment = rng.choice([*SEGMENTS, None])
        bias = SEGMENTS.index(segment) if segment else 0
        for k in rng.sample(CATEGORIES, rng.randint(0, 6)):
            rows.append(
                {"customer": f"c{c}", "segment": segment, "category": k, "n": rng.randint(1, 4) + bias}
            )
        if not any(r["customer"] == f"c{c}" for r in rows):
            rows.append({"customer": f"c{c}", "segment": segment, "category": None, "n": 0})
    return pd.DataFrame(rows)


def as_inputs(frame: pd.DataFrame) -> list[tuple[str | None, dict[str, int]]]:
    out = []
    for _, group in frame.groupby("customer", sort=True):
        segment = group["segment"].iloc[0]
        bought = {str(k): int(n) for k, n in zip(group["category"], group["n"], strict=True) if k is not None}
        out.append((None if segment is None or segment != segment else str(segment), bought))
    return out


@pytest.mark.parametrize("smoothing", [0.0, 10.0])
def test_affinity_is_the_smoothed_share_ratio(smoothing: float) -> None:
    frame = customers(1)
    affinity = segment_affinity(as_inputs(frame), smoothing)
    evaluated = frame[frame["segment"].notna() & frame["category"].notna()]
    population = evaluated["customer"].nunique()
    share = evaluated.groupby("category")["customer"].nunique() / population
    sizes = evaluated.groupby("segment")["customer"].nunique()
    buyers = evaluated.groupby(["segment", "category"])["customer"].nunique()
    assert dict(affinity.customers) == {str(k): int(v) for k, v in sizes.items()}
    for segment, size in sizes.items():
        for category, p in share.items():
            k = buyers.get((segment, category), 0)
            expected = ((k + smoothing * p) / (size + smoothing)) / p
            assert math.isclose(affinity.of(str(segment), str(category)), expected, rel_tol=1e-12)
    assert affinity.of(None, "k1") == 1.0 and affinity.of("Unknown segment", "k1") == 1.0


def counts(seed: int) -> BasketCounts:
    rng = random.Random(seed)
    items = {k: rng.randint(20, 200) for k in CATEGORIES}
    pairs = {
        (min(a, b), max(a, b)): rng.randint(0, min(items[a], items[b]) // 2)  # stored pairs are sorted
        for i, a in enumerate(CATEGORIES)
        for b in CATEGORIES[i + 1 :]
        if rng.random() < 0.6
    }
    return BasketCounts(1000, items, pairs)


def brute_force(
    bought: dict[str, int], segment: str | None, c: BasketCounts, affinity: Affinity, strength: str
) -> pd.DataFrame:
    """Every (antecedent bought, candidate not bought) pair, scored by lift or confidence x affinity,
    best per candidate."""
    rows = []
    for (x, y), n in c.pairs.items():
        if n / c.baskets < 0.01:
            continue
        for a, b in ((x, y), (y, x)):
            lift = (n / c.baskets) / ((c.items[a] / c.baskets) * (c.items[b] / c.baskets))
            confidence = n / c.items[a]
            if bought.get(a, 0) > 0 and bought.get(b, 0) == 0 and lift > 1:
                value = lift if strength == "lift" else confidence
                rows.append({"category": b, "score": value * affinity.of(segment, b)})
    frame = pd.DataFrame(rows, columns=["category", "score"])
    best = frame.groupby("category")["score"].max().reset_index()
    return best.sort_values(["score", "category"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )


@pytest.mark.parametrize("strength", ["confidence", "lift"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_customer_ranking_is_the_best_strength_times_affinity(seed: int, strength: Strength) -> None:
    c = counts(seed)
    affinity = segment_affinity(as_inputs(customers(seed)), 10.0)
    model = bundle_model(c, affinity, BundleConfig(min_support=0.01, limit=5, strength=strength))
    rng = random.Random(seed)
    for _ in range(30):
        bought = {k: rng.randint(1, 3) for k in rng.sample(CATEGORIES, rng.randint(1, 5))}
        segment = rng.choice([*SEGMENTS, None])
        expected = brute_force(bought, segment, c, affinity, strength).head(5)
        found = rank_bundles(bought, segment, model)
        assert [b.category for b in found] == list(expected["category"])
        assert all(
            math.isclose(b.score, s, rel_tol=1e-12) for b, s in zip(found, expected["score"], strict=True)
        )
        assert all(b.category not in bought and bought[b.because] > 0 for b in found)
        assert top_bundle(bought, segment, model) == (found[0].category if found else None)


def test_nothing_to_offer_gives_none() -> None:
    model = bundle_model(BasketCounts(0, {}, {}), Affinity())
    assert rank_bundles({"k1": 2}, None, model) == [] and top_bundle({"k1": 2}, None, model) is None
    assert top_bundle({}, None, bundle_model(counts(1), Affinity(), BundleConfig(min_support=0.01))) is None


def test_segment_bundles_rank_pairs_by_lift_and_both_affinities() -> None:
    c = counts(4)
    affinity = segment_affinity(as_inputs(customers(4)), 10.0)
    model = bundle_model(c, affinity, BundleConfig(min_support=0.01, limit=100))
    for segment in SEGMENTS:
        found = segment_bundles(segment, model)
        expected = sorted(
            (
                (
                    -((n / 1000) / ((c.items[a] / 1000) * (c.items[b] / 1000)))
                    * affinity.of(segment, a)
                    * affinity.of(segment, b),
                    (a, b),
                )
                for (a, b), n in c.pairs.items()
                if n / 1000 >= 0.01 and (n / 1000) / ((c.items[a] / 1000) * (c.items[b] / 1000)) > 1
            ),
        )
        assert [b.items for b in found] == [items for _, items in expected]
        assert all(
            math.isclose(b.score, -s, rel_tol=1e-12) for b, (s, _) in zip(found, expected, strict=True)
        )
    assert len(segment_bundles("Champions", model, limit=3)) == 3

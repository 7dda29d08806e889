"""Oracles of ``bench/eval_baskets.py`` (``make eval``, baskets): what the live counts must equal.

mlxtend's ``apriori`` + ``association_rules`` over each basket's set of categories, compared with
the rules the CLI prints (``compare_rules``); exact sku pair counts computed here with plain
Python, against which the sku level's bounded counts in Redis are held (``sku_accuracy``). Kept
apart from the run: these compute the expected side independently of segstream's tallies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import apriori, association_rules

from agents.settings import Settings
from state.adapters.redis_baskets import RedisBaskets
from state.analytics.basket_tally import pair_members

MIN_SUPPORT = 0.01
SKU_MIN_SUPPORT = 0.001
TOLERANCE = 1e-9


def category_baskets(history: pd.DataFrame) -> list[frozenset[str]]:
    """Each basket's set of categories (baskets without one left out): mlxtend's transactions."""
    found = (
        frozenset(i["category"] for i in items if i.get("category")) for items in history["items"] if items
    )
    return [b for b in found if b]


def mlxtend_rules(baskets: list[frozenset[str]]) -> pd.DataFrame:
    names = sorted(set().union(*baskets))
    index = {n: i for i, n in enumerate(names)}
    onehot = np.zeros((len(baskets), len(names)), dtype=bool)
    for row, basket in enumerate(baskets):
        onehot[row, [index[n] for n in basket]] = True
    frequent = apriori(
        pd.DataFrame(onehot, columns=names), min_support=MIN_SUPPORT, use_colnames=True, max_len=2
    )
    found = association_rules(frequent, len(baskets), metric="confidence", min_threshold=0.0)
    return pd.DataFrame(
        {
            "antecedent": [next(iter(a)) for a in found["antecedents"]],
            "consequent": [next(iter(c)) for c in found["consequents"]],
            "support": found["support"].to_numpy(),
            "confidence": found["confidence"].to_numpy(),
            "lift": found["lift"].to_numpy(),
        }
    )


def compare_rules(live: pd.DataFrame, expected: pd.DataFrame) -> dict[str, Any]:
    a = live.set_index(["antecedent", "consequent"])
    b = expected.set_index(["antecedent", "consequent"])
    common = a.index.intersection(b.index)
    worst = {
        c: float((a.loc[common, c] - b.loc[common, c]).abs().max()) if len(common) else 0.0 for c in b.columns
    }
    return {
        "rules_live": len(a),
        "rules_mlxtend": len(b),
        "missing": len(b.index.difference(a.index)),
        "extra": len(a.index.difference(b.index)),
        "max_abs_difference": worst,
        "equal": len(common) == len(a) == len(b) and max(worst.values(), default=0.0) <= TOLERANCE,
    }


def exact_sku_pairs(history: pd.DataFrame, pair_items: int) -> tuple[dict[str, int], dict[str, int], int]:
    """Exact pair counts over all baskets, and as the tallies count them (``pair_items`` bound)."""
    every: dict[str, int] = {}
    tallied: dict[str, int] = {}
    baskets = 0
    for items in history["items"]:
        skus = sorted({i["sku"] for i in items or ()})
        if not skus:
            continue
        baskets += 1
        members = set(pair_members(skus, pair_items))
        for i, a in enumerate(skus):
            for b in skus[i + 1 :]:
                field = f"{a}\x1f{b}"
                every[field] = every.get(field, 0) + 1
                if a in members and b in members:
                    tallied[field] = tallied.get(field, 0) + 1
    return every, tallied, baskets


async def sku_accuracy(settings: Settings, history: pd.DataFrame) -> dict[str, Any]:
    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    try:
        stored = await baskets.tables("sku")
    finally:
        await baskets.close()
    every, tallied, n = exact_sku_pairs(history, settings.basket_pair_items)
    t = stored.threshold
    below = [tallied.get(f, 0) - c for f, c in stored.pairs.items()]
    frequent = {f for f, c in tallied.items() if c > t}
    floor = SKU_MIN_SUPPORT * n
    true_frequent = {f for f, c in every.items() if c >= floor}
    live_frequent = {f for f, c in stored.pairs.items() if c >= floor}
    return {
        "baskets": n,
        "distinct_pairs": len(every),
        "pair_increments": int(sum(every.values())),
        "tallied_pair_increments": int(sum(tallied.values())),
        "stored_pairs": len(stored.pairs),
        "threshold": t,
        "stored_count_within_threshold": all(0 <= d <= t for d in below),
        "max_undercount_seen": max(below, default=0),
        "pairs_above_threshold": len(frequent),
        "every_pair_above_threshold_stored": frequent <= set(stored.pairs),
        f"pairs_with_support_ge_{SKU_MIN_SUPPORT}": len(true_frequent),
        "of_them_found_live": len(true_frequent & live_frequent),
        "found_live_but_not_frequent": len(live_frequent - true_frequent),
        "of_them_counted_exactly": sum(1 for f in true_frequent if stored.pairs.get(f) == every[f]),
    }

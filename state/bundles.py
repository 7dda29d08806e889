"""Bundles: categories often bought with what a customer buys, that they have not bought yet.

Inputs are the category-level basket counts (``state.analytics.baskets.BasketCounts``), each customer's
own ``cust:category`` table (baskets per category, ``state.analytics.basket_tally``) and their current
named segment.

- **Rules** kept: one-to-one category rules with support >= ``min_support``, confidence >=
  ``min_confidence`` and lift > 1 (``state.analytics.baskets.rules``).
- **Segment affinity** of category ``c`` for segment ``s``: the share of the segment's customers
  who bought ``c``, over the share of all customers who did (customers with a segment and a
  basket). The segment's share is pulled toward the population's by ``smoothing``
  pseudo-customers, ``(k + m p) / (n + m)``, so a small segment is not ranked on a handful of
  customers. A customer without a segment (not evaluated yet) has affinity 1 everywhere.
- **Customer ranking**: for each category ``c`` the customer has never bought, its score is the
  best strength of a kept rule ``a -> c`` over the categories ``a`` they have bought, times their
  segment's affinity for ``c``; the strength is the rule's confidence (default: how often a
  basket with ``a`` holds ``c``, which weighs in how common ``c`` is) or its lift (how much more
  often than chance, which favours rare categories). Highest score first (ties: category name).
- **Segment bundles**: each kept pair ``{a, b}`` scores ``lift(a, b) * affinity(a) * affinity(b)``
  for the segment: pairs bought together that the segment buys more than others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from state.analytics.baskets import BasketCounts, Rule, rules

__all__ = [
    "Affinity",
    "Bundle",
    "BundleConfig",
    "BundleModel",
    "SegmentBundle",
    "Strength",
    "bundle_model",
    "rank_bundles",
    "segment_affinity",
    "segment_bundles",
    "top_bundle",
]


Strength = Literal["lift", "confidence"]


@dataclass(frozen=True, slots=True)
class BundleConfig:
    """``strength``: what a rule ``a -> c`` contributes to ``c``'s score, its lift or its confidence."""

    min_support: float = 0.001
    min_confidence: float = 0.0
    limit: int = 10
    smoothing: float = 10.0
    strength: Strength = "confidence"


@dataclass(frozen=True, slots=True)
class Affinity:
    """``by_segment[s][c]``: segment ``s``'s affinity for category ``c`` (absent: 1)."""

    by_segment: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    customers: Mapping[str, int] = field(default_factory=dict)
    """Customers per segment the affinities were measured on."""

    def of(self, segment: str | None, category: str) -> float:
        if segment is None:
            return 1.0
        return self.by_segment.get(segment, {}).get(category, 1.0)


def segment_affinity(
    customers: Iterable[tuple[str | None, Mapping[str, int]]], smoothing: float = 10.0
) -> Affinity:
    """Affinities from ``(segment, categories bought)`` per customer (see the module docstring).

    >>> a = segment_affinity([("x", {"tea": 1}), ("x", {"tea": 2}), ("y", {"beer": 1}), ("y", {"tea": 1})], 0)
    >>> a.of("x", "tea"), a.of("y", "tea"), a.of("y", "beer"), a.of(None, "tea")
    (1.3333333333333333, 0.6666666666666666, 2.0, 1.0)
    """
    buyers: dict[str, int] = {}
    segment_buyers: dict[str, dict[str, int]] = {}
    sizes: dict[str, int] = {}
    for segment, bought in customers:
        names = [c for c, n in bought.items() if n > 0]
        if segment is None or not names:
            continue
        sizes[segment] = sizes.get(segment, 0) + 1
        mine = segment_buyers.setdefault(segment, {})
        for c in names:
            buyers[c] = buyers.get(c, 0) + 1
            mine[c] = mine.get(c, 0) + 1
    total = sum(sizes.values())
    by_segment: dict[str, dict[str, float]] = {}
    for segment, size in sizes.items():
        mine = segment_buyers[segment]
        by_segment[segment] = {
            c: ((mine.get(c, 0) + smoothing * (k / total)) / (size + smoothing)) / (k / total)
            for c, k in buyers.items()
        }
    return Affinity(by_segment, sizes)


@dataclass(frozen=True, slots=True)
class BundleModel:
    """Kept rules by antecedent (best lift first) and the segment affinities."""

    by_antecedent: Mapping[str, tuple[Rule, ...]]
    affinity: Affinity
    config: BundleConfig


def bundle_model(
    counts: BasketCounts, affinity: Affinity, config: BundleConfig = BundleConfig()
) -> BundleModel:
    by_antecedent: dict[str, list[Rule]] = {}
    for r in rules(counts, config.min_support, config.min_confidence):
        if r.lift > 1:
            by_antecedent.setdefault(r.antecedent, []).append(r)
    ordered = {a: tuple(sorted(rs, key=lambda r: (-r.lift, r.consequent))) for a, rs in by_antecedent.items()}
    return BundleModel(ordered, affinity, config)


@dataclass(frozen=True, slots=True)
class Bundle:
    """Offer ``category``: bought with ``because`` (which the customer buys) in ``confidence`` of its
    baskets, ``lift`` times more often than chance; ``affinity``: their segment's; ``score`` =
    the configured strength x affinity."""

    category: str
    score: float
    lift: float
    confidence: float
    because: str
    affinity: float


def rank_bundles(
    bought: Mapping[str, int], segment: str | None, model: BundleModel, limit: int | None = None
) -> list[Bundle]:
    """The customer's bundles, best first (at most ``limit``, default the model's).

    >>> counts = BasketCounts(10, {"a": 5, "b": 4, "c": 2}, {("a", "b"): 3, ("a", "c"): 2})
    >>> model = bundle_model(counts, Affinity(), BundleConfig(min_support=0.1))
    >>> [(b.category, b.because, round(b.score, 2)) for b in rank_bundles({"a": 3}, None, model)]
    [('b', 'a', 0.6), ('c', 'a', 0.4)]
    >>> by_lift = bundle_model(counts, Affinity(), BundleConfig(min_support=0.1, strength="lift"))
    >>> [(b.category, round(b.score, 2)) for b in rank_bundles({"a": 3}, None, by_lift)]
    [('c', 2.0), ('b', 1.5)]
    >>> rank_bundles({"a": 1, "b": 1, "c": 1}, None, model)
    []
    """
    has = {c for c, n in bought.items() if n > 0}
    best: dict[str, Bundle] = {}
    for a in sorted(has):
        for r in model.by_antecedent.get(a, ()):
            c = r.consequent
            if c in has:
                continue
            affinity = model.affinity.of(segment, c)
            score = (r.lift if model.config.strength == "lift" else r.confidence) * affinity
            if c not in best or score > best[c].score:
                best[c] = Bundle(c, score, r.lift, r.confidence, a, affinity)
    ranked = sorted(best.values(), key=lambda b: (-b.score, b.category))
    return ranked[: model.config.limit if limit is None else limit]


def top_bundle(bought: Mapping[str, int], segment: str | None, model: BundleModel) -> str | None:
    """The one category to offer the customer (the playbook's ``offer``), or None if no rule applies."""
    found = rank_bundles(bought, segment, model, limit=1)
    return found[0].category if found else None


@dataclass(frozen=True, slots=True)
class SegmentBundle:
    items: tuple[str, str]
    lift: float
    support: float
    score: float


def segment_bundles(segment: str | None, model: BundleModel, limit: int | None = None) -> list[SegmentBundle]:
    """The segment's top bundles (pairs), best score first, then the pair's names.

    >>> counts = BasketCounts(10, {"a": 5, "b": 4, "c": 2}, {("a", "b"): 3, ("a", "c"): 2})
    >>> model = bundle_model(counts, Affinity({"s": {"b": 2.0}}), BundleConfig(min_support=0.1))
    >>> [(b.items, round(b.score, 2)) for b in segment_bundles("s", model)]
    [(('a', 'b'), 3.0), (('a', 'c'), 2.0)]
    """
    found = [
        SegmentBundle(
            (r.antecedent, r.consequent),
            r.lift,
            r.support,
            r.lift * model.affinity.of(segment, r.antecedent) * model.affinity.of(segment, r.consequent),
        )
        for rs in model.by_antecedent.values()
        for r in rs
        if r.antecedent < r.consequent
    ]
    found.sort(key=lambda b: (-b.score, b.items))
    return found[: model.config.limit if limit is None else limit]

"""Association rules from basket counts: support, confidence and lift of ``a -> b``.

With ``N`` baskets (those with an item at the level), ``n(a)`` baskets containing ``a`` and
``n(a, b)`` containing both (``state.analytics.basket_tally`` counts each name once per basket):

- support(a -> b) = n(a, b) / N, the share of baskets with both;
- confidence(a -> b) = support(a, b) / support(a), how often a basket with ``a`` also has ``b``;
- lift(a -> b) = confidence(a -> b) / support(b), >1 when ``b`` comes with ``a`` more than alone.

These are the definitions of mlxtend's ``apriori`` + ``association_rules`` for one-item rules,
computed in the same order (supports first), so the figures agree to the last bit or so.
Rules are one name to one name: both directions of each pair whose support reaches the minimum.

Pair counts may be lower bounds (``threshold`` > 0: the pair table outgrew its bound and was
pruned, see ``state.adapters.redis_baskets``): each is then at most ``threshold`` baskets below the truth,
and :attr:`BasketCounts.max_undercount` says so.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from state.analytics.basket_tally import TOTAL, split_pair

__all__ = ["BasketCounts", "Rule", "partners", "rules"]


@dataclass(frozen=True, slots=True)
class BasketCounts:
    """One level's counts: ``baskets`` (N), per name, per sorted pair; ``max_undercount``: how many
    baskets a pair count may miss (0: exact)."""

    baskets: int
    items: Mapping[str, int]
    pairs: Mapping[tuple[str, str], int]
    max_undercount: int = 0

    @classmethod
    def from_tables(cls, n: Mapping[str, int], pair: Mapping[str, int], threshold: int = 0) -> BasketCounts:
        """From the stored tables (``basket:<level>:n`` with the total in field ``""``, and
        ``basket:<level>:pair``).

        >>> c = BasketCounts.from_tables({"": 3, "a": 2, "b": 2}, {"a\\x1fb": 1})
        >>> c.baskets, c.pairs
        (3, {('a', 'b'): 1})
        """
        items = {k: v for k, v in n.items() if k != TOTAL}
        return cls(n.get(TOTAL, 0), items, {split_pair(f): v for f, v in pair.items() if v > 0}, threshold)

    def support(self, name: str) -> float:
        return self.items.get(name, 0) / self.baskets if self.baskets else 0.0


@dataclass(frozen=True, slots=True)
class Rule:
    """``antecedent -> consequent`` with its figures; ``baskets``: n(antecedent, consequent)."""

    antecedent: str
    consequent: str
    support: float
    confidence: float
    lift: float
    baskets: int


def _directed(counts: BasketCounts, a: str, b: str, together: int) -> Rule:
    n = counts.baskets
    support = together / n
    confidence = support / (counts.items[a] / n)
    return Rule(a, b, support, confidence, confidence / (counts.items[b] / n), together)


def _both_ways(counts: BasketCounts, a: str, b: str, together: int) -> Iterator[Rule]:
    if together <= 0 or counts.items.get(a, 0) <= 0 or counts.items.get(b, 0) <= 0:
        return  # a pair without its single counts cannot happen with tallies; skip, never divide by 0
    yield _directed(counts, a, b, together)
    yield _directed(counts, b, a, together)


def rules(counts: BasketCounts, min_support: float, min_confidence: float = 0.0) -> list[Rule]:
    """Every one-to-one rule with support >= ``min_support`` and confidence >= ``min_confidence``,
    by support, confidence (both descending), then antecedent and consequent.

    >>> c = BasketCounts(4, {"a": 2, "b": 3, "c": 1}, {("a", "b"): 2, ("b", "c"): 1})
    >>> [(r.antecedent, r.consequent, r.support, r.confidence) for r in rules(c, 0.5)]
    [('a', 'b', 0.5, 1.0), ('b', 'a', 0.5, 0.6666666666666666)]
    """
    if not 0 < min_support <= 1 or not 0 <= min_confidence <= 1:
        raise ValueError("min_support must be in (0, 1] and min_confidence in [0, 1]")
    if counts.baskets <= 0:
        return []
    found = [
        r
        for (a, b), together in counts.pairs.items()
        if together / counts.baskets >= min_support
        for r in _both_ways(counts, a, b, together)
        if r.confidence >= min_confidence
    ]
    return sorted(found, key=lambda r: (-r.support, -r.confidence, r.antecedent, r.consequent))


def partners(counts: BasketCounts, name: str, limit: int | None = None) -> list[Rule]:
    """The rules ``name -> x`` for every ``x`` bought with ``name``, by lift, then support,
    then ``x`` (``limit``: the first so many).

    >>> c = BasketCounts(4, {"a": 2, "b": 3, "c": 1}, {("a", "b"): 2, ("a", "c"): 1})
    >>> [(r.consequent, round(r.lift, 3)) for r in partners(c, "a")]
    [('c', 2.0), ('b', 1.333)]
    """
    found = [
        _directed(counts, name, b if a == name else a, together)
        for (a, b), together in counts.pairs.items()
        if name in (a, b) and together > 0 and counts.items.get(a, 0) > 0 and counts.items.get(b, 0) > 0
    ]
    found.sort(key=lambda r: (-r.lift, -r.support, r.consequent))
    return found if limit is None else found[:limit]

"""Segment profiles: what the customers of each named segment and cluster buy, who they are, how they respond.

Computed when asked (``segstream segments --profile``, ``GET /segments``), never in the
evaluator's hot path, from what the stores hold at that moment (pure: the inputs are plain data):

- members: the evaluator's saved rows with a profile (its named segment and cluster, churn band);
- per customer, how many of their baskets contained each category and how many purchases came
  through each channel (the ``cust:category`` / ``cust:channel`` tallies, ``state.analytics.profile_tallies``);
- per customer, their traits (``customer-traits``);
- the campaign exposures outside the control arm, and whether each was responded to.

Per group (every named segment of the preset, every cluster, and the whole population):

- ``top_categories``: the ``top`` categories bought by the largest share of the group's members,
  each with that ``share`` and its ``lift`` against the population (share in the group over
  share among all profiled customers; ties by name);
- ``channel_mix``: the group's purchases by channel, as shares (channel ``unknown`` when a
  purchase named none);
- ``traits``: among the members with traits, the share of each age band, income band,
  household size and household composition (``unknown`` where a trait is missing); null when
  no member has traits;
- ``response``: exposures of the members outside the control arm, the responses among them so
  far, and the rate (null without exposures);
- ``churn_share``: the share of members in the High churn band among those with a band (null
  before the churn model gives bands).

>>> rows = [{"customer_id": "a", "profile": [5, 5, 5, "Champions", 1, "x"], "band": 3},
...         {"customer_id": "b", "profile": [1, 1, 1, "Lost", 1, "x"], "band": 1}]
>>> p = segment_profiles(rows, ["Champions", "Lost"], {1: "x"}, {"a": {"SOUP": 2}, "b": {"SOUP": 1, "TEA": 1}},
...                      {"a": {"web": 3}}, {}, [("a", True)])
>>> p["segments"][1]["top_categories"], p["segments"][0]["response"], p["population"]["churn_share"]
([{'category': 'SOUP', 'share': 1.0, 'lift': 1.0}, {'category': 'TEA', 'share': 1.0, 'lift': 2.0}], {'exposures': 1, 'responses': 1, 'rate': 1.0}, 0.5)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from streams.catalogue_contract import Traits

__all__ = ["HIGH_BAND", "TOP_CATEGORIES", "TRAIT_FIELDS", "UNKNOWN", "segment_profiles"]

TOP_CATEGORIES = 5
HIGH_BAND = 3  # state.models.alerts.HIGH
UNKNOWN = "unknown"
TRAIT_FIELDS = ("age_band", "income_band", "household_size", "household_composition")


def _shares(counts: Mapping[str, int]) -> dict[str, float]:
    """Counts as shares of their total, largest first (ties by name); empty for no counts."""
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {k: round(v / total, 4) for k, v in ordered if v} if total else {}


class _Group:
    """The figures of one group, accumulated member by member."""

    def __init__(self) -> None:
        self.members = 0
        self.bought: Counter[str] = Counter()  # category -> members who bought it
        self.channels: Counter[str] = Counter()  # channel -> purchases
        self.with_traits = 0
        self.traits: dict[str, Counter[str]] = {f: Counter() for f in TRAIT_FIELDS}
        self.exposures = 0
        self.responses = 0
        self.banded = 0
        self.high = 0

    def add(
        self,
        categories: Mapping[str, int],
        channels: Mapping[str, int],
        traits: Traits | None,
        exposures: tuple[int, int],
        band: int,
    ) -> None:
        self.members += 1
        self.bought.update(c for c, n in categories.items() if n > 0)
        self.channels.update({c: n for c, n in channels.items() if n > 0})
        if traits is not None:
            self.with_traits += 1
            for f in TRAIT_FIELDS:
                self.traits[f][getattr(traits, f) or UNKNOWN] += 1
        self.exposures += exposures[0]
        self.responses += exposures[1]
        if band > 0:
            self.banded += 1
            self.high += band == HIGH_BAND

    def report(self, population: _Group, top: int) -> dict[str, Any]:
        ranked = sorted(self.bought.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return {
            "customers": self.members,
            "top_categories": [
                {
                    "category": c,
                    "share": round(n / self.members, 4),
                    "lift": round((n / self.members) / (population.bought[c] / population.members), 3),
                }
                for c, n in ranked
            ],
            "channel_mix": _shares(self.channels),
            "traits": None
            if not self.with_traits
            else {"customers": self.with_traits, **{f: _shares(self.traits[f]) for f in TRAIT_FIELDS}},
            "response": {
                "exposures": self.exposures,
                "responses": self.responses,
                "rate": round(self.responses / self.exposures, 4) if self.exposures else None,
            },
            "churn_share": round(self.high / self.banded, 4) if self.banded else None,
        }


def segment_profiles(
    records: Iterable[Mapping[str, Any]],
    segments: Sequence[str],
    cluster_names: Mapping[int, str],
    categories: Mapping[str, Mapping[str, int]],
    channels: Mapping[str, Mapping[str, int]],
    traits: Mapping[str, Traits],
    exposures: Iterable[tuple[str, bool]],
    top: int = TOP_CATEGORIES,
) -> dict[str, Any]:
    """The profile of every named segment (``segments`` order), cluster (id order) and the population.

    ``records``: the evaluator's saved rows (those without a profile are left out);
    ``exposures``: ``(customer_id, responded)`` per exposure outside the control arm.
    """
    per_customer: dict[str, list[int]] = {}
    for customer, responded in exposures:
        seen = per_customer.setdefault(customer, [0, 0])
        seen[0] += 1
        seen[1] += bool(responded)
    population = _Group()
    by_segment = {s: _Group() for s in segments}
    by_cluster = {c: _Group() for c in sorted(cluster_names)}
    for row in records:
        profile = row.get("profile")
        if not profile:
            continue
        customer = str(row["customer_id"])
        counts = per_customer.get(customer, [0, 0])
        args = (
            categories.get(customer, {}),
            channels.get(customer, {}),
            traits.get(customer),
            (counts[0], counts[1]),
            int(row.get("band", 0)),
        )
        population.add(*args)
        if profile[3] in by_segment:
            by_segment[profile[3]].add(*args)
        if profile[4] is not None and profile[4] in by_cluster:
            by_cluster[profile[4]].add(*args)
    return {
        "top": top,
        "population": population.report(population, top) if population.members else None,
        "segments": [{"segment": s, **g.report(population, top)} for s, g in by_segment.items() if g.members],
        "clusters": [
            {"cluster": c, "name": cluster_names[c], **g.report(population, top)}
            for c, g in by_cluster.items()
            if g.members
        ],
    }

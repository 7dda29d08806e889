"""The bundle model from the live state: category counts, customers' categories, their segments.

Shared by the worker's pages (``agents.baskets``) and ``segstream export customers``: both
rank a customer's bundles with the same model, so they list the same categories.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from state.analytics.basket_tally import CUSTOMER_TABLE
from state.analytics.baskets import BasketCounts
from state.analytics.bundles import BundleConfig, BundleModel, bundle_model, rank_bundles, segment_affinity
from state.adapters.redis_baskets import RedisBaskets
from state.customer.store import CustomerStore

__all__ = ["LiveBundles", "load_bundles", "segment_of"]


def segment_of(record: Mapping[str, Any] | None) -> str | None:
    """A customer's current named segment from the segment evaluator's saved row (None: not yet)."""
    profile = record.get("profile") if record else None
    return str(profile[3]) if profile else None


@dataclass(frozen=True, slots=True)
class LiveBundles:
    """The model, and what each customer it was built from has bought (``cust:category``)."""

    model: BundleModel
    bought: Mapping[str, Mapping[str, int]]
    segments: Mapping[str, str | None]

    def lists(self, customer_ids: Iterable[str]) -> list[list[str]]:
        """Each customer's bundle categories, best first (empty for a customer with none)."""
        return [
            [b.category for b in rank_bundles(self.bought.get(c, {}), self.segments.get(c), self.model)]
            for c in customer_ids
        ]


async def load_bundles(
    baskets: RedisBaskets,
    store: CustomerStore,
    records: Iterable[Mapping[str, Any]],
    customer_ids: Iterable[str],
    config: BundleConfig,
) -> LiveBundles:
    """Read the category tables and the customers' own ones; affinities come from the customers
    with a segment in ``records`` (the evaluator's saved rows)."""
    tables = await baskets.tables("category")
    counts = BasketCounts.from_tables(tables.items, tables.pairs, tables.threshold)
    segments = {str(r["customer_id"]): segment_of(r) for r in records}
    ids = sorted(set(customer_ids) | set(segments))
    bought = await store.tallies(CUSTOMER_TABLE, ids)
    affinity = segment_affinity(((segments[c], bought[c]) for c in segments), config.smoothing)
    return LiveBundles(bundle_model(counts, affinity, config), bought, segments)

"""The analytics counters a worker folds with each purchase: one :data:`state.customer.tally.Tallier` per feature.

Each analytics feature (basket counts, cohorts, best time, segment profiles' mixes) adds its
tallier here; the worker combines them and hands the result to ``agents.ingest.ingest_batch``,
so their counts are exactly once like the RFM state.
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.settings import Settings
from state.analytics.analytics_tallies import cohort_and_best_time_tallier
from state.analytics.basket_tally import BasketConfig, basket_tallier
from state.analytics.catalogue import CatalogueReader, MemoryCatalogue
from state.analytics.profile_tallies import mix_tallier
from state.customer.store import Tally
from state.customer.tally import Tallier
from streams.contract import Purchase

__all__ = ["basket_config", "build_talliers", "own_tables_only"]


def build_talliers(settings: Settings, catalogue: CatalogueReader | None = None) -> list[Tallier]:
    """The talliers a worker runs on every purchase batch, in a fixed order.

    ``catalogue``: labels basket lines that carry no category of their own, as it stands when the
    purchase is folded (None: an empty catalogue; such lines then count at sku level only).

    On a Redis Cluster (``SEGSTREAM_REDIS_CLUSTER``) the basket counts are not kept: their tables are
    shared by every customer and are folded in the same atomic call as the customer's state, which a
    cluster allows only within one hash slot. The basket tallier's per-customer counters (a
    customer's category mix) stay; a purchase with basket lines folds as usual.
    """
    labels = catalogue if catalogue is not None else MemoryCatalogue()
    baskets = basket_tallier(basket_config(settings), labels.categories_of)  # items and pairs, bundles
    return [
        own_tables_only(baskets) if settings.redis_cluster else baskets,
        cohort_and_best_time_tallier(settings.cohort_split_names),  # cohorts, best time
        mix_tallier(labels, categories=False),  # segment profiles' channels (categories: the basket tallier)
    ]


def own_tables_only(tallier: Tallier) -> Tallier:
    """``tallier`` without its shared tables: only the counters kept beside each customer's state."""

    async def tally(events: Sequence[Purchase]) -> list[tuple[Tally, ...]]:
        return [tuple(t for t in row if t.per_customer) for row in await tallier(events)]

    return tally


def basket_config(settings: Settings) -> BasketConfig:
    """The basket tallies' bounds (``SEGSTREAM_BASKET_PAIR_ITEMS``, ``_BASKET_BATCH_TALLIES``)."""
    return BasketConfig(pair_items=settings.basket_pair_items, batch_tallies=settings.basket_batch_tallies)

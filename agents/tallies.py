"""The analytics counters a worker folds with each purchase: one :data:`state.customer.tally.Tallier` per feature.

Each analytics feature (basket counts, cohorts, best time, segment profiles' mixes) adds its
tallier here; the worker combines them and hands the result to ``agents.ingest.ingest_batch``,
so their counts are exactly once like the RFM state.
"""

from __future__ import annotations

from agents.settings import Settings
from state.analytics.analytics_tallies import cohort_and_best_time_tallier
from state.analytics.basket_tally import BasketConfig, basket_tallier
from state.analytics.catalogue import CatalogueReader, MemoryCatalogue
from state.analytics.profile_tallies import mix_tallier
from state.customer.tally import Tallier

__all__ = ["basket_config", "build_talliers"]


def build_talliers(settings: Settings, catalogue: CatalogueReader | None = None) -> list[Tallier]:
    """The talliers a worker runs on every purchase batch, in a fixed order.

    ``catalogue``: labels basket lines that carry no category of their own, as it stands when the
    purchase is folded (None: an empty catalogue; such lines then count at sku level only).
    """
    labels = catalogue if catalogue is not None else MemoryCatalogue()
    return [
        basket_tallier(basket_config(settings), labels.categories_of),  # baskets: items and pairs, bundles
        cohort_and_best_time_tallier(settings.cohort_split_names),  # cohorts, best time
        mix_tallier(labels, categories=False),  # segment profiles' channels (categories: the basket tallier)
    ]


def basket_config(settings: Settings) -> BasketConfig:
    """The basket tallies' bounds (``SEGSTREAM_BASKET_PAIR_ITEMS``, ``_BASKET_BATCH_TALLIES``)."""
    return BasketConfig(pair_items=settings.basket_pair_items, batch_tallies=settings.basket_batch_tallies)

"""The analytics counters a worker folds with each purchase: one :data:`state.tally.Tallier` per feature.

Each analytics feature (basket counts, cohorts, best time, segment profiles' mixes) adds its
tallier here; the worker combines them and hands the result to ``agents.ingest.ingest_batch``,
so their counts are exactly once like the RFM state.
"""

from __future__ import annotations

from segstream.settings import Settings
from state.basket_tally import BasketConfig, CategoryLookup, basket_tallier
from state.store import CustomerStore
from state.tally import Tallier

__all__ = ["basket_config", "build_talliers"]


def build_talliers(
    store: CustomerStore, settings: Settings, categories: CategoryLookup | None = None
) -> list[Tallier]:
    """The talliers a worker runs on every purchase batch, in a fixed order.

    ``categories``: the catalogue, for basket lines without a category of their own (None: such
    lines count at sku level only).
    """
    del store  # each feature's tallier takes what it reads from these
    return [basket_tallier(basket_config(settings), categories)]


def basket_config(settings: Settings) -> BasketConfig:
    """The basket tallies' bounds (``SEGSTREAM_BASKET_PAIR_ITEMS``, ``_BASKET_BATCH_TALLIES``)."""
    return BasketConfig(pair_items=settings.basket_pair_items, batch_tallies=settings.basket_batch_tallies)

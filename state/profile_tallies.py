"""The per-customer counters segment profiles read: baskets per category, purchases per channel.

A :data:`state.customer.tally.Tallier` (registered in ``agents/tallies.py``), so the counts are folded
with their purchase, exactly once (never for a resend or a redelivery):

- ``cust:category``: per customer, for each category, the number of their purchases whose basket
  contains it (a basket with three soups counts once for SOUP). An item's category is its own
  ``category``, else the catalogue's for its sku (``state.analytics.catalogue``: one batched lookup per
  batch); an item with neither is not counted. The label is the catalogue's *when the purchase
  is folded*: a later catalogue update labels what follows, never what was counted.
- ``cust:channel``: per customer, their purchases by ``channel`` (``unknown`` when none given).

Refunds count in neither.

>>> import asyncio
>>> from state.analytics.catalogue import Keyed, MemoryCatalogue
>>> from streams.catalogue_contract import Product
>>> from streams.contract import Item, Purchase
>>> catalogue = MemoryCatalogue()
>>> _ = asyncio.run(catalogue.apply_products([Keyed("812", Product("812", "GROCERY", "SOUP"), 0, 0)], 0))
>>> basket = (Item("812", 3, 1.0), Item("9", 1, 2.0, category="TEA"), Item("10", 1, 1.0))
>>> [t.field for t in asyncio.run(mix_tallier(catalogue)([Purchase("e1", "c1", 0, 500, items=basket)]))[0]]
['unknown', 'SOUP', 'TEA']
"""

from __future__ import annotations

from collections.abc import Sequence

from state.analytics.catalogue import CatalogueReader
from state.customer.store import Tally
from state.customer.tally import Tallier
from streams.contract import Purchase

__all__ = ["CATEGORY_TABLE", "CHANNEL_TABLE", "UNKNOWN_CHANNEL", "mix_tallier"]

CATEGORY_TABLE = "cust:category"
CHANNEL_TABLE = "cust:channel"
UNKNOWN_CHANNEL = "unknown"


def mix_tallier(catalogue: CatalogueReader, *, categories: bool = True) -> Tallier:
    """The tallier of ``cust:category`` and ``cust:channel``, labelling items from ``catalogue``.

    ``categories=False``: ``cust:channel`` only, for a worker whose basket tallier
    (``state.analytics.basket_tally``) already counts ``cust:category`` with the same rule.
    """

    async def tally(events: Sequence[Purchase]) -> list[tuple[Tally, ...]]:
        unlabelled = {
            item.sku
            for e in events
            if e.type == "purchase"
            for item in e.items or ()
            if item.category is None
        }
        labels = await catalogue.categories_of(sorted(unlabelled)) if unlabelled and categories else {}
        tallies: list[tuple[Tally, ...]] = []
        for e in events:
            if e.type != "purchase":
                tallies.append(())
                continue
            found = {item.category or labels.get(item.sku) for item in e.items or ()}
            names = sorted(c for c in found if c is not None) if categories else []
            tallies.append(
                (
                    Tally(CHANNEL_TABLE, e.channel or UNKNOWN_CHANNEL, per_customer=True),
                    *(Tally(CATEGORY_TABLE, c, per_customer=True) for c in names),
                )
            )
        return tallies

    return tally

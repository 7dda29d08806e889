"""The catalogue and traits store: the latest product per sku and the latest traits per customer.

Two compacted topics feed it (``products``, ``customer-traits``; ``streams.catalogue_contract``).
The store keeps the latest value per key and forgets a key on a tombstone. Kafka may deliver a
message again (a crash before the commit, a rebalance), so every write is fenced *per key*: the
store remembers, for each key, the offset of the last message applied from each partition of the
topic's current fence epoch (``state.customer.store``), and a message at or below it changes nothing. An
older value redelivered after a newer one therefore never overwrites it, and a tombstone's fence
stays behind, so a redelivered older value cannot bring a deleted entry back.

Readers (:class:`CatalogueReader`) look up a whole batch of keys in one round trip.

**Labelling is as of the fold.** The basket analytics label a purchase's items that carry no
``category`` of their own with :meth:`CatalogueReader.categories_of` *when the purchase is
folded*. A catalogue update labels what is folded after it; baskets already counted keep the
labels they were counted with (a later update never re-labels or re-counts them), so each
basket is counted once, with the catalogue as it stood then.

>>> import asyncio
>>> store = MemoryCatalogue()
>>> soup = Product("812", "GROCERY", "SOUP", "National")
>>> asyncio.run(store.apply_products([Keyed("812", soup, 0, 5)], epoch=0))
[True]
>>> asyncio.run(store.apply_products([Keyed("812", None, 0, 3)], epoch=0))  # older: ignored
[False]
>>> asyncio.run(store.categories_of(["812", "999"]))
{'812': 'SOUP'}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from streams.catalogue_contract import Product, Traits

__all__ = [
    "CatalogueReader",
    "CatalogueStore",
    "Keyed",
    "MemoryCatalogue",
    "brands",
    "categories",
    "departments",
]

V = TypeVar("V", Product, Traits)


@dataclass(frozen=True, slots=True)
class Keyed(Generic[V]):
    """One validated message of a compacted topic: its key, its value (None: a tombstone) and where
    Kafka delivered it from."""

    key: str
    value: V | None
    partition: int
    offset: int


def categories(products: dict[str, Product]) -> dict[str, str]:
    """The category of each product that has one."""
    return {sku: p.category for sku, p in products.items() if p.category is not None}


def departments(products: dict[str, Product]) -> dict[str, str]:
    """The department of each product."""
    return {sku: p.department for sku, p in products.items()}


def brands(products: dict[str, Product]) -> dict[str, str]:
    """The brand of each product that has one."""
    return {sku: p.brand for sku, p in products.items() if p.brand is not None}


class CatalogueReader(Protocol):
    """Lookups by batch: one round trip for all the keys asked; unknown keys are left out."""

    async def products_of(self, skus: Iterable[str]) -> dict[str, Product]: ...

    async def categories_of(self, skus: Iterable[str]) -> dict[str, str]:
        """The category of each known sku that has one."""
        ...

    async def departments_of(self, skus: Iterable[str]) -> dict[str, str]: ...

    async def brands_of(self, skus: Iterable[str]) -> dict[str, str]: ...

    async def traits_of(self, customer_ids: Iterable[str]) -> dict[str, Traits]: ...


class CatalogueStore(CatalogueReader, Protocol):
    """The write side: the worker's agents for ``products`` and ``customer-traits``."""

    async def apply_products(self, updates: Sequence[Keyed[Product]], epoch: int) -> list[bool]:
        """Apply in order, each fenced per key and partition; True where it changed the store."""
        ...

    async def apply_traits(self, updates: Sequence[Keyed[Traits]], epoch: int) -> list[bool]: ...


@dataclass
class MemoryCatalogue:
    """Dicts: the reference behaviour the Redis adapter (``state.adapters.redis_catalogue``) must match."""

    products: dict[str, Product] = field(default_factory=dict)
    traits: dict[str, Traits] = field(default_factory=dict)
    fences: dict[tuple[str, int, int, str], int] = field(default_factory=dict)

    async def apply_products(self, updates: Sequence[Keyed[Product]], epoch: int) -> list[bool]:
        return [self._apply("products", self.products, u, epoch) for u in updates]

    async def apply_traits(self, updates: Sequence[Keyed[Traits]], epoch: int) -> list[bool]:
        return [self._apply("traits", self.traits, u, epoch) for u in updates]

    def _apply(self, kind: str, table: dict[str, V], update: Keyed[V], epoch: int) -> bool:
        fence = (kind, epoch, update.partition, update.key)
        if update.offset <= self.fences.get(fence, -1):
            return False
        self.fences[fence] = update.offset
        if update.value is None:
            table.pop(update.key, None)
        else:
            table[update.key] = update.value
        return True

    async def products_of(self, skus: Iterable[str]) -> dict[str, Product]:
        return {s: self.products[s] for s in skus if s in self.products}

    async def categories_of(self, skus: Iterable[str]) -> dict[str, str]:
        return categories(await self.products_of(skus))

    async def departments_of(self, skus: Iterable[str]) -> dict[str, str]:
        return departments(await self.products_of(skus))

    async def brands_of(self, skus: Iterable[str]) -> dict[str, str]:
        return brands(await self.products_of(skus))

    async def traits_of(self, customer_ids: Iterable[str]) -> dict[str, Traits]:
        return {c: self.traits[c] for c in customer_ids if c in self.traits}

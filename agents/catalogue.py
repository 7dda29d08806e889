"""The worker's agents for the compacted ``products`` and ``customer-traits`` topics, and ``GET /products/{sku}``.

Each agent takes batches off its topic and hands them to :func:`agents.catalogue_ingest.ingest_catalogue_batch`
(latest value per key in Redis, fenced per key; bad messages to ``products.dlq`` /
``customer-traits.dlq``). A failed batch exits the worker without committing, as for purchases
(``finish``: the worker's ``_finish_or_exit``).
"""

from __future__ import annotations

from typing import Any

import faust
import msgspec
from prometheus_client import Counter

from agents import metrics
from agents.catalogue_ingest import CatalogueBatchResult, CatalogueKind, ingest_catalogue_batch
from agents.ingest import RawMessage
from agents.pipeline import Finish, batch_agent, dead_letter_publisher
from agents.settings import Settings
from state.analytics.catalogue import CatalogueReader, CatalogueStore
from state.customer.store import CustomerStore
from streams import topics
from streams.limits import InputLimits

__all__ = ["CATALOGUE_UPDATES", "register_catalogue", "register_catalogue_pages", "traits_document"]

CATALOGUE_UPDATES = Counter(
    "segstream_catalogue_updates",
    "products and customer-traits messages consumed, by topic and outcome "
    "(stored, deleted, stale = a redelivery at or below its key's fence, invalid = dead-lettered)",
    ["topic", "outcome"],
    registry=metrics.REGISTRY,
)

_SOURCES: tuple[tuple[CatalogueKind, str, str], ...] = (
    ("products", topics.PRODUCTS, topics.PRODUCTS_DLQ),
    ("traits", topics.CUSTOMER_TRAITS, topics.CUSTOMER_TRAITS_DLQ),
)


def register_catalogue(
    app: faust.App,
    settings: Settings,
    store: CustomerStore,
    catalogue: CatalogueStore,
    limits: InputLimits,
    finish: Finish,
) -> None:
    """One agent per compacted input topic."""
    for kind, name, dlq in _SOURCES:
        _register(app, settings, kind, name, dlq, store, catalogue, limits, finish)


def _register(
    app: faust.App,
    settings: Settings,
    kind: CatalogueKind,
    name: str,
    dlq: str,
    store: CustomerStore,
    catalogue: CatalogueStore,
    limits: InputLimits,
    finish: Finish,
) -> None:
    source = topics.declare(app, settings, name)
    dead_letters = topics.declare(app, settings, dlq)

    publish = dead_letter_publisher(dead_letters)

    async def process(messages: list[RawMessage]) -> None:
        result = await ingest_catalogue_batch(kind, messages, store, catalogue, publish, limits=limits)
        _observe(name, result)

    batch_agent(app, source, f"catalogue-{name}", settings, process, finish)


def _observe(topic: str, result: CatalogueBatchResult) -> None:
    for outcome, count in (("stored", result.stored), ("deleted", result.deleted), ("stale", result.stale)):
        if count:
            CATALOGUE_UPDATES.labels(topic, outcome).inc(count)
    if result.invalid_reasons:
        CATALOGUE_UPDATES.labels(topic, "invalid").inc(len(result.invalid_reasons))


def traits_document(found: Any) -> dict[str, Any] | None:
    """A :class:`~streams.catalogue_contract.Traits` as plain JSON (None stays None)."""
    return None if found is None else msgspec.to_builtins(found)


def register_catalogue_pages(app: faust.App, catalogue: CatalogueReader) -> None:
    """``GET /products/{sku}``: the latest ``products`` value the store holds (``schemas/product``), or 404."""

    @app.page("/products/{sku}")
    async def product(web: Any, request: Any, sku: str) -> Any:
        found = (await catalogue.products_of([sku])).get(sku)
        if found is None:
            return web.json({"error": f"unknown product {sku!r}"}, status=404)
        return web.json(msgspec.to_builtins(found))

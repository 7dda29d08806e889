"""One batch of ``products`` or ``customer-traits`` messages in: latest values stored, dead letters out.

Kept free of Faust (like ``agents.ingest``) so it is unit-testable with the memory stores;
``agents.catalogue`` feeds it from the worker's agents. As for purchases: the dead letters are in
Kafka and the values in Redis before the batch is recorded as consumed, and the store's per-key
offset fences (``state.analytics.catalogue``) make a redelivered batch harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from agents.ingest import PublishDeadLetters, RawMessage, dead_letter_rejects
from state.analytics.catalogue import CatalogueStore, Keyed
from state.customer.store import CustomerStore, highest_per_key
from streams.catalogue_contract import Product, Traits, decode_product, decode_traits
from streams.contract import DEFAULT_LIMITS
from streams.limits import InputLimits, InvalidEvent

__all__ = ["CatalogueBatchResult", "CatalogueKind", "ingest_catalogue_batch"]

log = logging.getLogger(__name__)
CatalogueKind = Literal["products", "traits"]


@dataclass(frozen=True, slots=True)
class CatalogueBatchResult:
    stored: int  # values written (new or newer)
    deleted: int  # tombstones applied
    stale: int  # at or below their key's fence: a redelivery, changed nothing
    invalid_reasons: list[str]


async def ingest_catalogue_batch(
    kind: CatalogueKind,
    messages: Sequence[RawMessage],
    store: CustomerStore,
    catalogue: CatalogueStore,
    publish_dead_letters: PublishDeadLetters,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    limits: InputLimits = DEFAULT_LIMITS,
) -> CatalogueBatchResult:
    """Validate one batch of one topic, store the valid messages in order, dead-letter the rest.

    Returns once the dead letters are in Kafka and the values in Redis; then records the batch
    as consumed (where the worker resumes the partition after a restart).
    """
    products: list[tuple[RawMessage, Keyed[Product]]] = []
    traits: list[tuple[RawMessage, Keyed[Traits]]] = []
    rejected: list[tuple[RawMessage, str]] = []
    for m in messages:
        try:
            if kind == "products":
                sku, product = decode_product(m.key, m.value, limits)
                products.append((m, Keyed(sku, product, m.partition, m.offset)))
            else:
                customer, found = decode_traits(m.key, m.value, limits)
                traits.append((m, Keyed(customer, found, m.partition, m.offset)))
        except InvalidEvent as exc:
            rejected.append((m, exc.reason))
        except Exception as exc:  # a decoder bug must not crash-loop the partition: dead-letter, loudly
            log.exception("decoding %s[%d]@%d raised; dead-lettering it", m.topic, m.partition, m.offset)
            rejected.append((m, f"payload: could not be decoded ({type(exc).__name__})"))
    reasons = await dead_letter_rejects(
        rejected, store, publish_dead_letters, now(), limits, count_invalid=False
    )
    topic = messages[0].topic if messages else ""
    epoch = await store.fence_epoch(topic) if products or traits else 0
    if kind == "products":
        applied = await catalogue.apply_products([k for _, k in products], epoch)
        tombstones = [k.value is None for _, k in products]
    else:
        applied = await catalogue.apply_traits([k for _, k in traits], epoch)
        tombstones = [k.value is None for _, k in traits]
    await store.record_consumed(highest_per_key(((m.topic, m.partition), m.offset + 1) for m in messages))
    deleted = sum(a and t for a, t in zip(applied, tombstones, strict=True))
    return CatalogueBatchResult(sum(applied) - deleted, deleted, len(applied) - sum(applied), reasons)

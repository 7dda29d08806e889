"""The worker's basket features: the pair tables' bound, and the HTTP pages.

- After every purchase batch, :class:`PairBound` prunes a pair table that outgrew
  ``SEGSTREAM_BASKET_MAX_PAIRS`` (``state.adapters.redis_baskets``), and logs it: from then on that level's
  pair counts may be up to the threshold below the truth, which every reader reports.
- ``GET /products/{sku}/together[?limit=N]``: what is bought with the sku (sku level): per
  partner, baskets with both, support, confidence (sku -> partner) and lift; 404 for a sku in
  no basket.
- ``GET /customers/{customer_id}/bundles``: the customer's bundles (``state.analytics.bundles``): the
  categories often bought with what they buy that they have not bought, best first; 404 for a
  customer the store has not seen.
- ``GET /segments/{segment}/bundles``: the segment's top category pairs; 404 for a segment
  without evaluated customers.

The bundle model (rules, segment affinities) is read at most every ``SEGSTREAM_BASKET_REFRESH_S``
seconds and shared by the requests in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from agents.settings import Settings
from state.analytics.basket_tally import CUSTOMER_TABLE, LEVELS, Level
from state.analytics.baskets import BasketCounts, partners
from agents.bundle_source import LiveBundles, load_bundles, segment_of
from state.analytics.bundles import BundleConfig, rank_bundles, segment_bundles
from state.customer.profile_store import ProfileStore
from state.adapters.redis_baskets import RedisBaskets
from state.adapters.redis_store import RedisStore
from streams.outputs import SCHEMA_VERSION

__all__ = ["PairBound", "bundle_config", "register_basket_pages", "together_document"]

log = logging.getLogger(__name__)
MAX_LIMIT = 1000


class PairBound:
    """Keeps each level's pair table within ``max_pairs`` counters (checked after every batch)."""

    def __init__(self, baskets: RedisBaskets, max_pairs: int, levels: tuple[Level, ...] = LEVELS) -> None:
        self._baskets, self._max, self._levels = baskets, max_pairs, levels

    async def after_batch(self) -> None:
        sizes = await self._baskets.pair_fields(self._levels)
        for level, size in sizes.items():
            if size > self._max:
                result = await self._baskets.prune(level, self._max)
                log.warning(
                    "basket %s pairs reached %d counters (SEGSTREAM_BASKET_MAX_PAIRS=%d): pruned %d of the "
                    "rarest, %d left; %s pair counts may now be up to %d baskets below the truth",
                    level,
                    size,
                    self._max,
                    result.deleted,
                    result.left,
                    level,
                    result.threshold,
                )


def together_document(sku: str, counts: BasketCounts, limit: int) -> dict[str, Any]:
    """The JSON of ``GET /products/{sku}/together``."""
    found = partners(counts, sku, limit)
    return {
        "schema_version": SCHEMA_VERSION,
        "sku": sku,
        "baskets": counts.items.get(sku, 0),
        "all_baskets": counts.baskets,
        "max_undercount": counts.max_undercount,
        "together": [
            {
                "sku": r.consequent,
                "baskets": r.baskets,
                "support": r.support,
                "confidence": r.confidence,
                "lift": r.lift,
            }
            for r in found
        ],
    }


class _Cached:
    """The live bundle model, re-read when older than ``ttl_s``."""

    def __init__(self, load: Callable[[], Awaitable[LiveBundles]], ttl_s: float) -> None:
        self._load, self._ttl = load, ttl_s
        self._value: LiveBundles | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> LiveBundles:
        async with self._lock:
            if self._value is None or time.monotonic() - self._at >= self._ttl:
                self._value = await self._load()
                self._at = time.monotonic()
            return self._value


def _limit(request: Any, default: int) -> int | str:
    text = request.query.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        return f"limit must be a whole number in 1..{MAX_LIMIT}, got {text!r}"
    return int(text)


def register_basket_pages(
    app: faust.App, store: RedisStore, profiles: ProfileStore, baskets: RedisBaskets, settings: Settings
) -> None:
    config = bundle_config(settings)

    async def load() -> LiveBundles:
        saved = await profiles.load()
        return await load_bundles(baskets, store, saved.records if saved else [], [], config)

    model = _Cached(load, settings.basket_refresh_s)

    @app.page("/products/{sku}/together")
    async def together(web: Any, request: Any, sku: str) -> Any:
        limit = _limit(request, 20)
        if isinstance(limit, str):
            return web.json({"error": limit}, status=400)
        tables = await baskets.partners("sku", sku)
        counts = BasketCounts.from_tables(tables.items, tables.pairs, tables.threshold)
        if counts.items.get(sku, 0) == 0:
            return web.json({"error": f"sku {sku!r} is in no basket"}, status=404)
        return web.json(together_document(sku, counts, limit))

    @app.page("/customers/{customer_id}/bundles")
    async def customer_bundles(web: Any, request: Any, customer_id: str) -> Any:
        if await store.get(customer_id) is None:
            return web.json({"error": f"unknown customer {customer_id!r}"}, status=404)
        live = await model.get()
        segment = segment_of(await profiles.profile(customer_id))
        bought = await store.tally(CUSTOMER_TABLE, customer_id)
        return web.json(
            {
                "schema_version": SCHEMA_VERSION,
                "customer_id": customer_id,
                "segment": segment,
                "bundles": [
                    {
                        "category": b.category,
                        "score": b.score,
                        "lift": b.lift,
                        "confidence": b.confidence,
                        "because": b.because,
                        "affinity": b.affinity,
                    }
                    for b in rank_bundles(bought, segment, live.model)
                ],
            }
        )

    @app.page("/segments/{segment}/bundles")
    async def bundles_of_segment(web: Any, request: Any, segment: str) -> Any:
        live = await model.get()
        if segment not in live.model.affinity.customers:
            return web.json({"error": f"no evaluated customers in segment {segment!r}"}, status=404)
        return web.json(
            {
                "schema_version": SCHEMA_VERSION,
                "segment": segment,
                "customers": live.model.affinity.customers[segment],
                "bundles": [
                    {"items": list(b.items), "lift": b.lift, "support": b.support, "score": b.score}
                    for b in segment_bundles(segment, live.model)
                ],
            }
        )


def bundle_config(settings: Settings) -> BundleConfig:
    """The bundle ranking's settings (``SEGSTREAM_BUNDLE_MIN_SUPPORT``, ``_COUNT``, ``_STRENGTH``)."""
    return BundleConfig(
        min_support=settings.bundle_min_support,
        limit=settings.bundle_count,
        strength=settings.bundle_strength,
    )

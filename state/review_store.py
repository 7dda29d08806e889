"""Where review counters live: the port and its in-memory twin (the reference behaviour).

One review is applied atomically with the same two fences as a purchase (``state.customer.store``):

1. **region limit**: a review of a region not seen before, when ``max_regions`` distinct
   regions are already counted, is refused (``REGION_REFUSED``: the caller dead-letters it).
   Decided by the review's region and the set of regions alone, which only grows, so a
   redelivered refused review is refused again (and dead-lettered once, by the dead-letter
   fence), never applied;
2. **offset fence**: a redelivered message (same topic/partition, offset at or below the last
   one seen for this customer, in the topic's fence epoch) changes nothing;
3. **event_id dedupe**: a producer resend (new offset, same ``event_id``) changes nothing.

An applied review adds :func:`state.analytics.reviews.increments` to its customer's counters and to its
region's. Per customer that is O(1) counters plus the set of their review event_ids; per region
O(1) counters, for at most ``max_regions`` regions (``SEGSTREAM_REVIEW_MAX_REGIONS``).
``tests/integration/test_reviews_live.py`` runs the Redis adapter (``state.adapters.redis_reviews``)
against this one.

>>> import asyncio
>>> from streams.review_contract import Review
>>> store = MemoryReviewStore(max_regions=1)
>>> d = [ReviewDelivery(Review("r1", "o1", "c1", 4, "north", 0), "reviews", 0, 7),
...      ReviewDelivery(Review("r1", "o1", "c1", 4, "north", 0), "reviews", 0, 8),
...      ReviewDelivery(Review("r2", "o2", "c1", 1, "south", 0), "reviews", 0, 9)]
>>> [o.name for o in asyncio.run(store.apply_reviews(d, {}))]
['APPLIED', 'DUPLICATE', 'REGION_REFUSED']
>>> [o.name for o in asyncio.run(store.apply_reviews(d[:1], {}))]
['REDELIVERED']
>>> asyncio.run(store.regions())["north"]["n"], asyncio.run(store.customers())["c1"]["sum"]
(1, 4)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

from state.customer.profile_store import ProfileStore
from state.customer.profiles import Profile
from state.analytics.reviews import Counters, by_segment, combine, increments, reviews_document
from state.customer.store import fence_field
from streams.limits import brief
from streams.review_contract import Review

__all__ = [
    "DEFAULT_MAX_REGIONS",
    "MemoryReviewStore",
    "ReviewDelivery",
    "ReviewOutcome",
    "ReviewStore",
    "region_refused_reason",
    "reviews_report",
]

DEFAULT_MAX_REGIONS = 1000


class ReviewOutcome(IntEnum):
    """What one delivery did (the Lua script returns the same codes)."""

    REDELIVERED = 0
    DUPLICATE = 1
    APPLIED = 2
    REGION_REFUSED = 3


@dataclass(frozen=True, slots=True)
class ReviewDelivery:
    """A validated review together with where Kafka delivered it from."""

    review: Review
    topic: str
    partition: int
    offset: int


def region_refused_reason(region: str, max_regions: int) -> str:
    """The dead letter's reason for a review whose region is over the limit.

    >>> region_refused_reason("atlantis", 2)
    "region: 'atlantis' would be a 3rd distinct region, over the limit of 2 (SEGSTREAM_REVIEW_MAX_REGIONS)"
    """
    n = max_regions + 1
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return (
        f"region: {brief(region)} would be a {n:,}{suffix} distinct region, over the limit of "
        f"{max_regions:,} (SEGSTREAM_REVIEW_MAX_REGIONS)"
    )


class ReviewStore(Protocol):
    """Review counters per region and per customer; each method is one round trip or a pipelined batch."""

    @property
    def max_regions(self) -> int:
        """How many distinct regions are counted at most."""
        ...

    async def apply_reviews(
        self, deliveries: Sequence[ReviewDelivery], epochs: Mapping[str, int]
    ) -> list[ReviewOutcome]:
        """Apply the deliveries in order, each atomically; ``epochs``: fence epoch per topic (absent: 0)."""
        ...

    async def regions(self) -> dict[str, Counters]:
        """Every region's counters (every name in ``state.analytics.reviews.COUNTERS``, 0 where none)."""
        ...

    async def customers(self) -> dict[str, Counters]:
        """Every reviewing customer's counters (as :meth:`regions`)."""
        ...


@dataclass
class MemoryReviewStore:
    """A dict-backed store for unit tests and as the reference behaviour."""

    max_regions: int = DEFAULT_MAX_REGIONS
    fences: dict[tuple[str, str], int] = field(default_factory=dict)
    seen: dict[str, set[str]] = field(default_factory=dict)
    by_customer: dict[str, Counters] = field(default_factory=dict)
    by_region: dict[str, Counters] = field(default_factory=dict)

    async def apply_reviews(
        self, deliveries: Sequence[ReviewDelivery], epochs: Mapping[str, int]
    ) -> list[ReviewOutcome]:
        return [self._apply_one(d, epochs.get(d.topic, 0)) for d in deliveries]

    def _apply_one(self, d: ReviewDelivery, epoch: int) -> ReviewOutcome:
        review = d.review
        if review.region not in self.by_region and len(self.by_region) >= self.max_regions:
            return ReviewOutcome.REGION_REFUSED
        key = (review.customer_id, fence_field(d.topic, d.partition, epoch))
        if d.offset <= self.fences.get(key, -1):
            return ReviewOutcome.REDELIVERED
        self.fences[key] = d.offset
        ids = self.seen.setdefault(review.customer_id, set())
        if review.event_id in ids:
            return ReviewOutcome.DUPLICATE
        ids.add(review.event_id)
        added = increments(review)
        for table, name in ((self.by_customer, review.customer_id), (self.by_region, review.region)):
            table[name] = combine([table.get(name, {}), added])
        return ReviewOutcome.APPLIED

    async def regions(self) -> dict[str, Counters]:
        return {name: dict(c) for name, c in self.by_region.items()}

    async def customers(self) -> dict[str, Counters]:
        return {name: dict(c) for name, c in self.by_customer.items()}


async def reviews_report(
    reviews: ReviewStore, profiles: ProfileStore, segment_order: Sequence[str] = ()
) -> dict[str, Any]:
    """What ``GET /reviews`` and ``segstream reviews`` show: :func:`state.analytics.reviews.reviews_document`
    with per segment by each reviewer's current named segment, and ``as_of_ms``, the segment
    evaluator's clock those segments are as of (None before its first save)."""
    regions, customers = await reviews.regions(), await reviews.customers()
    rows = await profiles.profiles(customers)
    segment_of = {
        c: Profile(*row["profile"]).rfm_segment for c, row in rows.items() if row.get("profile") is not None
    }
    summary = await profiles.summary()
    body = reviews_document(regions, by_segment(customers, segment_of), segment_order)
    return {"as_of_ms": int(summary["as_of_ms"]) if summary else None, **body}

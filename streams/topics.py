"""Every topic segstream reads or writes, in one place: names, partitions, Faust declarations.

Names are logical; ``Settings.topic`` adds the namespace prefix.

>>> [spec.name for spec in TOPICS]  # doctest: +NORMALIZE_WHITESPACE
['purchases', 'purchases.dlq', 'clock', 'segment-changes', 'customer-segments',
 'campaign-events', 'alerts', 'campaign-events.dlq', 'clock.dlq', 'reviews', 'reviews.dlq',
 'products', 'products.dlq', 'customer-traits', 'customer-traits.dlq', 'segment-moves']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Naming(Protocol):
    """What naming a topic needs from the settings (``agents.settings.Settings`` is one)."""

    @property
    def partitions(self) -> int: ...

    def topic(self, name: str) -> str: ...


__all__ = [
    "ALERTS",
    "ALL_TOPICS",
    "CAMPAIGN_EVENTS",
    "CAMPAIGN_EVENTS_DLQ",
    "CLOCK",
    "CLOCK_DLQ",
    "CUSTOMER_SEGMENTS",
    "CUSTOMER_TRAITS",
    "CUSTOMER_TRAITS_DLQ",
    "EVALUATION_TOPICS",
    "EVAL_DELTAS",
    "EVAL_VERSIONS",
    "PRODUCTS",
    "PRODUCTS_DLQ",
    "PURCHASES",
    "PURCHASES_DLQ",
    "REVIEWS",
    "REVIEWS_DLQ",
    "SEGMENT_CHANGES",
    "SEGMENT_MOVES",
    "TOPICS",
    "Naming",
    "TopicSpec",
    "declare",
]

PURCHASES = "purchases"
PURCHASES_DLQ = "purchases.dlq"
CLOCK = "clock"
SEGMENT_CHANGES = "segment-changes"
CUSTOMER_SEGMENTS = "customer-segments"
ALERTS = "alerts"
CAMPAIGN_EVENTS = "campaign-events"
CAMPAIGN_EVENTS_DLQ = "campaign-events.dlq"
CLOCK_DLQ = "clock.dlq"
REVIEWS = "reviews"
REVIEWS_DLQ = "reviews.dlq"
PRODUCTS = "products"
PRODUCTS_DLQ = "products.dlq"
CUSTOMER_TRAITS = "customer-traits"
CUSTOMER_TRAITS_DLQ = "customer-traits.dlq"
SEGMENT_MOVES = "segment-moves"
EVAL_VERSIONS = "eval-versions"
EVAL_DELTAS = "eval-deltas"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic segstream creates when missing."""

    name: str
    partitioned: bool  # True: ``Settings.partitions`` partitions keyed by customer_id; False: one
    description: str
    compacted: bool = False  # cleanup.policy=compact: the latest value per key is kept
    retention_ms: int | None = None  # kept this long once its segment rolled (None: the broker's)

    def partitions(self, settings: Naming) -> int:
        return settings.partitions if self.partitioned else 1


TOPICS = (
    TopicSpec(PURCHASES, True, "purchase and refund events from producers, key = customer_id"),
    TopicSpec(PURCHASES_DLQ, False, "messages that broke the purchases contract, with the reason"),
    TopicSpec(
        CLOCK, False, "event-time clock ticks: evaluate segments up to as_of (one partition: one evaluator)"
    ),
    TopicSpec(SEGMENT_CHANGES, True, "one event per customer profile change, with before/after and reason"),
    TopicSpec(CUSTOMER_SEGMENTS, True, "latest profile per customer, key = customer_id", compacted=True),
    TopicSpec(CAMPAIGN_EVENTS, True, "campaign exposures and responses, key = customer_id"),
    TopicSpec(ALERTS, True, "churn-risk and overdue alerts with the figures that triggered them"),
    TopicSpec(
        CAMPAIGN_EVENTS_DLQ, False, "messages that broke the campaign-events contract, with the reason"
    ),
    TopicSpec(
        CLOCK_DLQ,
        False,
        "clock ticks the evaluator refused, with the reason (a refused tick changes nothing)",
    ),
    TopicSpec(REVIEWS, True, "order reviews: score, region, delivery and promised dates, key = customer_id"),
    TopicSpec(REVIEWS_DLQ, False, "messages that broke the reviews contract, with the reason"),
    TopicSpec(
        PRODUCTS, True, "latest catalogue entry per product, key = sku (null value deletes)", compacted=True
    ),
    TopicSpec(PRODUCTS_DLQ, False, "messages that broke the products contract, with the reason"),
    TopicSpec(
        CUSTOMER_TRAITS,
        True,
        "latest traits per customer, key = customer_id (null value deletes)",
        compacted=True,
    ),
    TopicSpec(
        CUSTOMER_TRAITS_DLQ, False, "messages that broke the customer-traits contract, with the reason"
    ),
    TopicSpec(
        SEGMENT_MOVES, True, "entries into and exits from named segments and clusters, key = customer_id"
    ),
)
ALL_TOPICS = tuple(spec.name for spec in TOPICS)

EVALUATION_RETENTION_MS = 3_600_000
"""The evaluation topics' messages matter while an advance runs (a link reads from where the topic
ends when it starts), so an hour of them is kept; their segments roll every ten minutes."""
EVALUATION_TOPICS = (
    TopicSpec(
        EVAL_VERSIONS,
        False,
        "segstream's own: the model owner's chunks, instants and versions for every partition host",
        retention_ms=EVALUATION_RETENTION_MS,
    ),
    TopicSpec(
        EVAL_DELTAS,
        True,
        "segstream's own: each partition host's states and rows written, on the partition it hosts",
        retention_ms=EVALUATION_RETENTION_MS,
    ),
)
"""The partitioned evaluation's topics between segstream's processes (``agents/partition_link.py``):
signed pickles, not a contract for subscribers, so not in :data:`TOPICS`."""


def declare(app: Any, settings: Naming, name: str) -> Any:
    """The Faust topic for logical ``name``: raw bytes in and out (validation is ours)."""
    return app.topic(settings.topic(name), key_serializer="raw", value_serializer="raw")

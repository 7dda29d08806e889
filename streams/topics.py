"""Every topic segstream reads or writes, in one place: names, partitions, Faust declarations.

Names are logical; ``Settings.topic`` adds the namespace prefix.

>>> [spec.name for spec in TOPICS]
['purchases', 'purchases.dlq']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segstream.settings import Settings

__all__ = ["ALL_TOPICS", "PURCHASES", "PURCHASES_DLQ", "TOPICS", "TopicSpec", "declare"]

PURCHASES = "purchases"
PURCHASES_DLQ = "purchases.dlq"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic segstream creates when missing."""

    name: str
    partitioned: bool  # True: ``Settings.partitions`` partitions keyed by customer_id; False: one
    description: str

    def partitions(self, settings: Settings) -> int:
        return settings.partitions if self.partitioned else 1


TOPICS = (
    TopicSpec(PURCHASES, True, "purchase and refund events from producers, key = customer_id"),
    TopicSpec(PURCHASES_DLQ, False, "messages that broke the purchases contract, with the reason"),
)
ALL_TOPICS = tuple(spec.name for spec in TOPICS)


def declare(app: Any, settings: Settings, name: str) -> Any:
    """The Faust topic for logical ``name``: raw bytes in and out (validation is ours)."""
    return app.topic(settings.topic(name), key_serializer="raw", value_serializer="raw")

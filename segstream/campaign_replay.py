"""Publish campaign events to ``campaign-events``: ``segstream replay completejourney-campaigns``.

Events go out in event-time order, keyed by customer, as the ``schemas/campaign-event``
contract says; an exposure row's descriptor columns (``segstream.campaign_descriptors``) and
prior-purchase columns (``segstream.prior_purchases``) become the optional fields of the same
names, a missing one is left out. No clock ticks: the segment clock follows purchases only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import msgspec
import pandas as pd

from agents.settings import Settings
from segstream.campaign_descriptors import DESCRIPTOR_COLUMNS
from segstream.kafka_io import Publisher
from segstream.prior_purchases import PRIOR_COLUMNS
from segstream.replay import ReplayReport, publish_paced
from segstream.sources import occurred_at_ms
from streams.outputs import rfc3339
from streams.topics import CAMPAIGN_EVENTS

__all__ = ["campaign_wire_events", "replay_campaigns"]

_FIELDS = ("event_id", "customer_id", "campaign_id", "variant", "type")
_NUMBERS = ("campaign_type", "discount_depth", "prior_covered_spend")  # not integers


def campaign_wire_events(events: pd.DataFrame) -> Iterator[tuple[str, bytes]]:
    """``(customer_id, JSON value)`` per event row, in frame order.

    >>> events = pd.DataFrame({"event_id": ["cjc:8:1:exposure"], "customer_id": ["1"], "campaign_id": ["8"],
    ...                        "variant": ["control"], "type": ["exposure"],
    ...                        "occurred_at": [pd.Timestamp("2017-05-08", tz="UTC")]})
    >>> next(campaign_wire_events(events))
    ('1', b'{"event_id":"cjc:8:1:exposure","customer_id":"1","campaign_id":"8","variant":"control","type":"exposure","occurred_at":"2017-05-08T00:00:00.000Z"}')
    """
    encoder = msgspec.json.Encoder()
    columns = [events[field].astype(str).tolist() for field in _FIELDS]
    described = [c for c in (*DESCRIPTOR_COLUMNS, *PRIOR_COLUMNS) if c in events]
    extras = events[described].astype(object).where(events[described].notna(), None).to_dict("records")
    for *values, at, extra in zip(
        *columns, occurred_at_ms(events), extras or [{}] * len(events), strict=True
    ):
        event: dict[str, object] = dict(zip(_FIELDS, values, strict=True))
        event["occurred_at"] = rfc3339(at)
        for name, value in extra.items():
            if value is not None:  # integers as integers, the depth and the spend as numbers
                event[name] = value if name in _NUMBERS else int(value)
        yield str(event["customer_id"]), encoder.encode(event)


def replay_campaigns(
    events: pd.DataFrame,
    settings: Settings,
    *,
    speed: float | None = None,
    limit: int | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
) -> ReplayReport:
    """Publish ``events`` (``segstream.campaigns`` columns) by event time; ``speed`` caps events/s.

    ``limit`` keeps the first N events in time order.
    """
    rows = events.sort_values(["occurred_at", "event_id"], kind="stable")
    rows = rows if limit is None else rows.head(limit)
    publisher = Publisher(settings)
    try:
        return publish_paced(
            publisher,
            settings.topic(CAMPAIGN_EVENTS),
            campaign_wire_events(rows),
            len(rows),
            speed=speed,
            progress=progress,
            stop=stop,
        )
    finally:
        publisher.close()

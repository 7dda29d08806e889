"""Publish campaign events to ``campaign-events``: ``segstream replay completejourney-campaigns``.

Events go out in event-time order, keyed by customer, as the ``schemas/campaign-event``
contract says. No clock ticks: the segment clock follows purchases only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import msgspec
import pandas as pd
from tqdm import tqdm

from segstream.kafka_io import Publisher
from segstream.replay import ReplayReport
from segstream.settings import Settings
from segstream.sources import occurred_at_ms
from streams.outputs import rfc3339
from streams.topics import CAMPAIGN_EVENTS

__all__ = ["campaign_wire_events", "replay_campaigns"]

_FIELDS = ("event_id", "customer_id", "campaign_id", "variant", "type")


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
    for *values, at in zip(*columns, occurred_at_ms(events), strict=True):
        event = dict(zip(_FIELDS, values, strict=True))
        event["occurred_at"] = rfc3339(at)
        yield event["customer_id"], encoder.encode(event)


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
    topic = settings.topic(CAMPAIGN_EVENTS)
    publisher = Publisher(settings)
    bar = tqdm(total=len(rows), unit="ev", desc="published", disable=not progress, leave=True)
    started = time.perf_counter()
    sent = 0
    try:
        for key, value in campaign_wire_events(rows):
            publisher.send(topic, key, value)
            sent += 1
            if sent % 500 == 0:
                bar.update(500)
                if stop is not None and stop.is_set():
                    break
            if speed is not None and sent % 50 == 0:
                ahead = sent / speed - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
        publisher.flush()
        bar.update(sent % 500)
    finally:
        bar.close()
        publisher.close()
    return ReplayReport(sent, time.perf_counter() - started)

"""Publishing as a shop would, with its own Kafka client (plain kafka-python, no segstream code on the
sending side): used by ``tests/integration/test_event_clock.py`` and ``bench/no_ticks.py``."""

from __future__ import annotations

from collections.abc import Sequence

from kafka import KafkaProducer

from agents.settings import Settings
from streams.topics import PURCHASES


def publish_plain(settings: Settings, messages: Sequence[tuple[str, bytes]]) -> None:
    """Send ``(customer_id, value)`` messages to ``purchases`` with a plain producer, keyed by customer."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20)
    try:
        for key, value in messages:
            producer.send(settings.topic(PURCHASES), key=key.encode(), value=value)
        producer.flush()
    finally:
        producer.close()

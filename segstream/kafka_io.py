"""kafka-python edge for the command line: topic creation, publishing, reading back.

Every client logs in with :meth:`Settings.kafka_client_kwargs` (PLAINTEXT or SASL_SSL).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from agents.settings import Settings
from streams.outputs import tick_message
from streams.topics import CAMPAIGN_EVENTS, CLOCK, EVALUATION_TOPICS, PURCHASES, TOPICS, TopicSpec

__all__ = ["KAFKA_ERRORS", "ConsumedMessage", "Publisher", "ensure_topics", "read_topic", "send_tick"]

KAFKA_ERRORS: tuple[type[Exception], ...] = (KafkaError,)
"""Errors a command reports in one line (e.g. no broker at SEGSTREAM_KAFKA_URL)."""


def _topic_configs(spec: TopicSpec) -> dict[str, str]:
    if spec.compacted:
        return {"cleanup.policy": "compact"}
    if spec.retention_ms is not None:
        return {"retention.ms": str(spec.retention_ms), "segment.ms": str(max(1, spec.retention_ms // 6))}
    return {}


def ensure_topics(settings: Settings, specs: Sequence[TopicSpec] | None = None) -> list[str]:
    """Create every topic of ``specs`` that does not exist yet; return the names created. By default
    segstream's topics, and the evaluation hosts' when ``SEGSTREAM_EVALUATION_HOSTS`` is on."""
    if specs is None:
        specs = (*TOPICS, *EVALUATION_TOPICS) if settings.evaluation_hosts else TOPICS
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="segstream-admin",
        **settings.kafka_client_kwargs(),
    )
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(
                settings.topic(spec.name),
                spec.partitions(settings),
                1,
                topic_configs=_topic_configs(spec),
            )
            for spec in specs
            if settings.topic(spec.name) not in existing
        ]
        created = []
        for topic in wanted:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


class Publisher:
    """Keyed JSON publisher with batching tuned for replay throughput."""

    def __init__(self, settings: Settings) -> None:
        self._producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            linger_ms=20,
            batch_size=512 * 1024,
            max_in_flight_requests_per_connection=5,
            client_id="segstream-replay",
            **settings.kafka_client_kwargs(),
        )

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        self._producer.send(topic, key=key.encode() if key is not None else None, value=value)

    def flush(self) -> None:
        self._producer.flush()

    def tick(self, settings: Settings, as_of_ms: int, source: str, *, refit: bool = False) -> None:
        """Flush, then tell the evaluator that every purchase before ``as_of_ms`` is published.

        The tick carries the purchases end offsets, so the evaluator waits for the workers
        to have processed everything published before it. ``refit``: the evaluator also refits
        the lifetime model at the tick (``segstream fit``).
        """
        self.flush()
        offsets = end_offsets(settings, settings.topic(PURCHASES))
        campaigns = end_offsets(settings, settings.topic(CAMPAIGN_EVENTS))
        message = tick_message(as_of_ms, offsets, source, refit=refit, campaign_offsets=campaigns)
        self._producer.send(settings.topic(CLOCK), value=message)
        self.flush()

    def close(self) -> None:
        self._producer.close()


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The next offset to be written, per partition of ``topic``."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, **settings.kafka_client_kwargs()
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: int(offset) for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def send_tick(settings: Settings, as_of_ms: int, source: str, *, refit: bool = False) -> None:
    """Publish one clock tick (see :meth:`Publisher.tick`)."""
    publisher = Publisher(settings)
    try:
        publisher.tick(settings, as_of_ms, source, refit=refit)
    finally:
        publisher.close()


@dataclass(frozen=True, slots=True)
class ConsumedMessage:
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def read_topic(settings: Settings, topic: str, idle_timeout_s: float = 2.0) -> Iterator[ConsumedMessage]:
    """Read a topic from the beginning to its current end (no consumer group)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=500,
        **settings.kafka_client_kwargs(),
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if end[tp] > 0}
        while remaining:
            batch = consumer.poll(timeout_ms=int(idle_timeout_s * 1000), max_records=5000)
            if not batch:
                break
            for tp, records in batch.items():
                for r in records:
                    yield ConsumedMessage(r.partition, r.offset, r.key, r.value)
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()

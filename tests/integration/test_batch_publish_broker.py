"""agents.batch_publish on the real broker, through a Faust app's producer as the worker uses it
(and through a producer of its own, made with the same settings, as the evaluator's output uses):
every message lands on its key's default-partitioner partition, each key's messages in order,
all of them acknowledged when ``publish`` returns; failures raise."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import faust
import pytest
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from agents.batch_publish import OWN_BATCH_BYTES, Message, faust_batch_publisher
from agents.settings import Settings
from agents.worker import broker_credentials
from segstream.kafka_io import read_topic
from streams import topics

pytestmark = pytest.mark.integration

Publish = Callable[[Sequence[Message]], Awaitable[int]]


@pytest.fixture(params=[False, True], ids=["faust-producer", "own-producer"])
async def publish(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Publish]:
    app = faust.App(
        f"{settings.namespace}-batch",
        broker=settings.kafka_url,
        broker_credentials=broker_credentials(settings),
    )
    await app.producer.start()
    try:
        yield faust_batch_publisher(app, own_producer=request.param)
    finally:
        await app.on_before_shutdown.send()  # stops the own producer, as the worker's shutdown does
        await app.producer.stop()


def _end_offsets(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_client_kwargs())
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


async def test_every_message_on_its_keys_partition_in_order_and_acknowledged(
    settings: Settings, publish: Publish, request: pytest.FixtureRequest
) -> None:
    names = [settings.topic(topics.SEGMENT_CHANGES), settings.topic(topics.CUSTOMER_SEGMENTS)]
    rng = random.Random(5)
    sequence: dict[tuple[str, bytes], int] = {}
    messages: list[Message] = []
    for _ in range(6000):  # ~1.5 MB: several full 16 kB batches per partition
        topic, key = rng.choice(names), f"{rng.randrange(300):05d}".encode()
        n = sequence[(topic, key)] = sequence.get((topic, key), -1) + 1
        messages.append((topic, key, f"{key.decode()}#{n}:".encode() + rng.randbytes(rng.randrange(50, 400))))

    batches = await publish(messages)

    per_partition = sum(len(k) + len(v) for _, k, v in messages) / (2 * 4)
    if "own-producer" in request.node.name:  # batches of OWN_BATCH_BYTES: one per partition here
        assert per_partition < OWN_BATCH_BYTES and batches == 2 * 4
    else:  # Faust's 16 kB: full batches were sent and new ones started
        assert per_partition > 2 * 16_384 and batches >= 2 * 4 * 2
    for topic in names:  # acknowledged: on the broker as soon as publish returned
        assert _end_offsets(settings, topic) == sum(1 for t, _, _ in messages if t == topic)
    partitioner = DefaultPartitioner()
    for topic in names:
        read = list(read_topic(settings, topic))
        assert all(m.partition == partitioner(m.key, [0, 1, 2, 3], [0, 1, 2, 3]) for m in read)
        by_key: dict[bytes, list[bytes]] = {}
        for m in sorted(read, key=lambda m: (m.partition, m.offset)):
            by_key.setdefault(m.key or b"", []).append(m.value or b"")
        sent: dict[bytes, list[bytes]] = {}
        for t, key, value in messages:
            if t == topic:
                sent.setdefault(key, []).append(value)
        assert by_key == sent  # every key's messages, each once, in the order given


async def test_a_message_over_the_request_size_raises(settings: Settings, publish: Publish) -> None:
    topic = settings.topic(topics.SEGMENT_CHANGES)
    with pytest.raises(MessageSizeTooLargeError):
        await publish([(topic, b"c1", b"x" * 2_000_000)])


async def test_a_batch_the_broker_refuses_raises(settings: Settings, publish: Publish) -> None:
    topic = settings.topic("tiny-messages")
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_client_kwargs())
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "2000"})])
    finally:
        admin.close()
    with pytest.raises(MessageSizeTooLargeError, match=r"\[Error 10\]"):  # the broker's error code, not ours
        await publish([(topic, b"c1", b"x" * 10_000)])


async def test_the_own_producer_is_apart_from_fausts(settings: Settings) -> None:
    """It publishes while the app's producer has not even started: nothing it sends queues there."""
    app = faust.App(
        f"{settings.namespace}-own",
        broker=settings.kafka_url,
        broker_credentials=broker_credentials(settings),
    )
    topic = settings.topic(topics.SEGMENT_CHANGES)
    publish = faust_batch_publisher(app, own_producer=True)
    try:
        assert await publish([(topic, b"c1", b"v1"), (topic, b"c2", b"v2")]) >= 1
        assert getattr(app.producer, "_producer", None) is None
        assert _end_offsets(settings, topic) == 2
    finally:
        await app.on_before_shutdown.send()
    with pytest.raises(RuntimeError, match="has not started"):  # the shared one, by contrast, needs the app's
        await faust_batch_publisher(app)([(topic, b"c3", b"v3")])

"""The partitioned evaluation over a real Kafka broker: owner and four hosts that share nothing but
the topics and the store publish the one evaluator's changes and alerts and save its profiles.

Each host reads only its own partition from Redis (single node and the 3-master cluster), talks
to the owner only through ``eval-versions`` / ``eval-deltas`` (``agents.partition_link``, frames
of 4 kB so that the larger messages cross the broker in many records), and at the end of each
chunk publishes, saves its rows and takes its entries out after the owner's save. Half way, one
host's reader and the owner's go back (a consumer resuming from an older offset): the copies
change nothing. The saved state is what the worker's split evaluator loads, every partition at
the owner's clock. The oracle is the worker's one evaluator (``SegmentEvaluator``) over the
same purchases in another namespace (``tests/integration/test_split_evaluation.py``'s fixtures).
"""

from __future__ import annotations

import asyncio
import pickle
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiokafka.structs import TopicPartition
from kafka import KafkaProducer

from agents.evaluator import CHUNK_STEPS
from agents.ingest import ingest_batch
from agents.kafka_login import aiokafka_login
from agents.partition_hosting import PartitionHost, PartitionsSilent, RedisOwnerSaves, evaluate_up_to
from agents.partition_link import PartitionLink, host_link, owner_link
from agents.settings import Settings
from segstream.kafka_io import ensure_topics
from state.adapters.redis_access import RedisAccess
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_evaluator import PartitionEvaluator
from state.evaluator.partition_protocol import Chunk, HostSide, Message
from state.evaluator.partitioned import PartitionedEvaluator
from state.models.alerts import Alert
from streams.frames import FrameError, frames
from streams.topics import EVAL_DELTAS, EVAL_VERSIONS, EVALUATION_TOPICS
from tests.integration.test_split_evaluation import Namespace, access, assert_same_profiles, one, ticks
from tests.unit.test_evaluator_saves import CONFIG, history
from tests.unit.test_segment_evaluator import Outbox, no_letters

pytestmark = pytest.mark.integration
__all__ = ["access", "one"]  # the fixtures, used by name

KEY = b"the namespace's key"
FRAME = 4096


@pytest.fixture
async def topics(settings: Settings) -> AsyncIterator[tuple[str, str]]:
    ensure_topics(settings, EVALUATION_TOPICS)
    yield settings.topic(EVAL_VERSIONS), settings.topic(EVAL_DELTAS)


async def rewind(link: PartitionLink, records: int) -> None:
    """Make ``link`` read its last ``records`` records of each partition again."""
    for tp in link.consumer.assignment():
        link.consumer.seek(tp, max(0, await link.consumer.position(tp) - records))


class RewindingSaves(RedisOwnerSaves):
    """The owner's saves; after the third chunk closed, one host's reader and the owner's go back."""

    def __init__(self, *args: Any, links: Sequence[PartitionLink]) -> None:
        super().__init__(*args)
        self.links, self.chunks = links, 0

    async def closed(self, chunk: Chunk) -> None:
        await super().closed(chunk)
        self.chunks += 1
        if self.chunks == 3:
            await rewind(self.links[2], 200)  # into the middle of a message, many instants back
            await rewind(self.links[-1], 3)


async def test_owner_and_hosts_over_the_broker_give_the_one_evaluators_changes_alerts_and_profiles(
    settings: Settings, topics: tuple[str, str], access: RedisAccess, one: Namespace
) -> None:
    kafka, (versions, deltas) = aiokafka_login(settings), topics
    namespace = Namespace(access)
    messages = history()
    await ingest_batch(messages, namespace.store, no_letters)
    partitions = await namespace.store.eval_partitions()
    owner = ModelOwner(CONFIG)
    outboxes = [Outbox() for _ in range(partitions + 1)]  # each host's and the owner's
    hosts = [
        PartitionHost(HostSide(PartitionEvaluator(CONFIG, p)), namespace.store, namespace.rows, outboxes[p])
        for p in range(partitions)
    ]
    links = [host_link(kafka, KEY, versions, deltas, p, FRAME) for p in range(partitions)]
    links.append(owner_link(kafka, KEY, versions, deltas, partitions, FRAME))
    saves = RewindingSaves(owner, partitions, namespace.profiles, namespace.rows, outboxes[-1], links=links)
    sent = 0
    send = links[-1].send

    async def counted(message: Message) -> None:
        nonlocal sent
        sent += 1
        await send(message)

    links[-1].send = counted  # type: ignore[method-assign]
    for link in links:
        await link.start()
    serving = [asyncio.create_task(host.serve(link, 0.2)) for host, link in zip(hosts, links, strict=False)]
    try:
        chunks = 0
        for tick in ticks(len(messages)):
            earliest = await namespace.store.earliest_due(tick.as_of_ms)  # agenda score: occurred + 1
            chunks += await evaluate_up_to(
                links[-1],
                owner,
                partitions,
                tick.as_of_ms,
                None if earliest is None else earliest - 1,
                CHUNK_STEPS,
                60.0,
                saves,
            )
        assert not any(task.done() for task in serving)  # every host still serving: none failed
        records = await links[-1].consumer.end_offsets([TopicPartition(versions, 0)])
        row = owner.population.index.__getitem__
        changes = sorted(
            (c for out in outboxes for c in out.changes), key=lambda c: (c.at_ms, row(c.customer_id))
        )
        assert changes == one.out.changes and len(changes) > 1000  # each published once
        alerts = [a for out in outboxes for a in out.alerts]
        assert Counter(map(repr, alerts)) == Counter(map(repr, one.out.alerts)) and alerts
        assert chunks > len(ticks(len(messages))) and partitions == 4  # some ticks took several chunks
        assert sum(records.values()) > sent  # messages larger than a frame crossed in several records
        assert await namespace.store.earliest_due(ticks(len(messages))[-1].as_of_ms) is None  # entries out
        await assert_same_profiles(namespace, one, sorted({c.customer_id for c in changes}))
        loaded = await namespace.evaluator(split=True).keeper.current()  # what a worker would load
        assert isinstance(loaded, PartitionedEvaluator) and not loaded.caught_up  # every partition saved
        assert loaded.clock_ms == owner.clock_ms == ticks(len(messages))[-1].as_of_ms
    finally:
        for task in serving:
            task.cancel()
        await asyncio.gather(*serving, return_exceptions=True)
        for link in links:
            await link.stop()
        await namespace.close()


class NoSaves:
    async def save(self, chunk: Chunk, alerts: Sequence[Alert]) -> None:
        raise AssertionError("no chunk ends here")

    async def closed(self, chunk: Chunk) -> None:
        raise AssertionError("no chunk ends here")


async def test_a_silent_partition_is_named_and_an_unsigned_message_refused(
    settings: Settings, topics: tuple[str, str]
) -> None:
    kafka, (versions, deltas) = aiokafka_login(settings), topics
    link = owner_link(kafka, KEY, versions, deltas, 2, FRAME)
    await link.start()
    try:
        owner = ModelOwner(CONFIG)
        with pytest.raises(PartitionsSilent, match=r"no answer from partitions \[0, 1\] for 1 s"):
            await evaluate_up_to(link, owner, 2, 10 * 86_400_000, 0, CHUNK_STEPS, 1.0, NoSaves())
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_client_kwargs())
        (forged,) = frames(1, b"\x00" * 32 + pickle.dumps(None))  # a frame of a pickle, not signed
        producer.send(deltas, forged, partition=1).get(timeout=30)
        producer.close()
        with pytest.raises(FrameError, match="not signed with this namespace's key"):
            await link.receive(30.0)
    finally:
        await link.stop()

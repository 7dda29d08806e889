"""The partitioned evaluation over a real Kafka broker: owner and four hosts that share nothing but
the topics and the store give the one evaluator's changes, alerts and models.

Each host reads only its own partition from Redis (single node and the 3-master cluster) and talks
to the owner only through ``eval-versions`` / ``eval-deltas`` (``agents.partition_link``), with
frames of 4 kB so that the larger messages cross the broker in many records. Half way, one host's
reader and the owner's go back a few records (a consumer resuming from an older offset): the
copies change nothing. The oracle is the worker's one evaluator (``SegmentEvaluator``) over the
same purchases in another namespace (``tests/integration/test_split_evaluation.py``'s fixtures).
"""

from __future__ import annotations

import asyncio
import json
import pickle
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiokafka.structs import TopicPartition
from kafka import KafkaProducer

from agents.evaluator import CHUNK_STEPS
from agents.ingest import ingest_batch
from agents.kafka_login import aiokafka_login
from agents.partition_hosting import PartitionsSilent, evaluate_up_to, serve_partition
from agents.partition_link import PartitionLink, host_link, owner_link
from agents.settings import Settings
from segstream.kafka_io import ensure_topics
from state.adapters.redis_access import RedisAccess
from state.customer.profiles import Change
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_evaluator import PartitionEvaluator
from state.evaluator.partition_protocol import Chunk, HostSide
from state.evaluator.read_model import summary_record
from state.models.alerts import Alert
from streams.frames import FrameError, frames
from streams.topics import EVAL_DELTAS, EVAL_VERSIONS, EVALUATION_TOPICS
from tests.integration.test_split_evaluation import Namespace, access, one, ticks
from tests.unit.test_evaluator_saves import CONFIG, history
from tests.unit.test_segment_evaluator import no_letters

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


async def test_owner_and_hosts_over_the_broker_give_the_one_evaluators_changes_alerts_and_models(
    settings: Settings, topics: tuple[str, str], access: RedisAccess, one: Namespace
) -> None:
    kafka, (versions, deltas) = aiokafka_login(settings), topics
    namespace = Namespace(access)
    messages = history()
    await ingest_batch(messages, namespace.store, no_letters)
    partitions = await namespace.store.eval_partitions()
    owner = ModelOwner(CONFIG)
    sides = [HostSide(PartitionEvaluator(CONFIG, p)) for p in range(partitions)]
    links = [host_link(kafka, KEY, versions, deltas, p, FRAME) for p in range(partitions)]
    owners_link = owner_link(kafka, KEY, versions, deltas, partitions, FRAME)
    sent = 0
    send = owners_link.send

    async def counted(message: object) -> None:
        nonlocal sent
        sent += 1
        await send(message)  # type: ignore[arg-type]

    owners_link.send = counted  # type: ignore[method-assign]
    chunks: list[Chunk] = []

    async def chunk_done(chunk: Chunk) -> None:
        """What the saves will do after a chunk: its agenda entries leave (the one evaluator's order)."""
        chunks.append(chunk)
        await namespace.store.done(await namespace.store.due(chunk.up_to_ms, after_ms=chunk.after_ms))
        if len(chunks) == 3:
            await rewind(links[2], 200)
            await rewind(owners_link, 3)

    for link in [*links, owners_link]:
        await link.start()
    hosts = [
        asyncio.create_task(serve_partition(link, side, namespace.store, 0.2))
        for link, side in zip(links, sides, strict=True)
    ]
    try:
        alerts: list[Alert] = []
        for tick in ticks(len(messages)):
            earliest = await namespace.store.earliest_due(tick.as_of_ms)  # agenda score: occurred + 1
            alerts += await evaluate_up_to(
                owners_link,
                owner,
                partitions,
                tick.as_of_ms,
                None if earliest is None else earliest - 1,
                CHUNK_STEPS,
                60.0,
                chunk_done,
            )
        assert not any(h.done() for h in hosts)  # every host still serving: none failed
        records = await owners_link.consumer.end_offsets([TopicPartition(versions, 0)])
    finally:
        for task in hosts:
            task.cancel()
        await asyncio.gather(*hosts, return_exceptions=True)
        for link in [*links, owners_link]:
            await link.stop()
        await namespace.close()
    changes: list[Change] = [c for side in sides for c in side.changes]
    alerts += [a for side in sides for a in side.take_alerts()]
    row = owner.population.index.__getitem__
    assert len(chunks) > len(ticks(len(messages))) and partitions == 4  # some ticks took several chunks
    assert len(one.out.changes) > 1000 and one.out.alerts
    assert sorted(changes, key=lambda c: (c.at_ms, row(c.customer_id))) == one.out.changes
    assert Counter(map(repr, alerts)) == Counter(map(repr, one.out.alerts))
    assert await one.profiles.summary() == json.loads(json.dumps(summary_record(owner.summary())))
    assert sum(records.values()) > sent  # messages larger than a frame crossed in several records


async def test_a_silent_partition_is_named_and_an_unsigned_message_refused(
    settings: Settings, topics: tuple[str, str]
) -> None:
    kafka, (versions, deltas) = aiokafka_login(settings), topics
    link = owner_link(kafka, KEY, versions, deltas, 2, FRAME)
    await link.start()
    try:
        owner = ModelOwner(CONFIG)
        with pytest.raises(PartitionsSilent, match=r"no answer from partitions \[0, 1\] for 1 s"):
            await evaluate_up_to(link, owner, 2, 10 * 86_400_000, 0, CHUNK_STEPS, 1.0)
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_client_kwargs())
        (forged,) = frames(1, b"\x00" * 32 + pickle.dumps(None))  # a frame of a pickle, not signed
        producer.send(deltas, forged, partition=1).get(timeout=30)
        producer.close()
        with pytest.raises(FrameError, match="not signed with this namespace's key"):
            await link.receive(30.0)
    finally:
        await link.stop()

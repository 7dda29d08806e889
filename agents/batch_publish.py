"""Publish many keyed messages through aiokafka's batch API: one future per batch, not per message.

Why: the evaluator publishes every segment change, latest profile, alert and segment move of a
tick, hundreds of thousands on a whole history. Faust's ``producer.send`` per message pays, for
each one, a metadata wait, a size estimate, a partition lookup, a delivery future and a Faust
signal; py-spy put aiokafka's sends at 16.9% of the evaluator's time (``make profile``).
``bench/publish_cost.py`` measures this path against that one.

Same semantics as one ``send`` per message on the same producer:

- **partition**: the producer's own partitioner (Kafka's default: murmur2 of the key, made
  positive, modulo the partition count) over the topic's partitions in id order, which is the
  call aiokafka makes in ``send``; compacted topics and subscribers rely on key -> partition;
- **order**: the messages of one partition keep the order given (so every key's do); the batches
  of a partition are queued one after the other (aiokafka queues one batch per partition at a time
  and sends them in queue order);
- **acknowledged**: the same producer, so the same ``acks``; :func:`publish` returns only when
  the broker acknowledged every batch;
- **errors** propagate: a failed send or delivery raises (the evaluator then exits without saving
  and retries from its last saved state);
- **the event loop**: the partition of each message (murmur2 in Python) is computed in a thread
  when there are many (:func:`state.adapters.off_loop.off_the_loop`);
- **size**: a message larger than ``max_request_size`` raises ``MessageSizeTooLargeError`` as
  ``send`` does; a batch holds up to the producer's batch size (``create_batch``, at most the
  request size), and when it is full it is sent and a new one started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import aiokafka
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from state.adapters.off_loop import off_the_loop

__all__ = [
    "OWN_BATCH_BYTES",
    "Batch",
    "BatchProducer",
    "Message",
    "Partitioner",
    "by_partition",
    "faust_batch_publisher",
    "fill_batches",
    "publish",
]

OWN_BATCH_BYTES = 512 * 1024
"""Largest batch of the evaluator's own producer (under Faust's and the broker's 1 MB request limits)."""

Message = tuple[str, bytes | None, bytes]
"""(topic, key, value) of one message; a message with no key goes to the partition the partitioner picks."""

Partitioner = Callable[[bytes | None, list[int], list[int]], int]
"""aiokafka's partitioner call: (key, all partitions sorted by id, available partitions) -> partition."""


class Batch(Protocol):
    """What this module uses of aiokafka's ``BatchBuilder``."""

    def append(self, *, timestamp: int | None, key: bytes | None, value: bytes | None) -> object | None:
        """The record's metadata, or None when the batch is full (it is then closed)."""


class BatchProducer(Protocol):
    """What this module uses of ``aiokafka.AIOKafkaProducer``."""

    def create_batch(self) -> Batch: ...

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> Awaitable[object]: ...

    async def partitions_for(self, topic: str) -> set[int]: ...


def by_partition(
    messages: Iterable[Message], partitions: Mapping[str, Sequence[int]], partitioner: Partitioner
) -> dict[tuple[str, int], list[tuple[bytes | None, bytes]]]:
    """The messages' (key, value) pairs per (topic, partition), each list in the order given.

    ``partitions`` has every topic's partition ids; a key's partition is computed once per topic
    (a customer's change, profile and move share it).
    """
    groups: dict[tuple[str, int], list[tuple[bytes | None, bytes]]] = {}
    seen: dict[tuple[str, bytes | None], int] = {}
    ids = {topic: sorted(ps) for topic, ps in partitions.items()}
    for topic, key, value in messages:
        partition = seen.get((topic, key))
        if partition is None:
            every = ids[topic]
            partition = seen[(topic, key)] = partitioner(key, every, every)
        groups.setdefault((topic, partition), []).append((key, value))
    return groups


def fill_batches(
    pairs: Iterable[tuple[bytes | None, bytes]], new_batch: Callable[[], Batch], max_request_size: int
) -> Iterator[Batch]:
    """The (key, value) pairs in order in as few batches as fit, each yielded once it is full.

    Raises ``MessageSizeTooLargeError`` for a message bigger than ``max_request_size`` (the check
    and the estimate aiokafka's ``send`` makes), before any batch holding it is yielded.
    """
    batch: Batch | None = None
    for key, value in pairs:
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
        if size > max_request_size:
            raise MessageSizeTooLargeError(
                f"The message is {size} bytes when serialized which is larger than the maximum "
                f"request size ({max_request_size} bytes, producer_max_request_size)"
            )
        if batch is not None and batch.append(timestamp=None, key=key, value=value) is not None:
            continue
        if batch is not None:
            yield batch
        batch = new_batch()
        if batch.append(timestamp=None, key=key, value=value) is None:  # an empty batch takes any record
            raise MessageSizeTooLargeError(f"a {size}-byte message does not fit in an empty batch")
    if batch is not None:
        yield batch


async def publish(
    producer: BatchProducer, partitioner: Partitioner, messages: Sequence[Message], max_request_size: int
) -> int:
    """Send ``messages`` in batches and wait until every batch is acknowledged; the batch count.

    Partitions are filled and queued concurrently, each partition's batches in order.
    """
    topics = sorted({topic for topic, _, _ in messages})
    partitions = {topic: sorted(await producer.partitions_for(topic)) for topic in topics}
    groups = await off_the_loop(len(messages), by_partition, messages, partitions, partitioner)

    async def send_partition(
        topic: str, partition: int, pairs: list[tuple[bytes | None, bytes]]
    ) -> list[Any]:
        return [
            await producer.send_batch(batch, topic, partition=partition)
            for batch in fill_batches(pairs, producer.create_batch, max_request_size)
        ]

    queued = await asyncio.gather(*(send_partition(t, p, pairs) for (t, p), pairs in groups.items()))
    deliveries = [future for futures in queued for future in futures]
    await asyncio.gather(*deliveries)
    return len(deliveries)


def faust_batch_publisher(
    app: Any, *, own_producer: bool = False
) -> Callable[[Sequence[Message]], Awaitable[int]]:
    """:func:`publish` through the aiokafka producer a started Faust app already holds.

    Same producer as ``app.producer.send`` (same connection, ``acks``, SASL/TLS settings), with
    Faust's partitioner and ``producer_max_request_size``. Faust's aiokafka driver keeps the
    started producer in ``_producer`` and has no public accessor for it; it is read at each call,
    so a restarted producer is picked up.

    ``own_producer``: publish through a second aiokafka producer instead, made by the same driver
    with the same settings (``_new_producer``), started on first use and stopped with the app. The
    evaluator's output uses one: a long tick queues tens of thousands of messages, and aiokafka
    sends one batch per partition at a time, so on the shared producer a live purchase's
    provisional change (``segment-changes``, the same partitions) waited behind them: up to 1.4 s
    in ``bench/freshness.py`` at a quarter of the capacity (2026-11-30). Its batches hold up to
    :data:`OWN_BATCH_BYTES` instead of Faust's 16 kB: aiokafka has one batch per partition in
    flight, so a tick's 15,000 messages took ~300 round trips to the broker, one after the other
    per partition (publishing was 1.1-1.7 s of a 2-3 s live tick in the same probe; 0.75-1.1 s
    with these batches: what is left is building the messages and the broker's work).
    """
    faust_producer = app.producer
    own: list[Any] = []  # the started own producer, once made

    async def producer_to_use() -> Any:
        if not own_producer:
            producer = getattr(faust_producer, "_producer", None)
            if producer is None:
                raise RuntimeError("the Faust producer has not started (no aiokafka producer to batch with)")
            return producer
        if not own:  # Faust's _new_producer with one change: batches of OWN_BATCH_BYTES
            producer = aiokafka.AIOKafkaProducer(
                **{
                    **faust_producer._settings_default(),
                    **faust_producer._settings_auth(),
                    **faust_producer._settings_extra(),
                    "max_batch_size": OWN_BATCH_BYTES,
                }
            )
            await producer.start()
            own.append(producer)

            async def stop(sender: Any, **kwargs: Any) -> None:
                await own.pop().stop()

            app.on_before_shutdown.connect(stop)
        return own[0]

    async def publish_batched(messages: Sequence[Message]) -> int:
        producer = await producer_to_use()
        return await publish(producer, faust_producer.partitioner, messages, faust_producer.max_request_size)

    return publish_batched

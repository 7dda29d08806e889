"""The partitioned evaluation's messages on Kafka: the owner's link and each partition host's.

Stage three of the partitioned evaluation (``docs/design-notes.md``) runs the model owner and the
partition evaluators in different processes; they exchange the messages of
:mod:`state.evaluator.partition_protocol` on two topics of segstream's own
(:data:`streams.topics.EVALUATION_TOPICS`):

- ``eval-versions``, one partition: the owner writes its chunks, advances and versions; every host
  reads it all;
- ``eval-deltas``, a partition per evaluation partition: host ``n`` writes its deltas and applied
  rows to partition ``n``; the owner reads them all.

So each sender writes to one partition, and each recipient reads that sender's messages in the
order they were sent: the one thing the protocol needs of its transport (it ignores copies, which
a producer's retry or a reader going back may deliver). Each message goes with the epoch of the
owner that runs the evaluation (``agents.partition_owner``). A message is pickled, signed with the
namespace's key and cut into frames that fit a record (:mod:`streams.frames`); a frame not signed
with the key is refused, never unpickled. Links read from where the topic ends when they start: a
host that starts late loads at the next chunk it reads; a chunk it missed the beginning of ends
in a new epoch, which an owner begins whenever a partition stays silent (``agents.partition_owner``).
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import aiokafka
from aiokafka.structs import TopicPartition

from state.evaluator.partition_protocol import Message, decode, encode
from streams.frames import FRAME_BYTES, Joiner, frames, seal, unseal

__all__ = ["Link", "LinkTimeout", "PartitionLink", "host_link", "owner_link"]

_EPOCH = struct.Struct(">Q")


class Link(Protocol):
    """What the owner's and the hosts' loops use of a link (:class:`PartitionLink`)."""

    async def send(self, epoch: int, message: Message) -> None: ...

    async def receive(self, timeout_s: float) -> tuple[int, Message]: ...


class LinkTimeout(TimeoutError):
    """Nothing arrived on a link within the time given."""


class PartitionLink:
    """Writes to one partition of one topic, reads given partitions of another."""

    def __init__(
        self,
        kafka: dict[str, Any],
        key: bytes,
        send_to: TopicPartition,
        read: Sequence[TopicPartition],
        frame_bytes: int = FRAME_BYTES,
    ) -> None:
        """``kafka``: an aiokafka client's keyword arguments (``agents.kafka_login.aiokafka_login``);
        ``key``: the namespace's key, which signs every message."""
        if not key:
            raise ValueError("the partition link needs a key to sign its messages")
        self._key = key
        self._send_to = send_to
        self._read = list(read)
        self._frame_bytes = frame_bytes
        self._producer = aiokafka.AIOKafkaProducer(
            **kafka, acks="all", enable_idempotence=True, linger_ms=0, max_request_size=2 * FRAME_BYTES
        )
        self.consumer = aiokafka.AIOKafkaConsumer(
            **kafka, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        self._joiners = {tp: Joiner() for tp in self._read}
        self._ready: deque[tuple[int, Message]] = deque()
        self._number = time.time_ns()  # a message's number: its frames', unique across restarts

    async def start(self) -> None:
        """Connect, and read from where each partition read ends now."""
        await self._producer.start()
        await self.consumer.start()
        self.consumer.assign(self._read)
        await self.consumer.seek_to_end(*self._read)
        for tp in self._read:  # resolve the end now: a message sent after start() is read
            await self.consumer.position(tp)

    async def stop(self) -> None:
        await self.consumer.stop()
        await self._producer.stop()

    async def send(self, epoch: int, message: Message) -> None:
        """Write ``message`` of ``epoch``; return when the broker acknowledged every frame of it."""
        self._number += 1
        data = seal(self._key, _EPOCH.pack(epoch) + encode(message))
        topic, partition = self._send_to
        sent = [
            await self._producer.send(topic, frame, partition=partition)
            for frame in frames(self._number, data, self._frame_bytes)
        ]
        await asyncio.gather(*sent)

    async def receive(self, timeout_s: float) -> tuple[int, Message]:
        """The next message read and its epoch; :class:`LinkTimeout` if none arrives within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not self._ready:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkTimeout(f"no message on {sorted(self._read)} for {timeout_s:g} s")
            batches = await self.consumer.getmany(timeout_ms=max(1, min(1000, round(left * 1000))))
            for tp, records in sorted(batches.items()):
                joiner = self._joiners[tp]
                for record in records:
                    data = joiner.add(record.value)
                    if data is not None:
                        opened = unseal(self._key, data)
                        self._ready.append((_EPOCH.unpack_from(opened)[0], decode(opened[_EPOCH.size :])))
        return self._ready.popleft()


def owner_link(
    kafka: dict[str, Any],
    key: bytes,
    versions: str,
    deltas: str,
    partitions: int,
    frame_bytes: int = FRAME_BYTES,
) -> PartitionLink:
    """The model owner's link: writes ``versions`` (its one partition), reads every partition of ``deltas``."""
    read = [TopicPartition(deltas, p) for p in range(partitions)]
    return PartitionLink(kafka, key, TopicPartition(versions, 0), read, frame_bytes)


def host_link(
    kafka: dict[str, Any],
    key: bytes,
    versions: str,
    deltas: str,
    partition: int,
    frame_bytes: int = FRAME_BYTES,
) -> PartitionLink:
    """Partition ``partition``'s host's link: writes its partition of ``deltas``, reads ``versions``."""
    return PartitionLink(
        kafka, key, TopicPartition(deltas, partition), [TopicPartition(versions, 0)], frame_bytes
    )

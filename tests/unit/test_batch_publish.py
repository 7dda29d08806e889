"""agents.batch_publish's pure parts: partition grouping and batch filling.

Oracles: kafka-python's murmur2 (a second implementation of the hash of Kafka's default
partitioner) and the murmur2 values of Kafka's own Java test (UtilsTest.testMurmur2); batches
are read back with aiokafka's record reader.
"""

from __future__ import annotations

import itertools
import random

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from agents.batch_publish import Message, by_partition, fill_batches

# org.apache.kafka.common.utils.UtilsTest.testMurmur2 (signed 32-bit results)
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def _messages(count: int, customers: int, seed: int) -> list[Message]:
    rng = random.Random(seed)
    topics = ("segment-changes", "customer-segments")
    return [
        (rng.choice(topics), f"{rng.randrange(customers):05d}".encode(), f"v{i}".encode())
        for i in range(count)
    ]


def test_the_partitioner_is_kafkas_murmur2() -> None:
    for key, java in JAVA_MURMUR2.items():
        assert murmur2(key) == java & 0xFFFFFFFF
        for count in (1, 3, 4, 12):
            expected = (java & 0x7FFFFFFF) % count
            assert DefaultPartitioner()(key, list(range(count)), []) == expected
            assert (kafka_python_murmur2(key) & 0x7FFFFFFF) % count == expected


@pytest.mark.parametrize("count", [1, 4, 7])
def test_each_message_goes_to_its_keys_partition_in_the_order_given(count: int) -> None:
    messages = _messages(3000, 400, seed=count)
    partitions = {"segment-changes": list(range(count)), "customer-segments": list(reversed(range(count)))}
    groups = by_partition(messages, partitions, DefaultPartitioner())

    expected: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
    for topic, key, value in messages:
        partition = (kafka_python_murmur2(key) & 0x7FFFFFFF) % count  # positive murmur2 mod count
        expected.setdefault((topic, partition), []).append((key, value))
    assert groups == expected


def _records(batch: BatchBuilder) -> list[tuple[bytes, bytes]]:
    return [(r.key, r.value) for r in DefaultRecordBatch(batch._build())]


def test_batches_hold_every_pair_in_order_and_each_is_full_before_the_next() -> None:
    rng = random.Random(3)
    pairs = [(f"{i % 50:05d}".encode(), rng.randbytes(rng.randrange(1, 900))) for i in range(2000)]
    batch_size = 16_384
    batches = list(fill_batches(pairs, lambda: BatchBuilder(batch_size, 0), max_request_size=1_000_000))

    assert len(batches) > 1
    read = [_records(b) for b in batches]
    assert [pair for records in read for pair in records] == pairs
    for records, following in itertools.pairwise(read):
        probe = BatchBuilder(batch_size, 0)  # the batch could not have taken the next pair too
        assert all(probe.append(timestamp=None, key=k, value=v) for k, v in records)
        assert probe.append(timestamp=None, key=following[0][0], value=following[0][1]) is None


def test_a_message_bigger_than_a_batch_but_not_a_request_goes_alone() -> None:
    pairs = [(b"a", b"x" * 10), (b"b", b"y" * 5000), (b"c", b"z" * 10)]
    batches = list(fill_batches(pairs, lambda: BatchBuilder(1000, 0), max_request_size=10_000))
    assert [_records(b) for b in batches] == [[pairs[0]], [pairs[1]], [pairs[2]]]


def test_a_message_bigger_than_the_request_size_raises() -> None:
    pairs = [(b"a", b"x" * 10), (b"b", b"y" * 20_000)]
    with pytest.raises(MessageSizeTooLargeError, match="larger than the maximum request size"):
        list(fill_batches(pairs, lambda: BatchBuilder(16_384, 0), max_request_size=10_000))


def test_no_pairs_no_batches() -> None:
    assert list(fill_batches([], lambda: BatchBuilder(16_384, 0), max_request_size=1000)) == []

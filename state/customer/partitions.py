"""Which evaluation partition a customer belongs to: the ``purchases`` partition Kafka's default
partitioner gives their key.

The evaluator's per-customer keys in Redis (the agenda of events not evaluated yet, their receipt
times) are cut by partition, each under its own hash tag, so that no key gathers every customer
and a Redis Cluster spreads them over its masters; the partitioned evaluator (``docs/
design-notes.md``, "Partitioned evaluation") evaluates a partition's customers where that
partition is consumed. A customer's partition is what Kafka's default partitioner (Java,
kafka-python, aiokafka and so Faust) gives a message keyed by their id: the positive murmur2 of
the key's UTF-8 bytes modulo the partition count. A producer that keys by customer id with that
partitioner puts a customer's purchases on their evaluation partition; one with another
partitioner (librdkafka's default is CRC-32) or no key still gets correct results, since the
evaluation reads a customer's events from Redis, not from the partition they arrived on; only
the locality is lost.

>>> murmur2(b"21")  # Kafka's own test vector (UtilsTest.testMurmur2): -973932308 as a signed int
3321034988
>>> [customer_partition(c, 4) for c in ("00001", "00002", "17833")]
[3, 2, 3]
"""

from __future__ import annotations

import struct

__all__ = ["customer_partition", "murmur2"]

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` of ``data``, as an unsigned 32-bit integer."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    end = length - length % 4
    for (k,) in struct.iter_unpack("<I", data[:end]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length - end
    if tail:
        if tail == 3:
            h ^= data[end + 2] << 16
        if tail >= 2:
            h ^= data[end + 1] << 8
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def customer_partition(customer_id: str, partitions: int) -> int:
    """The partition of ``partitions`` that Kafka's default partitioner gives key ``customer_id``."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions

"""A customer's evaluation partition is the one Kafka's default partitioner gives their key.

Oracles: kafka-python's and aiokafka's murmur2 (two other implementations of Kafka's
``Utils.murmur2``) and the values of Kafka's own Java test (UtilsTest.testMurmur2)."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from state.customer.partitions import customer_partition, murmur2
from tests.unit.test_batch_publish import JAVA_MURMUR2


def test_murmur2_gives_kafkas_own_test_values() -> None:
    for key, signed in JAVA_MURMUR2.items():
        assert murmur2(key) == signed & 0xFFFFFFFF


@given(st.binary(max_size=80))
def test_murmur2_agrees_with_two_other_implementations(data: bytes) -> None:
    assert murmur2(data) == kafka_python_murmur2(data) & 0xFFFFFFFF == aiokafka_murmur2(data) & 0xFFFFFFFF


@given(st.text(max_size=40), st.integers(1, 64))
def test_a_customers_partition_is_the_default_partitioners(customer_id: str, partitions: int) -> None:
    expected = (kafka_python_murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions
    assert customer_partition(customer_id, partitions) == expected


def test_customers_spread_over_every_partition() -> None:
    rng = random.Random(7)
    counts = [0] * 8
    for _ in range(8000):
        counts[customer_partition(str(rng.randrange(10**9)), 8)] += 1
    assert min(counts) > 850 and max(counts) < 1150  # 1,000 each, within 5 standard deviations


def test_no_partitions_is_refused() -> None:
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        customer_partition("c1", 0)

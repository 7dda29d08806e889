"""Hostile input on real services: bad times, huge payloads and hostile ticks change nothing.

One worker, one namespace per test. Every bad message must end in its dead-letter topic with a
reason, small enough for Kafka whatever came in, and every good message around it must be applied.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kafka import KafkaProducer

from agents.settings import Settings
from segstream.kafka_io import Publisher, read_topic
from streams.outputs import tick_message
from streams.topics import CLOCK, CLOCK_DLQ, PURCHASES, PURCHASES_DLQ
from tests.conftest import WorkerFactory, purchase, read_stats, wait_for_stats
from tests.integration.test_segments_live import evaluator_clock, wait_for_clock, watermark

pytestmark = pytest.mark.integration

GOOD_AT_MS = 1_714_557_600_000  # 2024-05-01T10:00:00Z


def big_producer(settings: Settings) -> KafkaProducer:
    """A producer that lets a message of ~1 MB through (the broker's default limit is 1,048,588 bytes)."""
    return KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", max_request_size=2_000_000)


def dead_letters(settings: Settings, topic: str) -> list[tuple[bytes | None, dict[str, Any], int]]:
    """(key, dead letter, size of the dead letter in bytes) for every message on ``topic``."""
    return [(m.key, json.loads(m.value), len(m.value)) for m in read_topic(settings, settings.topic(topic))]


def wait_for_dead_letters(settings: Settings, topic: str, count: int, timeout_s: float = 60) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    letters = dead_letters(settings, topic)
    while len(letters) < count:
        assert time.monotonic() < deadline, f"{len(letters)} dead letters on {topic}, expected {count}"
        time.sleep(0.5)
        letters = dead_letters(settings, topic)
    return letters


def test_huge_and_out_of_window_events_are_dead_lettered_and_the_good_ones_applied(
    settings: Settings, start_worker: WorkerFactory
) -> None:
    """A 900 KB non-UTF-8 message, a 1 MB JSON, a 500 KB field, 20k items (50k do not fit Kafka's
    default message size; the decoder's unit test has them), 2099 and epoch seconds,
    then 500 good purchases: all 500 applied, six small dead letters, the watermark untouched."""
    worker = start_worker(settings)
    topic = settings.topic(PURCHASES)
    bad: list[tuple[bytes, str]] = [
        (b"\xff\xfe" * 450_000, "payload:"),
        (json.dumps(purchase(customer_id="h1", note="x" * 1_000_000)).encode(), "payload:"),
        (json.dumps(purchase(customer_id="h2", order_id="o" * 500_000)).encode(), "payload:"),
        (
            json.dumps(
                purchase(customer_id="h3", items=[{"sku": "s", "quantity": 1, "unit_price": 1}] * 20_000)
            ).encode(),
            "payload:",
        ),
        (json.dumps(purchase(customer_id="h4", occurred_at="2099-01-01T00:00:00Z")).encode(), "occurred_at:"),
        (json.dumps(purchase(customer_id="h5", occurred_at=GOOD_AT_MS // 1000)).encode(), "epoch seconds"),
    ]
    producer = big_producer(settings)
    try:
        for value, _ in bad:
            producer.send(topic, key=b"hostile", value=value)
        for i in range(500):
            event = purchase(event_id=f"g{i}", customer_id=f"c{i % 50}", occurred_at=GOOD_AT_MS + i * 1000)
            producer.send(topic, key=f"c{i % 50}".encode(), value=json.dumps(event).encode())
        producer.flush()
    finally:
        producer.close()
    stats = wait_for_stats(settings, lambda s: s.applied + s.invalid >= 506, [worker], timeout_s=120)
    assert (stats.applied, stats.invalid, stats.customers) == (500, 6, 50)
    assert worker.poll() is None, "the worker must survive every one of them"
    letters = wait_for_dead_letters(settings, PURCHASES_DLQ, 6)
    assert len(letters) == 6
    for value, says in bad:
        assert any(
            says in letter["reason"] and letter["payload_size"] == len(value) for _, letter, _ in letters
        ), says
    assert all(size < 10_000 for _, _, size in letters), "a dead letter fits the producer's limit"
    assert any(
        letter["payload_truncated"] and letter["payload_encoding"] == "base64" for _, letter, _ in letters
    )
    assert watermark(settings) == GOOD_AT_MS + 499 * 1000, "only accepted events move the watermark"


def send_raw_tick(settings: Settings, value: bytes) -> None:
    publisher = Publisher(settings)
    try:
        publisher.send(settings.topic(CLOCK), None, value)
        publisher.flush()
    finally:
        publisher.close()


def test_hostile_ticks_go_to_clock_dlq_and_change_nothing(
    settings: Settings, start_worker: WorkerFactory
) -> None:
    quick = settings.model_copy(update={"tick_wait_timeout_s": 3.0})
    worker = start_worker(quick)
    publisher = Publisher(quick)
    try:
        for i in range(20):
            event = purchase(event_id=f"t{i}", customer_id=f"c{i}", occurred_at=GOOD_AT_MS + i * 60_000)
            publisher.send(quick.topic(PURCHASES), f"c{i}", json.dumps(event).encode())
        publisher.tick(quick, GOOD_AT_MS + 3_600_000, source="test")
    finally:
        publisher.close()
    wait_for_clock(quick, GOOD_AT_MS + 3_600_000, worker, timeout_s=120)
    hostile = [
        (b'{"as_of_ms": 1e30, "purchases_offsets": {}}', "as_of_ms:"),
        (tick_message(4_070_908_800_000, {}, "test"), "SEGSTREAM_MAX_CLOCK_SKEW_S"),
        (tick_message(GOOD_AT_MS + 7_200_000, {99: 1}, "test"), "partition 99"),
        (tick_message(GOOD_AT_MS + 7_200_000, {0: 10**12}, "test"), "beyond its end"),
        (b"not a tick", "payload:"),
    ]
    for value, _ in hostile:
        send_raw_tick(quick, value)
    letters = wait_for_dead_letters(quick, CLOCK_DLQ, len(hostile), timeout_s=90)
    for value, says in hostile:
        assert any(
            says in letter["reason"] and letter["payload_size"] == len(value) for _, letter, _ in letters
        ), (
            says,
            [letter["reason"] for _, letter, _ in letters],
        )
    assert evaluator_clock(quick) == GOOD_AT_MS + 3_600_000, "a refused tick changes nothing"
    assert worker.poll() is None, "the clock owner must survive hostile ticks"
    assert read_stats(quick).applied == 20

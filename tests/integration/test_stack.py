"""The local Kafka + Redis stack really starts, carries data, and stops."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from segstream.stack import load_stack, start_stack, stop_stack
from segstream.stack_info import StackError, StackInfo, default_cache_dir


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _kafka_roundtrip(info: StackInfo) -> None:
    admin = KafkaAdminClient(bootstrap_servers=info.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic("stack-smoke", num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=info.kafka_bootstrap, acks="all")
    producer.send("stack-smoke", key=b"k", value=b"hello").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(
        "stack-smoke", bootstrap_servers=info.kafka_bootstrap, auto_offset_reset="earliest", group_id=None
    )
    try:
        deadline = time.monotonic() + 30
        got: list[tuple[bytes, bytes]] = []
        while not got and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                got.extend((r.key, r.value) for r in records)
    finally:
        consumer.close()
    assert got == [(b"k", b"hello")]


def _redis_roundtrip(info: StackInfo) -> None:
    client = redis.Redis.from_url(info.redis_url)
    try:
        assert client.set("stack:smoke", "v1")
        assert client.get("stack:smoke") == b"v1"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        client.close()
    redis_dir = info.root / "redis"
    assert (redis_dir / "appendonlydir").is_dir() or (redis_dir / "appendonly.aof").is_file()


@pytest.mark.integration
def test_stack_starts_carries_data_and_stops(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    try:
        info = start_stack(root, default_cache_dir())
    except StackError as exc:
        pytest.fail(f"stack did not start: {exc}")
    try:
        assert load_stack(root) == info
        assert info.kafka_url == f"kafka://127.0.0.1:{info.kafka_port}"
        with pytest.raises(StackError, match="already running"):
            start_stack(root, default_cache_dir())
        _kafka_roundtrip(info)
        _redis_roundtrip(info)
    finally:
        stop_stack(info)
    assert _pid_gone(info.kafka_pid)
    assert _pid_gone(info.redis_pid)
    assert load_stack(root) is None
    assert not (root / "stack.json").exists()

"""A hostile world on real services: Redis down and restarting, Redis losing writes, a topic recreated.

Each test folds the CDNOW sample (6,919 purchases of 2,357 customers) and ends equal to the
pandas oracle. Tests that kill Redis run their own ``redis-server`` (the session's is shared).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from agents.settings import Settings
from segstream.batch import rfm_table
from segstream.kafka_io import Publisher, end_offsets
from segstream.sources import load_cdnow, wire_events
from segstream.stack import start_redis
from segstream.stack_processes import free_ports
from state.adapters.redis_store import RedisStore
from state.customer.store import TopicReset
from streams.topics import PURCHASES
from tests.conftest import WorkerFactory
from tests.integration.test_pipeline import assert_same_table, export_customers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, list[tuple[str, bytes]]]:
    history = load_cdnow(sample=True)
    return history, list(wire_events(history))


class OwnRedis:
    """A redis-server of the test's own, killed and restarted on the same port and data dir."""

    def __init__(self, data_dir: Path, options: dict[str, str] | None = None) -> None:
        self.data_dir, self.options, self.port = data_dir, options, free_ports(1)[0]
        self.process = start_redis(data_dir, self.port, options)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def restart(self) -> None:
        self.process = start_redis(self.data_dir, self.port, self.options)

    def command(self, *words: str) -> bytes:
        """One command in raw RESP; its first reply line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as s:
            s.sendall(
                f"*{len(words)}\r\n".encode() + b"".join(f"${len(w)}\r\n{w}\r\n".encode() for w in words)
            )
            return s.recv(256).split(b"\r\n")[0]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[list[OwnRedis]]:
    started: list[OwnRedis] = []
    yield started
    for server in started:
        server.stop()


def publish(settings: Settings, events: list[tuple[str, bytes]]) -> None:
    publisher = Publisher(settings)
    for key, value in events:
        publisher.send(settings.topic(PURCHASES), key, value)
    publisher.flush()
    publisher.close()


def consumed(settings: Settings) -> dict[int, int]:
    async def go() -> dict[int, int]:
        store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
        try:
            return await store.consumed(settings.topic(PURCHASES))
        finally:
            await store.close()

    return asyncio.run(go())


def topic_resets(settings: Settings) -> list[TopicReset]:
    async def go() -> list[TopicReset]:
        store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
        try:
            return await store.topic_resets()
        finally:
            await store.close()

    return asyncio.run(go())


def wait_until_folded(
    settings: Settings, workers: list[subprocess.Popen[bytes]], timeout_s: float = 90
) -> dict[int, int]:
    """Until Redis records every published purchases message as consumed; fail if a worker dies."""
    ends = {p: o for p, o in end_offsets(settings, settings.topic(PURCHASES)).items() if o > 0}
    deadline = time.monotonic() + timeout_s
    while True:
        for worker in workers:
            if worker.poll() is not None:
                pytest.fail(f"worker exited with code {worker.returncode}")
        try:
            seen = consumed(settings)
        except Exception:  # Redis restarting in the test itself
            seen = {}
        if all(seen.get(p, 0) >= o for p, o in ends.items()):
            return ends
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s: consumed {seen}, log ends {ends}")
        time.sleep(0.2)


def committed_offsets(settings: Settings) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        offsets = admin.list_group_offsets({settings.app_id: None})[settings.app_id]
    finally:
        admin.close()
    topic = settings.topic(PURCHASES)
    return {tp.partition: int(meta.offset) for tp, meta in offsets.items() if tp.topic == topic}


def wait_until_committed(settings: Settings, ends: dict[int, int], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while any(committed_offsets(settings).get(p, -1) < o for p, o in ends.items()):
        if time.monotonic() > deadline:
            pytest.fail(f"Kafka did not commit {ends} in {timeout_s}s: {committed_offsets(settings)}")
        time.sleep(0.3)


def test_redis_killed_and_restarted_mid_replay_the_worker_rides_it_out(
    settings: Settings,
    start_worker: WorkerFactory,
    own_redis: list[OwnRedis],
    sample: tuple[pd.DataFrame, list[tuple[str, bytes]]],
    tmp_path: Path,
) -> None:
    history, events = sample
    redis = OwnRedis(tmp_path / "redis")  # AOF everysec, as the stack runs it
    own_redis.append(redis)
    settings = settings.model_copy(update={"redis_url": redis.url, "web_enabled": True})
    worker = start_worker(settings)
    half = len(events) // 2
    publish(settings, events[:half])
    wait_until_folded(settings, [worker])

    redis.kill()
    publish(settings, events[half:])  # the worker takes a batch and cannot fold it
    time.sleep(5)
    assert worker.poll() is None, "the worker must wait for Redis, not exit"
    redis.restart()
    wait_until_folded(settings, [worker])

    assert_same_table(export_customers(settings, tmp_path / "c.parquet"), rfm_table(history))
    log = (tmp_path / "worker.log").read_text()
    assert "failed (ConnectionError" in log and "retry 1 in" in log, log[-2000:]
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=10) as page:
        metrics = page.read().decode()
    retries = [ln for ln in metrics.splitlines() if ln.startswith("segstream_redis_retries_total{")]
    assert retries and sum(float(ln.rsplit(" ", 1)[1]) for ln in retries) > 0, metrics[-1500:]


@dataclass
class LostWrites:
    settings: Settings
    worker: subprocess.Popen[bytes]
    saved: dict[int, int]  # consumed offsets Redis kept (its snapshot's)
    ends: dict[int, int]  # consumed offsets before the loss (Kafka committed them)


def fold_then_lose(
    settings: Settings,
    start_worker: WorkerFactory,
    own_redis: list[OwnRedis],
    kept: list[tuple[str, bytes]],
    lost: list[tuple[str, bytes]],
    tmp_path: Path,
) -> LostWrites:
    """An RDB-only Redis: fold ``kept``, SAVE, fold ``lost`` (Kafka commits it), then kill -9 and
    restart Redis from its snapshot: ``lost`` is gone from Redis, not from Kafka."""
    redis = OwnRedis(tmp_path / "redis", {"appendonly": "no", "save": ""})
    own_redis.append(redis)
    settings = settings.model_copy(update={"redis_url": redis.url})
    worker = start_worker(settings, "first")
    publish(settings, kept)
    saved = wait_until_folded(settings, [worker])
    assert redis.command("SAVE") == b"+OK"
    publish(settings, lost)
    ends = wait_until_folded(settings, [worker])
    wait_until_committed(settings, ends)
    redis.kill()
    redis.restart()
    assert consumed(settings) == saved
    return LostWrites(settings, worker, saved, ends)


def test_redis_losing_its_last_writes_is_refolded_from_kafka(
    settings: Settings,
    start_worker: WorkerFactory,
    own_redis: list[OwnRedis],
    sample: tuple[pd.DataFrame, list[tuple[str, bytes]]],
    tmp_path: Path,
) -> None:
    """RDB only: a kill -9 loses everything since the last SAVE, which Kafka had committed."""
    history, events = sample
    split = len(events) * 2 // 3
    loss = fold_then_lose(settings, start_worker, own_redis, events[:split], events[split:], tmp_path)
    loss.worker.send_signal(signal.SIGTERM)
    loss.worker.wait(60)

    restarted = start_worker(loss.settings, "restarted")
    wait_until_folded(loss.settings, [restarted])
    assert_same_table(export_customers(loss.settings, tmp_path / "c.parquet"), rfm_table(history))
    lost = sum(loss.ends.values()) - sum(loss.saved.values())
    log = (tmp_path / "restarted.log").read_text()
    assert f"Kafka was ahead of Redis by {lost} messages" in log, log[-2000:]


def test_a_running_worker_never_writes_to_a_redis_that_lost_its_writes(
    settings: Settings,
    start_worker: WorkerFactory,
    own_redis: list[OwnRedis],
    sample: tuple[pd.DataFrame, list[tuple[str, bytes]]],
    tmp_path: Path,
) -> None:
    """As above, but the worker keeps running through the loss: writing on would move customers'
    offset fences past the lost events, so it must stop before its next write and resume."""
    history, events = sample
    first, second = len(events) // 3, len(events) * 2 // 3
    loss = fold_then_lose(settings, start_worker, own_redis, events[:first], events[first:second], tmp_path)
    publish(loss.settings, events[second:])  # the worker's next batch finds the loss before writing
    assert loss.worker.wait(60) != 0, "the worker must stop rather than write past lost events"
    log = (tmp_path / "first.log").read_text()
    assert "lost writes it had acknowledged" in log, log[-2000:]

    restarted = start_worker(loss.settings, "restarted")
    wait_until_folded(loss.settings, [restarted])
    assert_same_table(export_customers(loss.settings, tmp_path / "c.parquet"), rfm_table(history))


def test_recreated_topic_is_detected_and_its_events_applied(
    settings: Settings,
    start_worker: WorkerFactory,
    sample: tuple[pd.DataFrame, list[tuple[str, bytes]]],
    tmp_path: Path,
) -> None:
    history, _ = sample
    events = list(wire_events(history.sort_values("occurred_at", kind="stable")))  # in time order
    worker = start_worker(settings, "before")
    split = len(events) * 3 // 4
    publish(settings, events[:split])
    before = wait_until_folded(settings, [worker])
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)

    topic = settings.topic(PURCHASES)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.delete_topics([topic])
        deadline = time.monotonic() + 30
        while topic in admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} still listed 30 s after its deletion"
            time.sleep(0.2)
        while True:  # the broker may still be removing the old log
            try:
                admin.create_topics([NewTopic(topic, settings.partitions, 1)])
                break
            except Exception:
                assert time.monotonic() < deadline, f"could not create {topic} again"
                time.sleep(0.5)
    finally:
        admin.close()
    rest = events[split:]  # new events, mostly of customers seen before the recreation
    assert len({key for key, _ in rest} & {key for key, _ in events[:split]}) > 100
    publish(settings, rest)

    after = start_worker(settings, "after")
    deadline = time.monotonic() + 60
    while not topic_resets(settings):  # until then, the old consumed offsets are beyond the new ends
        assert after.poll() is None and time.monotonic() < deadline, "no reset recorded"
        time.sleep(0.2)
    wait_until_folded(settings, [after])
    assert_same_table(export_customers(settings, tmp_path / "c.parquet"), rfm_table(history))
    (reset,) = topic_resets(settings)
    assert (reset.topic, reset.epoch) == (topic, 1)
    assert reset.partitions and all(before[p] == c and c > end for p, (c, end) in reset.partitions.items())
    log = (tmp_path / "after.log").read_text()
    assert f"{topic} was recreated or truncated" in log, log[-2000:]

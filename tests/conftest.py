"""Shared fixtures: event builders, the real Kafka + Redis stack, workers.

Integration tests get one Kafka and one Redis for the whole session of their test
process (started here, stopped at the end; ``make test`` runs two such processes with
pytest-xdist, so two stacks on free ports) and a fresh namespace each, so their
topics, consumer group and Redis keys never meet. If the stack cannot start, they
fail with the reason; they never skip.

Property tests run without Hypothesis's per-example deadline: a deadline is a timed
assertion, and on a shared machine (two test processes on two cores) it fails for
reasons that are not the code's.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from agents.settings import Settings
from segstream.demo import spawn_worker, stop_worker
from segstream.kafka_io import ensure_topics
from segstream.redis_cluster import RedisClusterInfo, start_cluster, stop_cluster
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import StackError, StackInfo, default_cache_dir
from segstream.stack_processes import free_ports
from state.adapters.redis_store import RedisStore
from state.customer.store import Stats

hypothesis_settings.register_profile("segstream", deadline=None)
hypothesis_settings.load_profile("segstream")


def purchase(**overrides: Any) -> dict[str, Any]:
    """A valid wire event; override any field, or pass ``field=...`` as ``None`` to drop it."""
    event: dict[str, Any] = {
        "event_id": f"e-{uuid.uuid4().hex[:12]}",
        "customer_id": "c1",
        "occurred_at": "2024-05-01T10:00:00Z",
        "amount": 12.5,
        "type": "purchase",
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not None}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    root = tmp_path_factory.mktemp("stack")
    try:
        info = start_stack(root, default_cache_dir())
    except StackError as exc:
        pytest.fail(f"could not start the test Kafka + Redis: {exc}", pytrace=False)
    yield info
    stop_stack(info)


@pytest.fixture
def settings(stack: StackInfo, tmp_path: Path) -> Settings:
    """Settings for one test: its own namespace on the session stack, topics created."""
    made = Settings(
        kafka_url=stack.kafka_url,
        redis_url=stack.redis_url,
        namespace=f"t{uuid.uuid4().hex[:10]}",
        partitions=4,
        batch_size=500,
        batch_within_s=0.1,
        session_timeout_s=10,  # a killed worker's partitions move after 10 s, not 60
        web_enabled=False,
        web_port=free_ports(1)[0],
        data_dir=tmp_path / "worker",
        log_level="warn",
        clock="ticks",  # deterministic instants; the watermark clock has its own tests
    )
    ensure_topics(made)
    return made


WorkerFactory = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[WorkerFactory]:
    """``start_worker(settings)`` runs ``segstream worker`` as a child; all are stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(settings: Settings, name: str = "worker") -> subprocess.Popen[bytes]:
        process = spawn_worker(settings, tmp_path / f"{name}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        stop_worker(process, timeout_s=20)


def read_stats(settings: Settings) -> Stats:
    async def go() -> Stats:
        store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
        try:
            return await store.stats()
        finally:
            await store.close()

    return asyncio.run(go())


def wait_for_stats(
    settings: Settings,
    done: Callable[[Stats], bool],
    workers: list[subprocess.Popen[bytes]] | None = None,
    timeout_s: float = 180,
) -> Stats:
    """Poll the store's running totals until ``done(stats)``; fail if a worker dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    stats = read_stats(settings)
    while not done(stats):
        for worker in workers or []:
            if worker.poll() is not None:
                pytest.fail(f"worker exited with code {worker.returncode}; totals so far {stats}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s with totals {stats}")
        time.sleep(0.25)
        stats = read_stats(settings)
    return stats


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterInfo]:
    """A 3-master Redis Cluster on loopback, started once per session for the tests that ask for it."""
    try:
        info = start_cluster(tmp_path_factory.mktemp("redis-cluster"), masters=3)
    except StackError as exc:
        pytest.fail(f"could not start the test Redis Cluster: {exc}", pytrace=False)
    yield info
    stop_cluster(info)


def children_named(pid: int, name: str) -> list[int]:
    """Processes whose parent is ``pid`` and whose name (``/proc/<pid>/comm``) is ``name`` (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            comm = (entry / "comm").read_text().strip()
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid and comm == name:
            found.append(int(entry.name))
    return found

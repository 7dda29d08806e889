"""How ``bench/scale.py`` waits on its workers: every event folded (one worker, two workers), and
one tick sent and observed (its own tick seconds, the wall time, the changes published)."""

from __future__ import annotations

import time
from typing import Any

import redis
from scale_probes import applied, changes_published, folded, tick_metric

from agents.settings import Settings
from segstream.kafka_io import Publisher, send_tick
from streams.outputs import tick_message
from streams.topics import CLOCK


def _alive(workers: list[Any]) -> None:
    for process in workers:
        if process.poll() is not None:
            raise RuntimeError(f"worker {process.pid} exited with code {process.returncode}")


def wait_ingest(
    client: redis.Redis, settings: Settings, total: int, workers: list[Any], timeout_s: float
) -> float:
    """Seconds to fold ``total`` events: first applied -> last applied, extrapolated to all of them."""
    deadline = time.monotonic() + timeout_s
    first: tuple[float, int] | None = None
    while time.monotonic() < deadline:
        done, now = applied(client, settings), time.perf_counter()
        if first is None and done > 0:
            first = (now, done)
        if done >= total and first is not None:
            return (now - first[0]) / max(1, total - first[1]) * total
        _alive(workers)
        time.sleep(0.05)
    raise TimeoutError(
        f"{settings.namespace}: {applied(client, settings):,} of {total:,} applied after {timeout_s:g} s"
    )


def wait_two_workers(
    client: redis.Redis,
    settings: Settings,
    total: int,
    workers: list[Any],
    ports: list[int],
    timeout_s: float,
) -> dict[str, Any]:
    """Two workers folding ``total`` events: events/s over the whole fold (first applied -> last,
    the group's rebalance included) and over the steady part (from when both have folded a batch)."""
    deadline = time.monotonic() + timeout_s
    first: tuple[float, int] | None = None
    both: tuple[float, int] | None = None
    while time.monotonic() < deadline:
        done, now = applied(client, settings), time.perf_counter()
        if first is None and done > 0:
            first = (now, done)
        if both is None and done > 0 and all(folded(p) > 0 for p in ports):
            both = (now, done)
        if done >= total and first is not None:
            whole_s = (now - first[0]) / max(1, total - first[1]) * total
            steady = None if both is None or done <= both[1] else (done - both[1]) / (now - both[0])
            return {
                "ingest_s": whole_s,
                "ingest_events_per_s": total / whole_s,
                "steady_events_per_s": steady,
                "steady_events": done - both[1] if both else 0,
                "events_per_worker": [folded(p) for p in ports],
            }
        _alive(workers)
        time.sleep(0.1)
    raise TimeoutError(
        f"{settings.namespace}: {applied(client, settings):,} of {total:,} applied after {timeout_s:g} s"
    )


def timed_tick(
    settings: Settings, port: int, as_of_ms: int, *, workers: list[Any], timeout_s: float, offsets: bool
) -> dict[str, float]:
    """Send one tick; wait until the worker observed it. Its own tick seconds and the wall time.

    ``offsets``: the tick names the topics' end offsets as ``segstream replay`` and ``segstream
    clock`` send it (the evaluator first checks them against Kafka's end offsets and waits for
    them to be processed); without, a bare tick (every event is already applied here): only
    the evaluation itself (agenda, evaluate, publish, save).
    """
    before_sum, before_count = tick_metric(port)
    before_changes = changes_published(port)
    started = time.perf_counter()
    if offsets:
        send_tick(settings, as_of_ms, source="bench-scale")
    else:
        publisher = Publisher(settings)
        try:
            publisher.send(settings.topic(CLOCK), None, tick_message(as_of_ms, {}, "bench-scale"))
            publisher.flush()
        finally:
            publisher.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        total, count = tick_metric(port)
        if count > before_count:
            wall_s = time.perf_counter() - started
            return {
                "tick_s": total - before_sum,
                "wall_s": wall_s,
                "changes": changes_published(port) - before_changes,
            }
        _alive(workers)
        time.sleep(0.1)
    raise TimeoutError(f"tick {as_of_ms} not evaluated after {timeout_s:g} s")

"""Load of ``bench/chaos.py`` (``make chaos``): generated purchases and how they are published.

Deterministic generated customers (``generated_frame``), paced publishing with resends of the
unacknowledged (``paced_send``), the calibration burst that measures the workers' capacity, the
replay thread, and the overload producer processes with their section of ``bench/chaos.json``.
Kept apart from the fault injection and the final checks: nothing here breaks anything or
judges the outcome, it only sends and measures the rate.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from harness import Supervisor, TrackedProducer, read_stats

from agents.settings import Settings
from segstream.kafka_io import send_tick
from segstream.sources import wire_events
from state.customer.rfm import DAY_MS
from streams.topics import PURCHASES

GEN_START_MS = int(pd.Timestamp("1997-01-01", tz="UTC").timestamp() * 1000)
GEN_END_MS = int(pd.Timestamp("1998-06-30", tz="UTC").timestamp() * 1000)


def generated_frame(tag: str, seed: int, count: int) -> pd.DataFrame:
    """``count`` generated purchases of new customers ``gen-<tag>-<n>`` (about 20 each), deterministic."""
    rng = np.random.default_rng([seed, zlib.crc32(tag.encode())])
    pool = max(1, count // 20)
    customers = rng.integers(0, pool, count)
    ms = rng.integers(GEN_START_MS, GEN_END_MS, count) // 1000 * 1000
    cents = rng.integers(100, 20_000, count)
    return pd.DataFrame(
        {
            "event_id": [f"gen-{tag}:{i}" for i in range(count)],
            "customer_id": [f"gen-{tag}-{c}" for c in customers],
            "occurred_at": pd.to_datetime(ms, unit="ms", utc=True),
            "amount": cents / 100,
            "type": "purchase",
        }
    )


def paced_send(
    producer: TrackedProducer,
    topic: str,
    messages: list[tuple[str, bytes]],
    rate: float | None,
    deadline_s: float | None = None,
    after_each: Any = None,
) -> tuple[int, float]:
    """Send in order at most ``rate``/s until done or ``deadline_s``; flush, resend the unacked."""
    started = time.perf_counter()
    sent = 0
    for key, value in messages:
        if deadline_s is not None and time.perf_counter() - started >= deadline_s:
            break
        producer.send(topic, key.encode(), value, sent)
        sent += 1
        if rate is not None and sent % 50 == 0:
            ahead = sent / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
        if after_each is not None:
            after_each(sent)
    producer.flush()
    for _ in range(20):
        failed = producer.take_failed()
        if not failed:
            break
        for i in failed:
            producer.send(topic, messages[i][0].encode(), messages[i][1], i)
        producer.flush()
    return sent, time.perf_counter() - started


def overload_child(
    settings: Settings, tag: str, seed: int, count: int, rate: float, seconds: float, out: Any
) -> None:
    """One overload producer process: publish its generated slice at ``rate`` for ``seconds``."""
    messages = list(wire_events(generated_frame(tag, seed, count)))
    producer = TrackedProducer(settings)
    try:
        sent, took = paced_send(producer, settings.topic(PURCHASES), messages, rate, deadline_s=seconds)
        out.put({"tag": tag, "sent": sent, "unacked": len(producer.failed), "seconds": took})
    finally:
        producer.close()


@dataclass
class Replay:
    """The replay thread's report."""

    sent: int = 0
    seconds: float = 0.0
    ticks: int = 0
    tick_failures: int = 0
    unacked: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


def replay_thread(
    settings: Settings,
    messages: list[tuple[str, bytes]],
    times: list[int],
    speed: float,
    tick_every: int,
    out: Replay,
) -> None:
    producer = TrackedProducer(settings)

    def tick(sent: int) -> None:
        if tick_every and sent % tick_every == 0 and sent < len(times):
            try:
                producer.flush()
                send_tick(settings, times[sent] // DAY_MS * DAY_MS, source="chaos")
                out.ticks += 1
            except Exception:
                out.tick_failures += 1

    try:
        out.sent, out.seconds = paced_send(
            producer, settings.topic(PURCHASES), messages, speed, after_each=tick
        )
        out.unacked = len(producer.failed)
    except Exception as exc:
        out.error = repr(exc)
    finally:
        producer.close()
        out.done.set()


def wait_applied(settings: Settings, sup: Supervisor, total: int, timeout_s: float) -> float | None:
    """Fold rate (events/s) over ``total`` events: first applied -> all applied (None on timeout)."""
    base = read_stats(settings)
    start_applied = base.applied if base else 0
    first: tuple[float, int] | None = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sup.tick()
        stats = read_stats(settings)
        now = time.perf_counter()
        if stats is not None:
            done = stats.applied - start_applied
            if first is None and done > 0:
                first = (now, done)
            if done >= total and first is not None:
                return (total - first[1]) / max(now - first[0], 1e-6)
        time.sleep(0.1)
    return None


def calibrate(settings: Settings, sup: Supervisor, seed: int, count: int) -> tuple[pd.DataFrame, float]:
    """Phase 1: a burst of ``count`` generated purchases at full speed; the workers' fold rate over
    it is the measured capacity (events/s). Returns the burst (it is part of what was published)."""
    cal = generated_frame("cal", seed, count)
    producer = TrackedProducer(settings)
    paced_send(producer, settings.topic(PURCHASES), list(wire_events(cal)), None)
    producer.close()
    capacity = wait_applied(settings, sup, len(cal), timeout_s=600)
    if capacity is None:
        raise RuntimeError("calibration: the workers did not fold the burst within 600 s")
    print(f"calibration: {len(cal):,} generated events, capacity {capacity:,.0f} events/s", flush=True)
    return cal, capacity


def run_overload(
    args: argparse.Namespace, settings: Settings, sup: Supervisor, capacity: float
) -> tuple[list[dict[str, Any]], list[pd.DataFrame], float]:
    """Phase 3: ``args.producers`` processes publish at ``args.overload_factor`` x ``capacity`` for
    ``args.overload_s``. Returns their reports, the frames of what each really sent, and the target rate."""
    target = capacity * args.overload_factor
    per = target / args.producers
    count = math.ceil(per * args.overload_s)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    tags = [f"ovl{p}" for p in range(args.producers)]
    children = [
        ctx.Process(
            target=overload_child, args=(settings, tag, args.seed, count, per, args.overload_s, queue)
        )
        for tag in tags
    ]
    print(
        f"overload: {args.producers} producers at {target:,.0f} events/s for {args.overload_s:.0f} s",
        flush=True,
    )
    for child in children:
        child.start()
    reports: list[dict[str, Any]] = []
    while len(reports) < len(children):
        sup.tick()
        while not queue.empty():
            reports.append(queue.get())
        if all(not c.is_alive() for c in children) and queue.empty() and len(reports) < len(children):
            raise RuntimeError("an overload producer died without reporting")
        time.sleep(0.5)
    for child in children:
        child.join()
    frames = [generated_frame(r["tag"], args.seed, count).head(r["sent"]) for r in reports]
    return reports, frames, target


def overload_summary(
    args: argparse.Namespace,
    reports: list[dict[str, Any]],
    target: float,
    capacity: float,
    drained_s: float | None,
) -> dict[str, Any]:
    """The ``overload`` section of ``bench/chaos.json``."""
    overload_sent = sum(r["sent"] for r in reports)
    overload_s = max(r["seconds"] for r in reports)
    return {
        "generated": True,
        "producers": args.producers,
        "target_events_per_s": round(target, 1),
        "sent": overload_sent,
        "seconds": round(overload_s, 1),
        "achieved_events_per_s": round(overload_sent / overload_s, 1) if overload_s else None,
        "achieved_factor_of_capacity": round(overload_sent / overload_s / capacity, 2)
        if overload_s
        else None,
        "unacked_after_retries": sum(r["unacked"] for r in reports),
        # what the workers sustained while the producers shared the machine with them:
        # the overload's events over the time from its start until the lag was 0
        "sustained_events_per_s": round(overload_sent / (overload_s + drained_s), 1)
        if drained_s is not None
        else None,
        "achieved_factor_of_sustained": round((overload_s + drained_s) / overload_s, 2)
        if drained_s is not None and overload_s
        else None,
    }

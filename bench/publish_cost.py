"""What publishing the evaluator's output costs: Faust's send per message vs aiokafka batches.

Starts its own Kafka + Redis (``segstream.stack``), builds N realistic messages with the real
``change_message`` / ``profile_message`` (customers with CDNOW-style ids walking through RFM
scores and clusters: their changes to ``segment-changes``, then each one's latest profile to
``customer-segments``, as ``publish_changes`` does), and publishes them in alternating rounds
through (a) ``app.producer.send`` per message then one gather (the worker's former path) and
(b) :func:`agents.batch_publish.faust_batch_publisher`, on one Faust producer in one uvloop loop.
Prints and writes ``bench/publish_cost.json``: each path's median seconds and messages/s, and
the ratio (a)/(b), in wall seconds and in this process's CPU seconds. Both paths' messages are counted on the broker afterwards.

Usage: ``.venv/bin/python bench/publish_cost.py [--messages 100000] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import faust
import uvloop
from kafka import KafkaConsumer, TopicPartition

from agents.batch_publish import Message, faust_batch_publisher
from agents.settings import Settings
from agents.worker import broker_credentials
from segstream.kafka_io import ensure_topics
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from state.customer.profiles import Change, Profile
from state.customer.rfm import DAY_MS
from state.evaluator.messages import change_message, profile_message
from state.segments.segments import Preset, load_preset
from streams import topics

RESULTS = Path(__file__).with_name("publish_cost.json")
CLUSTERS = ("Loyal regulars", "Big spenders", "Lapsed", "Newcomers", "Occasional")
REASONS = ("purchase", "recency_decay", "model_update", "cutpoint_update")


def realistic_messages(n: int, preset: Preset, changes_topic: str, profiles_topic: str) -> list[Message]:
    """About ``n`` messages: customers' change chains (about 9 each), then each one's latest profile."""
    rng = random.Random(7)
    customers = max(1, n // 10)
    changes: list[Change] = []
    for c in range(customers):
        customer_id = f"{c + 1:05d}"  # CDNOW's ids
        before: Profile | None = None
        at_ms = 10_000 * DAY_MS + rng.randrange(400) * DAY_MS
        for _ in range(9):
            r, f, m = rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 5)
            cluster = rng.randrange(len(CLUSTERS))
            after = Profile(r, f, m, preset.segment_for(r, f, m).segment, cluster, CLUSTERS[cluster])
            reason = "purchase" if before is None else rng.choice(REASONS)
            changes.append(Change(customer_id, at_ms, reason, before, after, 1 + at_ms // (90 * DAY_MS), 3))
            before, at_ms = after, at_ms + rng.randint(1, 60) * DAY_MS
    changes = changes[: n - customers]
    latest = {c.customer_id: c for c in changes}
    return [(changes_topic, c.customer_id.encode(), change_message(c, preset)) for c in changes] + [
        (profiles_topic, c.customer_id.encode(), profile_message(c, preset)) for c in latest.values()
    ]


async def send_each(app: faust.App, messages: Sequence[Message]) -> None:
    """The worker's former path: ``app.producer.send`` per message, then gather the futures."""
    send = app.producer.send
    pending = [await send(topic, key, value, None, None, None) for topic, key, value in messages]
    await asyncio.gather(*pending)


async def timed(run: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds (the client's share, steadier on a busy machine)."""
    started, cpu = time.perf_counter(), time.process_time()
    await run()
    return time.perf_counter() - started, time.process_time() - cpu


def broker_count(settings: Settings, names: Sequence[str]) -> int:
    """Messages on the broker in ``names`` (sum of end offsets; the topics were empty)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_client_kwargs())
    try:
        tps = [TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


async def measure(settings: Settings, n: int, rounds: int) -> dict[str, Any]:
    names = [settings.topic(topics.SEGMENT_CHANGES), settings.topic(topics.CUSTOMER_SEGMENTS)]
    messages = realistic_messages(n, load_preset(settings.segment_preset), *names)
    app = faust.App(  # the worker's producer settings (build_app): Faust defaults, same credentials
        "publish-cost", broker=settings.kafka_url, broker_credentials=broker_credentials(settings)
    )
    await app.producer.start()
    batched = faust_batch_publisher(app)
    seconds: dict[str, list[float]] = {"send_each": [], "batches": []}
    cpu: dict[str, list[float]] = {"send_each": [], "batches": []}
    try:
        await send_each(app, messages[:1000])  # warm up: connections and metadata
        await batched(messages[:1000])
        for _ in range(rounds):
            for path, run in (
                ("send_each", lambda: send_each(app, messages)),
                ("batches", lambda: batched(messages)),
            ):
                wall, used = await timed(run)
                seconds[path].append(wall)
                cpu[path].append(used)
    finally:
        await app.producer.stop()
    medians = {path: statistics.median(s) for path, s in seconds.items()}
    cpu_medians = {path: statistics.median(s) for path, s in cpu.items()}
    return {
        "messages": len(messages),
        "rounds": rounds,
        "bytes": sum(len(k) + len(v) for _, k, v in messages),
        "partitions": settings.partitions,
        "seconds": seconds,
        "median_seconds": medians,
        "messages_per_s": {path: round(len(messages) / s) for path, s in medians.items()},
        "ratio": round(medians["send_each"] / medians["batches"], 2),
        "cpu_seconds": cpu,
        "median_cpu_seconds": cpu_medians,
        "cpu_ratio": round(cpu_medians["send_each"] / cpu_medians["batches"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="segstream-publish-cost-"))
    stack = start_stack(root, default_cache_dir())
    try:
        settings = Settings(kafka_url=stack.kafka_url, redis_url=stack.redis_url, namespace="pubcost")
        ensure_topics(settings)
        result = uvloop.run(measure(settings, args.messages, args.rounds))
        on_broker = broker_count(
            settings, [settings.topic(topics.SEGMENT_CHANGES), settings.topic(topics.CUSTOMER_SEGMENTS)]
        )
        expected = 2 * (1000 + args.rounds * result["messages"])
        if on_broker != expected:
            raise RuntimeError(f"{on_broker} messages on the broker, {expected} sent")
    finally:
        stop_stack(stack)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"{result['messages']} messages: send per message {result['median_seconds']['send_each']:.2f} s "
        f"({result['messages_per_s']['send_each']}/s), batches {result['median_seconds']['batches']:.2f} s "
        f"({result['messages_per_s']['batches']}/s): {result['ratio']}x wall, {result['cpu_ratio']}x CPU"
    )


if __name__ == "__main__":
    main()

"""Baseline for ``make bench``: a plain aiokafka consumer doing the worker's per-batch work, no Faust.

It reads the purchases topic with ``getmany`` (up to ``SEGSTREAM_BATCH_SIZE`` records per
partition per call), runs the very step the worker runs on each batch
(``agents.ingest.ingest_batch``: msgspec validation, dead letters, the same Lua fold through
``state.adapters.redis_store.RedisStore``, consumed offsets), then commits, into its own Redis namespace.
So the ratio worker / this is what Faust's stream machinery costs on top of the same work.

Usage: ``aiokafka_worker.py EVENTS OUT.json`` with the worker's settings in the environment;
writes ``{"events": n, "seconds": first batch -> last event folded}`` once it has folded ``EVENTS``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import uvloop
from aiokafka import AIOKafkaConsumer

from agents.ingest import DeadLetter, RawMessage, ingest_batch
from agents.settings import Settings
from state.adapters.redis_store import RedisStore
from streams.topics import PURCHASES


async def run(expected: int, out: Path) -> None:
    settings = Settings()
    store = RedisStore.connect(settings.redis_access, f"{settings.redis_prefix}aiokafka-baseline:")
    consumer = AIOKafkaConsumer(
        settings.topic(PURCHASES),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.app_id}-aiokafka-baseline",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )

    async def no_dead_letters(letters: Sequence[DeadLetter]) -> None:
        if letters:
            raise RuntimeError(f"the benchmark history has {len(letters)} invalid events")

    await consumer.start()
    folded, first = 0, 0.0
    try:
        while folded < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=settings.batch_size)
            for tp, records in batches.items():
                if not first:
                    first = time.perf_counter()
                messages = [RawMessage(r.topic, r.partition, r.offset, r.key, r.value) for r in records]
                result = await ingest_batch(messages, store, no_dead_letters)
                folded += len(result.outcomes)
                await consumer.commit({tp: records[-1].offset + 1})
        seconds = time.perf_counter() - first
    finally:
        await consumer.stop()
        await store.close()
    out.write_text(json.dumps({"events": folded, "seconds": seconds}))


def main() -> None:
    uvloop.install()
    asyncio.run(run(int(sys.argv[1]), Path(sys.argv[2])))


if __name__ == "__main__":
    main()

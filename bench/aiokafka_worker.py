"""Baseline for ``make bench``: a plain aiokafka consumer doing the worker's per-batch work, no Faust.

It reads the purchases topic with ``getmany`` (up to ``SEGSTREAM_BATCH_SIZE`` records per
partition per call), runs the very step the worker runs on each batch
(``agents.ingest.ingest_batch``: msgspec validation with the same limits, dead letters, the same
Lua fold with the same analytics tallies (``agents.tallies.build_talliers``) through
``state.adapters.redis_store.RedisStore``, consumed offsets), then commits, into its own Redis namespace.
It runs the step in its own (one) process, one batch after another: the straightforward
consumer. The worker runs the same step in its ingest process (``agents.ingest_process``) while
Faust reads the next batch, so the ratio worker / this is what Faust's stream machinery costs,
less what the second process wins back.

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
from agents.tallies import build_talliers
from state.adapters.redis_catalogue import RedisCatalogue
from state.adapters.redis_store import RedisStore
from state.customer.tally import combine
from streams.topics import PURCHASES


async def run(expected: int, out: Path) -> None:
    settings = Settings()
    prefix = f"{settings.redis_prefix}aiokafka-baseline:"
    store = RedisStore.connect(settings.redis_access, prefix)
    catalogue = RedisCatalogue.connect(settings.redis_access, prefix)
    tallier = combine(*build_talliers(settings, catalogue))  # the worker's analytics counters too
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
                result = await ingest_batch(
                    messages, store, no_dead_letters, limits=settings.input_limits(), tallier=tallier
                )
                folded += len(result.outcomes)
                await consumer.commit({tp: records[-1].offset + 1})
        seconds = time.perf_counter() - first
    finally:
        await consumer.stop()
        await store.close()
        await catalogue.close()
    out.write_text(json.dumps({"events": folded, "seconds": seconds}))


def main() -> None:
    uvloop.install()
    asyncio.run(run(int(sys.argv[1]), Path(sys.argv[2])))


if __name__ == "__main__":
    main()

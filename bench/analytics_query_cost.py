"""What a cohort table and the segment hour profiles cost to compute from a real Redis.

Folds CDNOW master and The Complete Journey into a Redis (``--redis-url``, e.g. the one
``segstream stack up`` prints; each data set under its own fresh key prefix, removed after)
through the worker's ingest step and talliers, then times ``live_cohorts`` (what
``segstream cohorts`` and ``GET /cohorts`` compute) and ``segment_hours`` (behind
``GET /best-time``) three times each. Prints one line per run; writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import redis.asyncio as redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.ingest import DeadLetter, RawMessage, ingest_batch
from agents.settings import Settings
from agents.tallies import build_talliers
from segstream.sources import load_cdnow, load_completejourney, wire_events
from state.analytics.analytics_reads import live_cohorts, segment_hours
from state.customer.profile_store import MemoryProfileStore
from state.adapters.redis_store import RedisStore
from state.customer.tally import combine


async def _no_dead_letters(letters: Sequence[DeadLetter]) -> None:
    assert not letters


async def measure(name: str, history: pd.DataFrame, url: str) -> None:
    prefix = f"qc{uuid.uuid4().hex[:8]}:"
    store = RedisStore.from_url(url, prefix)
    tallier = combine(*build_talliers(Settings()))
    messages = list(wire_events(history))
    try:
        for start in range(0, len(messages), 1000):
            raw = [
                RawMessage("purchases", 0, start + i, k.encode(), v)
                for i, (k, v) in enumerate(messages[start : start + 1000])
            ]
            await ingest_batch(raw, store, _no_dead_letters, tallier=tallier)
        for _ in range(3):
            started = time.perf_counter()
            rows = await live_cohorts(store)
            cohorts = time.perf_counter() - started
            started = time.perf_counter()
            hours = await segment_hours(store, MemoryProfileStore())
            profiles = time.perf_counter() - started
            print(
                f"{name}: {hours.buyers:,} buyers; cohort table ({len(rows)} rows) {cohorts:.2f} s; "
                f"segment hour profiles {profiles:.2f} s",
                flush=True,
            )
    finally:
        await store.close()
        client = redis.Redis.from_url(url)
        keys = [k async for k in client.scan_iter(f"{prefix}*", count=5000)]
        for start in range(0, len(keys), 5000):
            await client.delete(*keys[start : start + 5000])
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--redis-url", required=True, help="a Redis to fold into, e.g. redis://127.0.0.1:6379/0"
    )
    url = parser.parse_args().redis_url
    asyncio.run(measure("CDNOW master", load_cdnow(), url))
    asyncio.run(measure("The Complete Journey", load_completejourney(), url))


if __name__ == "__main__":
    main()

"""Redis probes of ``bench/eval_baskets.py`` (``make eval``, baskets): reads of the worker's state.

A digest of every basket table, the store's totals, the pair hashes' bytes and Redis memory, the
slowest Lua script calls (SLOWLOG), and a redelivery: the topic's first messages folded again
through ``agents.ingest.ingest_batch`` at their real offsets. Kept apart from the run and the
oracles: each function here opens its own connections, does one thing to Redis and closes them.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import redis.asyncio as redis

from agents.ingest import RawMessage, ingest_batch
from agents.settings import Settings
from agents.tallies import basket_config
from segstream.kafka_io import read_topic
from state.adapters.redis_baskets import RedisBaskets
from state.adapters.redis_store import RedisStore
from state.analytics.basket_tally import CUSTOMER_TABLE, LEVELS, basket_tallier
from state.customer.store import Stats
from streams.topics import PURCHASES


async def read_tables(settings: Settings, customers: list[str]) -> str:
    """A digest of every basket counter (both levels' tables and every customer's own)."""
    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        digest = hashlib.sha256()
        for level in LEVELS:
            t = await baskets.tables(level)
            for part in (t.items, t.pairs, {"threshold": t.threshold}):
                digest.update(repr(sorted(part.items())).encode())
        for customer, table in sorted((await store.tallies(CUSTOMER_TABLE, customers)).items()):
            digest.update(repr((customer, sorted(table.items()))).encode())
        return digest.hexdigest()
    finally:
        await baskets.close()
        await store.close()


async def redeliver(settings: Settings, count: int) -> list[int]:
    """Fold the topic's first ``count`` messages again at their real offsets, in batches of the
    worker's size, through the worker's ingest step: outcome codes."""
    messages = []
    for m in read_topic(settings, settings.topic(PURCHASES)):
        messages.append(RawMessage(settings.topic(PURCHASES), m.partition, m.offset, m.key, m.value))
        if len(messages) >= count:
            break
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    tallier = basket_tallier(basket_config(settings))

    async def nowhere(letters: Any) -> None:
        raise AssertionError("no dead letters expected")

    outcomes: list[int] = []
    try:
        for start in range(0, len(messages), settings.batch_size):
            result = await ingest_batch(
                messages[start : start + settings.batch_size], store, nowhere, tallier=tallier
            )
            outcomes += [int(o) for o in result.outcomes]
    finally:
        await store.close()
    return outcomes


async def stats_of(settings: Settings) -> Stats:
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        return await store.stats()
    finally:
        await store.close()


async def pair_bytes(settings: Settings) -> dict[str, int]:
    """Bytes of each level's pair hash now (sampled during the replay for its peak)."""
    client = redis.Redis.from_url(settings.redis_url)
    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    try:
        return {
            level: int(await client.memory_usage(baskets.key(level, "pair"), samples=0) or 0)
            for level in LEVELS
        }
    finally:
        await client.aclose()
        await baskets.close()


async def memory(settings: Settings) -> dict[str, Any]:
    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    try:
        found: dict[str, Any] = {level: await baskets.memory(level) for level in LEVELS}
        for level in LEVELS:
            found[level]["threshold"] = (await baskets.tables(level)).threshold
    finally:
        await baskets.close()
    client = redis.Redis.from_url(settings.redis_url)
    try:
        info = await client.info("memory")
    finally:
        await client.aclose()
    found["redis_used_memory_mib"] = round(int(info["used_memory"]) / 2**20, 1)
    found["redis_used_memory_peak_mib"] = round(int(info["used_memory_peak"]) / 2**20, 1)
    return found


async def slowest_scripts(settings: Settings, reset: bool = True) -> dict[str, float]:
    """The longest run of each Lua script Redis logged (SLOWLOG, calls over 10 ms), in ms."""
    names = {
        hashlib.sha1(resources.files("state.adapters").joinpath(file).read_bytes()).hexdigest(): name
        for name, file in (("fold", "rfm_fold.lua"), ("prune", "basket_prune.lua"))
    }
    client = redis.Redis.from_url(settings.redis_url)
    try:
        entries = await client.slowlog_get(100_000)
        if reset:
            await client.slowlog_reset()
    finally:
        await client.aclose()
    slowest: dict[str, float] = {}
    for e in entries:
        words = e["command"].split()
        if len(words) > 1 and words[0].upper() == b"EVALSHA":
            name = names.get(words[1].decode(), "other")
            slowest[name] = max(slowest.get(name, 0.0), e["duration"] / 1000)
    return {k: round(v, 1) for k, v in sorted(slowest.items())}

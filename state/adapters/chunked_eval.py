"""One read-only Lua script call per chunk of customers, all in one pipeline, replies undecoded.

The evaluator's log reads (:mod:`state.adapters.log_read`) and the provisional step's state reads
(:mod:`state.adapters.state_read`) both read many customers at once: one call per chunk of
``per_call`` customers returns one ``cmsgpack`` string, so redis-py parses one reply per chunk
instead of one or two per customer. On Redis Cluster a script may only touch one hash slot, so
there ``per_call`` is 1 (a customer's keys share their hash tag).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as redis
from redis.client import NEVER_DECODE

__all__ = ["eval_per_chunk"]


async def eval_per_chunk(
    client: redis.Redis | redis.RedisCluster,
    script: str,
    ids: Sequence[str],
    keys_of: Callable[[str], Sequence[str]],
    args: Sequence[str],
    *,
    per_call: int,
) -> list[tuple[Sequence[str], bytes]]:
    """``(chunk of ids, raw reply)`` per call of ``script`` over the keys of each chunk and ``args``."""
    calls = [ids[at : at + per_call] for at in range(0, len(ids), per_call)]
    if not calls:
        return []
    pipe = client.pipeline(transaction=False)
    for chunk in calls:
        keys = [k for c in chunk for k in keys_of(c)]
        pipe.execute_command("EVAL", script, len(keys), *keys, *args, **{NEVER_DECODE: []})
    replies: list[Any] = await pipe.execute()
    return list(zip(calls, replies, strict=True))

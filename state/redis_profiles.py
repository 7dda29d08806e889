"""The segment evaluator's state in Redis (:class:`state.profile_store.ProfileStore`).

Keys, all under one hash tag so one ``MULTI`` covers them (and one Redis Cluster slot):

- ``<p>eval:{segments}:view``    hash: customer_id -> JSON row (state as of the clock, profile)
- ``<p>eval:{segments}:meta``    string: JSON ``{generation, clock_ms, cutpoints}``
- ``<p>eval:{segments}:model``   string: the learned models' snapshot (clusters, churn with its
  open prediction batches, lifetime model), :meth:`state.evaluate.Evaluator.snapshot`
- ``<p>eval:{segments}:summary`` string: JSON summary of the last save: segments, clusters, the
  churn model's report and scorer weights, the lifetime model's versioned parameters (what every
  worker's HTTP pages and ``segstream export`` score with)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as redis

from state.profile_store import Record, SavedEvaluator

__all__ = ["RedisProfileStore"]

_CHUNK = 5000


class RedisProfileStore:
    def __init__(self, client: redis.Redis, prefix: str = "") -> None:
        self._redis = client
        base = f"{prefix}eval:{{segments}}"
        self._view, self._meta, self._model, self._summary = (
            f"{base}:{name}" for name in ("view", "meta", "model", "summary")
        )

    @classmethod
    def from_url(cls, url: str, prefix: str = "") -> RedisProfileStore:
        return cls(redis.Redis.from_url(url, decode_responses=False), prefix)

    async def close(self) -> None:
        await self._redis.aclose()

    async def _read_meta(self) -> dict[str, Any]:
        raw = await self._redis.get(self._meta)
        return dict(json.loads(raw)) if raw else {"generation": 0, "clock_ms": None, "cutpoints": None}

    async def generation(self) -> int:
        return int((await self._read_meta())["generation"])

    async def load(self) -> SavedEvaluator | None:
        meta = await self._read_meta()
        if not meta["generation"]:
            return None
        rows = [json.loads(value) async for _, value in self._redis.hscan_iter(self._view, count=_CHUNK)]
        model = cast(bytes | None, await self._redis.get(self._model))
        return SavedEvaluator(int(meta["generation"]), meta["clock_ms"], meta["cutpoints"], model, rows)

    async def save(
        self,
        clock_ms: int,
        cutpoints_json: str | None,
        model: bytes | None,
        records: Sequence[Record],
        summary: Record,
    ) -> int:
        generation = await self.generation() + 1
        async with self._redis.pipeline(transaction=True) as pipe:  # MULTI ... EXEC
            for start in range(0, len(records), _CHUNK):
                chunk = records[start : start + _CHUNK]
                pipe.hset(self._view, mapping={str(r["customer_id"]): json.dumps(r) for r in chunk})
            if model is not None:
                pipe.set(self._model, model)
            pipe.set(self._summary, json.dumps(summary))
            meta = {"generation": generation, "clock_ms": clock_ms, "cutpoints": cutpoints_json}
            pipe.set(self._meta, json.dumps(meta))
            await pipe.execute()
        return generation

    async def profile(self, customer_id: str) -> Record | None:
        raw = await self._redis.hget(self._view, customer_id)
        return dict(json.loads(raw)) if raw else None

    async def summary(self) -> Record | None:
        raw = await self._redis.get(self._summary)
        return dict(json.loads(raw)) if raw else None

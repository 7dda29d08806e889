"""Review counters in Redis (:class:`state.analytics.review_store.ReviewStore`): one Lua call folds a batch.

Keys (``<p>`` is the namespace prefix):

- ``<p>rv:{<customer_id>}``    hash: the customer's counters (``state.analytics.reviews.COUNTERS``), their
  ``customer_id`` and one offset fence per topic/partition (``state.customer.store.fence_field``)
- ``<p>rv:{<customer_id>}:ev`` set: the customer's applied review event_ids (resend dedupe)
- ``<p>rv:regions``            hash: ``<counter>:<region>`` -> count, every region's counters
- ``<p>rv:region-names``       set: the regions counted (at most ``max_regions``)

The customer keys share the customer's hash tag; the two region keys are global and written in
the same script call, so a review's counters move together, atomically, on one Redis (the
worker's). Unlike the purchases store there is no split of a batch by Redis Cluster hash slot: on
a Redis Cluster the fold is refused with a clear error (the region keys are in other slots than
the customers'); the reads work there.

Every operation runs under a :class:`state.adapters.redis_retry.Retrier`; retrying the fold after Redis
applied it is safe: the offset fences turn what was applied into redeliveries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, cast

import redis.asyncio as redis

from state.adapters.redis_access import RedisAccess, RedisClient, open_client
from state.adapters.redis_retry import OnRetry, Retrier, redis_address
from state.adapters.retry import RetryPolicy
from state.analytics.review_store import DEFAULT_MAX_REGIONS, ReviewDelivery, ReviewOutcome
from state.analytics.reviews import COUNTERS, Counters, combine, increments
from state.customer.store import fence_field

__all__ = ["RedisReviewStore"]

_FOLD_LUA = resources.files("state.adapters").joinpath("review_fold.lua").read_text()
_SCAN_COUNT = 2000
_COUNTER_NAMES = frozenset(COUNTERS)


class RedisReviewStore:
    """:class:`state.analytics.review_store.ReviewStore` on Redis."""

    def __init__(
        self,
        client: RedisClient,
        prefix: str = "",
        *,
        max_regions: int = DEFAULT_MAX_REGIONS,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self.max_regions = max_regions
        self._fold = client.register_script(_FOLD_LUA)
        self._regions_key = f"{prefix}rv:regions"
        self._names_key = f"{prefix}rv:region-names"
        self._retry = Retrier(retry or RetryPolicy.none(), redis_address(client), on_retry).call

    @classmethod
    def connect(
        cls,
        access: RedisAccess,
        prefix: str = "",
        *,
        max_regions: int = DEFAULT_MAX_REGIONS,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
    ) -> RedisReviewStore:
        """A store on the Redis ``access`` describes (ACL user, TLS); by default the first error raises."""
        client = open_client(access, decode_responses=True)
        return cls(client, prefix, max_regions=max_regions, retry=retry, on_retry=on_retry)

    async def close(self) -> None:
        await self._redis.aclose()

    def _customer_key(self, customer_id: str) -> str:
        return f"{self._prefix}rv:{{{customer_id}}}"

    async def apply_reviews(
        self, deliveries: Sequence[ReviewDelivery], epochs: Mapping[str, int]
    ) -> list[ReviewOutcome]:
        if not deliveries:
            return []
        if isinstance(self._redis, redis.RedisCluster):
            raise ValueError(
                "review counters need a single Redis node (SEGSTREAM_REDIS_CLUSTER=false): a review's region "
                "counters are folded in the same atomic call as its customer's, and on a Redis Cluster they "
                "are in other hash slots"
            )
        keys = [self._regions_key, self._names_key]
        args: list[str | int] = [self.max_regions]
        for d in deliveries:
            r = d.review
            key = self._customer_key(r.customer_id)
            keys += (key, f"{key}:ev")
            added = "|".join(f"{name}|{delta}" for name, delta in increments(r).items())
            fence = fence_field(d.topic, d.partition, epochs.get(d.topic, 0))
            args += (r.customer_id, r.event_id, fence, d.offset, r.region, added)
        codes = await self._retry("fold a batch of reviews", lambda: self._fold(keys=keys, args=args))
        return [ReviewOutcome(int(code)) for code in codes]

    async def regions(self) -> dict[str, Counters]:
        raw = cast(
            dict[str, str],
            await self._retry("read the region counters", lambda: self._redis.hgetall(self._regions_key)),
        )
        found: dict[str, Counters] = {}
        for name, value in raw.items():
            counter, _, region = name.partition(":")
            found.setdefault(region, {})[counter] = int(value)
        return {region: combine([counters]) for region, counters in found.items()}

    async def customers(self) -> dict[str, Counters]:
        return await self._retry("read every reviewer's counters", self._customers)

    async def _customers(self) -> dict[str, Counters]:
        pattern = f"{self._prefix}rv:{{*"
        keys = [k async for k in self._redis.scan_iter(pattern, count=_SCAN_COUNT, _type="hash")]
        found: dict[str, Counters] = {}
        for start in range(0, len(keys), _SCAN_COUNT):
            pipe = self._redis.pipeline(transaction=False)
            for key in keys[start : start + _SCAN_COUNT]:
                pipe.hgetall(key)
            rows: list[dict[str, Any]] = await pipe.execute()
            for row in rows:
                if "customer_id" in row:
                    found[row["customer_id"]] = combine(
                        [{k: int(v) for k, v in row.items() if k in _COUNTER_NAMES}]
                    )
        return found

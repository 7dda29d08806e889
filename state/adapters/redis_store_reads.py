"""The store's reads of customers: their state, their tallies, the watermarks and the running totals.

Part of :class:`state.adapters.redis_store.RedisStore` (:class:`StoreReads`). Every read is
read-only, so running it again after a transient error is safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields

from state.adapters.redis_store_base import SCAN_COUNT, StoreBase
from state.adapters.state_read import read_states
from state.adapters.tally_read import read_tallies
from state.customer.rfm import CustomerState
from state.customer.store import Stats

__all__ = ["StoreReads"]

_STATES_PER_CALL = 500  # customers per script call reading states or tallies (state_read.py, tally_read.py)


class StoreReads(StoreBase):
    """Customers' states and tallies, the watermarks and the running totals."""

    async def tally(self, table: str, customer_id: str | None = None) -> dict[str, int]:
        if customer_id is not None:
            return (await self.tallies(table, [customer_id]))[customer_id]
        key = self._shared_tally_key(table)
        raw = await self._retry("read a tally table", lambda: self._redis.hgetall(key))
        return {str(f): int(v) for f, v in raw.items()}

    async def tallies(self, table: str, customer_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        ids = list(customer_ids)
        per_call = self._per_call(_STATES_PER_CALL)
        found: dict[str, dict[str, int]] = {}
        for start in range(0, len(ids), SCAN_COUNT):
            chunk = ids[start : start + SCAN_COUNT]

            async def read(chunk: list[str] = chunk) -> dict[str, dict[str, int]]:  # read-only
                return await read_tallies(self._redis, self._state_key, table, chunk, per_call=per_call)

            found.update(await self._retry("read customers' tallies", read))
        return found

    async def get(self, customer_id: str) -> CustomerState | None:
        return (await self.current_states([customer_id])).get(customer_id)

    async def current_states(self, customer_ids: Iterable[str]) -> dict[str, CustomerState]:
        ids = list(customer_ids)

        per_call = self._per_call(_STATES_PER_CALL)

        async def read() -> dict[str, CustomerState]:  # read-only
            return await read_states(self._redis, self._state_key, ids, per_call=per_call)

        return await self._retry("read customers", read) if ids else {}

    async def all_customers(self) -> list[CustomerState]:
        return await self._retry("read every customer", self._all_customers)

    async def _all_customers(self) -> list[CustomerState]:
        pattern = f"{self._prefix}seg:{{*}}"  # a state hash's name ends at its hash tag; its tallies' do not
        keys = [k async for k in self._redis.scan_iter(pattern, count=SCAN_COUNT, _type="hash")]
        tag = len(f"{self._prefix}seg:{{")  # the customer id is the key's hash tag
        ids = [key[tag:-1] for key in keys]
        per_call = self._per_call(_STATES_PER_CALL)
        states: list[CustomerState] = []
        for start in range(0, len(ids), SCAN_COUNT):
            chunk = ids[start : start + SCAN_COUNT]
            states.extend(
                (await read_states(self._redis, self._state_key, chunk, per_call=per_call)).values()
            )
        return states

    async def watermark(self) -> int | None:
        top = await self._retry(
            "read the watermark", lambda: self._redis.zrevrange(self._watermark_key, 0, 0, withscores=True)
        )
        return int(top[0][1]) if top else None

    async def watermarks(self) -> dict[int, int]:
        marks = await self._retry(
            "read the partition watermarks",
            lambda: self._redis.zrange(self._watermark_key, 0, -1, withscores=True),
        )
        return {int(mark[0]): int(mark[1]) for mark in marks}

    async def stats(self) -> Stats:
        raw = await self._retry("read the running totals", lambda: self._redis.hgetall(self._stats_key))
        return Stats(**{f.name: int(raw.get(f.name, 0)) for f in fields(Stats)})

"""Reading customers' own tally counters in one Lua reply per chunk of customers.

A customer's counters are a MessagePack map split over the fields ``t0``, ``t1``, ... of their
state hash (:mod:`state.adapters.packed_tallies`); earlier versions kept the map in the string
``seg:{id}:tp`` and, before that, each counter in a field of the hash ``seg:{id}:t``. The script
joins the fields or falls back to the string (``read_packed`` of ``state_fields.lua``, as the
fold does), and returns the decoded map with the old hash's fields, for all customers of a chunk
in one ``cmsgpack`` reply (the pattern of :mod:`state.adapters.state_read`). Read only; on Redis
Cluster one customer per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import redis.asyncio as redis

from state.adapters.chunked_eval import eval_per_chunk
from state.adapters.packed_tallies import merged
from state.adapters.state_hash import FIELDS_LUA

__all__ = ["read_tallies"]

# KEYS: per customer the state hash, the earlier ``:tp`` string and the earlier ``:t`` hash.
# Returns cmsgpack of [[map or false, [field, value, ...]], ...] in KEYS order.
_READ_TALLIES = (
    FIELDS_LUA
    + """
local out = {}
for k = 1, #KEYS, 3 do
  local raw = read_packed(KEYS[k], KEYS[k + 1])
  out[#out + 1] = {raw and cmsgpack.unpack(raw) or false, redis.call('HGETALL', KEYS[k + 2])}
end
return cmsgpack.pack(out)
"""
)


async def read_tallies(
    client: redis.Redis | redis.RedisCluster,
    state_key: Callable[[str], str],
    table: str,
    ids: Sequence[str],
    *,
    per_call: int,
) -> dict[str, dict[str, int]]:
    """``table``'s counters of each of ``ids`` (empty for a customer without any)."""
    replies = await eval_per_chunk(
        client,
        _READ_TALLIES,
        ids,
        lambda c: (state_key(c), f"{state_key(c)}:tp", f"{state_key(c)}:t"),
        (),
        per_call=per_call,
    )
    found: dict[str, dict[str, int]] = {}
    for chunk, reply in replies:
        rows: list[Any] = msgspec.msgpack.decode(reply)
        for c, (packed, flat) in zip(chunk, rows, strict=True):
            hashed = {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}
            found[c] = merged(table, packed or None, hashed)
    return found

"""Reading customers' current states in one Lua reply per chunk, packed with MessagePack.

The provisional step (``agents.early``) reads the state of every live buyer of a batch right
after folding it. As one ``HGETALL`` per customer, redis-py parsed each whole state hash (the
purchase-day fields, fences and log base too) into a Python dict: 0.02-0.3 s for a batch of 1,000
new customers under live load (``bench/freshness.py`` probe, 2026-11-30). One script call per
chunk of customers reads only the fields a :class:`~state.customer.rfm.CustomerState` needs and
returns them as one ``cmsgpack`` string, decoded in C by msgspec (the same pattern as
:mod:`state.adapters.log_read`). Read only; on Redis Cluster one customer per call (a script may
only touch one hash slot).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec
import redis.asyncio as redis

from state.adapters.chunked_eval import eval_per_chunk
from state.adapters.state_hash import BASE_FIELDS, READ_FIELDS, parse_state, state_values
from state.customer.rfm import CustomerState

__all__ = ["read_states"]

# KEYS: each customer's state hash; ARGV: the fields. Returns cmsgpack of [[value or false, ...], ...].
_READ_STATES = """
local out = {}
for k = 1, #KEYS do
  out[k] = redis.call('HMGET', KEYS[k], unpack(ARGV))
end
return cmsgpack.pack(out)
"""
_DECODE = msgspec.msgpack.Decoder(list[list[str | bool]])


async def read_states(
    client: redis.Redis | redis.RedisCluster,
    state_key: Callable[[str], str],
    ids: Sequence[str],
    *,
    per_call: int,
) -> dict[str, CustomerState]:
    """The current states of those of ``ids`` that have one (``per_call`` customers per call)."""
    replies = await eval_per_chunk(
        client, _READ_STATES, ids, lambda c: (state_key(c),), READ_FIELDS, per_call=per_call
    )
    states: dict[str, CustomerState] = {}
    for chunk, reply in replies:
        for c, values in zip(chunk, _DECODE.decode(reply), strict=True):
            found = state_values([v if isinstance(v, str) else None for v in values])
            present = {name: v for name, v in zip(BASE_FIELDS, found, strict=True) if v is not None}
            if "monetary_cents" in present:  # every applied event writes it; fences alone are no customer
                states[c] = parse_state(c, present)
    return states

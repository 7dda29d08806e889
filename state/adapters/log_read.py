"""Reading customers' event logs for the evaluator in one Lua reply per chunk, packed with MessagePack.

The evaluator reads, for every customer due at a tick, their log base (``HMGET`` of
:data:`~state.adapters.state_hash.READ_FIELDS`) and their log (``ZRANGE ... WITHSCORES``). As two
pipelined commands per customer, redis-py parses two replies per customer in Python: under live
load (3,500 new customers a second) that was 12% of a worker's samples in py-spy (2026-11-30). One
script call per chunk of customers returns everything as one ``cmsgpack`` string, decoded in C by
msgspec: one reply to parse per chunk. The script only reads, and reads each customer's two keys
atomically. On Redis Cluster a script may only touch one hash slot, so there each customer is one
call (its two keys share the customer's hash tag). The entries of many customers are parsed in
a thread, so that a worker's event loop, which the evaluator shares with ingest, is not held.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec
import redis.asyncio as redis

from state.adapters.chunked_eval import eval_per_chunk
from state.adapters.off_loop import off_the_loop
from state.adapters.state_hash import READ_FIELDS, log_base
from state.customer.event_log import CustomerLog, LogEntry

__all__ = ["read_logs"]

# KEYS: each customer's state hash then log; ARGV: the base fields. Returns cmsgpack of
# [[fields (false: absent), [member, score, member, score, ...]], ...] in KEYS order.
_READ_LOGS = """
local out = {}
for k = 1, #KEYS, 2 do
  out[#out + 1] = {redis.call('HMGET', KEYS[k], unpack(ARGV)),
                   redis.call('ZRANGE', KEYS[k + 1], 0, -1, 'WITHSCORES')}
end
return cmsgpack.pack(out)
"""
_DECODE = msgspec.msgpack.Decoder(list[tuple[list[str | bool], list[str]]])


async def read_logs(
    client: redis.Redis | redis.RedisCluster,
    state_key: Callable[[str], str],
    ids: Sequence[str],
    *,
    per_call: int,
) -> dict[str, CustomerLog]:
    """The logs of ``ids`` (``per_call`` customers per script call; 1 on a cluster), in one pipeline."""
    replies = await eval_per_chunk(
        client,
        _READ_LOGS,
        ids,
        lambda c: (state_key(c), f"{state_key(c)}:log"),
        READ_FIELDS,
        per_call=per_call,
    )
    return await off_the_loop(len(ids), _parse, replies)  # the worker's event loop serves ingest meanwhile


def _parse(replies: Sequence[tuple[Sequence[str], bytes]]) -> dict[str, CustomerLog]:
    logs: dict[str, CustomerLog] = {}
    for chunk, reply in replies:
        for c, (fields, flat) in zip(chunk, _DECODE.decode(reply), strict=True):
            values = [v if isinstance(v, str) else None for v in fields]
            entries = [LogEntry.decode(flat[i], int(flat[i + 1])) for i in range(0, len(flat), 2)]
            logs[c] = CustomerLog(log_base(c, values), entries)
    return logs

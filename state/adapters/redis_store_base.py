"""What every part of :class:`state.adapters.redis_store.RedisStore` shares: keys, scripts, retries.

The store is one class assembled from its roles (``redis_store_fold``, ``redis_store_reads``,
``redis_store_offsets``, ``redis_store_agenda``); :class:`StoreBase` is the part they all stand on:
the client, the key names (the layout is in :mod:`state.adapters.redis_store`'s header), the
registered Lua scripts, the retrier, running scripts in a cluster's pipelines, and the check that
Redis did not restart and lose writes this store made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, TypeVar, cast

import redis.asyncio as redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from state.adapters.agenda_partitions import count_key, move_legacy_agenda, resolve_partitions
from state.adapters.dedupe_window import DEDUPE_WINDOW_S, DedupeWindow
from state.adapters.redis_access import RedisClient
from state.adapters.redis_retry import OnRetry, Retrier, redis_address
from state.adapters.retry import RetryPolicy, StoreRestarted
from state.adapters.state_hash import FIELDS_LUA

# The store's log name, as it was before the store was split into its roles.
log = logging.getLogger("state.adapters.redis_store")
T = TypeVar("T")

__all__ = ["EVAL_PARTITIONS", "SCAN_COUNT", "StoreBase"]

_SCRIPTS = resources.files("state.adapters")
_FOLD_LUA = FIELDS_LUA + _SCRIPTS.joinpath("rfm_fold.lua").read_text()
_COMPACT_LUA = FIELDS_LUA + _SCRIPTS.joinpath("log_compact.lua").read_text()
SCAN_COUNT = 2000
"""Keys per SCAN step, and customers per pipelined read or write."""
EVAL_PARTITIONS = 4
"""The evaluation partitions a store proposes for a new namespace: the ``purchases`` topic's
default partition count (``SEGSTREAM_PARTITIONS``; :mod:`state.adapters.agenda_partitions`)."""
# Compare-and-set of a topic's fence epoch, with the forgetting of its offsets, in one step
# (``StoreOffsets.reset_topic``).
# KEYS: epochs hash, consumed zset, dead-letter fence zset, resets list;
# ARGV: topic, new epoch, reset record. Returns 1 if the epoch moved, 0 if it was not new epoch - 1.
_RESET_TOPIC = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if current ~= tonumber(ARGV[2]) - 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local prefix = ARGV[1] .. ':'
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if string.sub(member, 1, #prefix) == prefix then redis.call('ZREM', key, member) end
  end
end
redis.call('RPUSH', KEYS[4], ARGV[3])
return 1
"""


class StoreBase:
    """The client, keys, scripts and retrier of a Redis customer store (no operation of its own)."""

    def __init__(
        self,
        client: RedisClient,
        prefix: str = "",
        *,
        cluster: bool = False,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
        watch_restarts: bool = False,
        dedupe_window_s: int = DEDUPE_WINDOW_S,
        wall_s: Callable[[], float] = time.time,
        eval_partitions: int = EVAL_PARTITIONS,
    ) -> None:
        if eval_partitions < 1:
            raise ValueError(f"eval_partitions must be >= 1, got {eval_partitions}")
        self._dedupe = DedupeWindow(dedupe_window_s, wall_s)
        self._redis = client
        self._cluster = cluster
        self._prefix = prefix
        self._fold = client.register_script(_FOLD_LUA)
        self._reset = client.register_script(_RESET_TOPIC)
        self._compact = client.register_script(_COMPACT_LUA)
        self._watermark_key = f"{prefix}seg:watermark"
        self._stats_key = f"{prefix}seg:stats"
        self._partitions_key = count_key(prefix)
        self._proposed_partitions = eval_partitions
        self._partitions: int | None = None  # the namespace's, once read (it never changes)
        offsets = f"{prefix}seg:{{offsets}}:" if cluster else f"{prefix}seg:"  # one slot for the reset script
        self._letter_fence_key = f"{offsets}dlq-fence"
        self._consumed_key = f"{offsets}consumed"
        self._epoch_key = f"{offsets}fence-epoch"
        self._resets_key = f"{offsets}topic-resets"
        self._scripts_loaded = (
            False  # a cluster's pipelines call scripts by SHA: loaded on every master first
        )
        self._watch_restarts = watch_restarts
        self._run_id: str | None = None  # the Redis process this store has been writing to
        self._recorded: dict[str, int] = {}  # consumed offsets this store recorded ("topic:partition")
        verify = self._same_redis_or_fail if watch_restarts else None
        self._retry = Retrier(retry or RetryPolicy.none(), redis_address(client), on_retry, verify).call

    def _per_call(self, customers: int) -> int:
        """Customers per script call: ``customers`` on one node, 1 on a cluster (a call stays in one hash slot)."""
        return 1 if self._cluster else customers

    def _agenda_key(self, kind: str, partition: int) -> str:
        """Evaluation partition ``partition``'s ``agenda`` or ``received`` sorted set."""
        return f"{self._prefix}eval:{{p{partition}}}:{kind}"

    async def eval_partitions(self) -> int:
        """The namespace's evaluation partition count (:mod:`state.adapters.agenda_partitions`); the
        first call also moves an agenda of one key, from before the cut, onto the partitions."""
        if self._partitions is None:
            key, proposed = self._partitions_key, self._proposed_partitions
            count = await self._retry(
                "read the evaluation partitions", lambda: resolve_partitions(self._redis, key, proposed)
            )
            legacy = (f"{self._prefix}eval:{{segments}}:agenda", f"{self._prefix}eval:{{segments}}:received")
            moved = await self._retry(
                "move the agenda onto its partitions",
                lambda: move_legacy_agenda(self._redis, legacy, self._agenda_key, count),
            )
            if moved:
                log.info("moved %d agenda entries onto %d evaluation partitions", moved, count)
            self._partitions = count
        return self._partitions

    def _state_key(self, customer_id: str) -> str:
        return f"{self._prefix}seg:{{{customer_id}}}"

    def _shared_tally_key(self, table: str) -> str:
        if self._cluster:
            raise ValueError(
                f"shared tally table {table!r} needs a single Redis node: a Redis Cluster cannot fold it "
                "atomically with the customers' state"
            )
        return f"{self._prefix}seg:t:{table}"

    async def _in_pipeline(self, pipe: Any, script: AsyncScript, keys: list[str], args: list[Any]) -> None:
        """Queue ``script`` in ``pipe``; a cluster pipeline queues a bare EVALSHA (see :meth:`_scripts_ready`)."""
        if self._cluster:
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)  # .evalsha is blocked there
        else:
            await script(keys=keys, args=args, client=pipe)

    async def _scripts_ready(self, run: Callable[[], Awaitable[T]]) -> T:
        """``await run()`` once the pipelined scripts are known to every master of a cluster.

        redis-py's cluster pipeline sends a script by SHA only; a master that does not know it (it
        restarted, or a failover promoted another) answers NOSCRIPT: the scripts are loaded on every
        master again and ``run`` runs once more (callers pass only operations safe to repeat).
        """
        if not self._cluster:
            return await run()
        for attempt in (1, 2):
            if not self._scripts_loaded:
                for script in (self._fold, self._compact):
                    await self._redis.script_load(script.script)  # SCRIPT LOAD goes to every master
                self._scripts_loaded = True
            try:
                return await run()
            except NoScriptError:
                self._scripts_loaded = False
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _watch(self) -> None:
        if self._watch_restarts:
            await self._retry("check that Redis kept its writes", self._same_redis_or_fail)

    async def _same_redis_or_fail(self) -> None:
        """Raise :class:`StoreRestarted` if Redis restarted and no longer holds a consumed offset this
        store recorded (it lost acknowledged writes: its AOF is fsynced once a second).

        A write after such a loss would move customers' offset fences past the lost events, so the
        worker must not write: it exits, and on restart resumes from the offsets Redis holds
        (``agents.resume``). A restart that kept everything (a killed redis-server keeps what it had
        written to the operating system) is logged and the worker carries on. Checked before every
        ingest batch and before every retry after a lost connection.
        """
        if isinstance(self._redis, redis.RedisCluster):  # every master's: one restarting is a restart
            infos = await self._redis.info("server", target_nodes=redis.RedisCluster.PRIMARIES)
            run_id = ",".join(sorted(str(info["run_id"]) for info in infos.values()))
        else:
            run_id = str((await self._redis.info("server"))["run_id"])
        if self._run_id is not None and run_id != self._run_id and self._recorded:
            held = dict(
                cast(
                    list[tuple[str, float]],
                    await self._redis.zrange(self._consumed_key, 0, -1, withscores=True),
                )
            )
            lost = {m: (int(held.get(m, -1)), o) for m, o in self._recorded.items() if held.get(m, -1) < o}
            if lost:
                raise StoreRestarted(
                    f"{redis_address(self._redis)} restarted (run_id {self._run_id[:8]} -> {run_id[:8]}) and lost "
                    f"writes it had acknowledged: consumed offsets (held, recorded) {lost}; exiting so the "
                    "worker resumes from the offsets Redis holds"
                )
        if self._run_id is not None and run_id != self._run_id:
            log.warning(
                "Redis restarted (run_id %s -> %s) and kept every offset this worker recorded",
                self._run_id[:8],
                run_id[:8],
            )
        self._run_id = run_id

"""The Redis customer store: one Lua call folds a batch, each event atomically.

Keys (``<p>`` is the namespace prefix, ``{id}`` a hash tag so Redis Cluster keeps
one customer's keys in one slot):

- ``<p>seg:{<customer_id>}``      hash: the state fields, the UTC days with a purchase (``days0``,
  ``days1``, ...: 3 base-62 characters a day, 20 to a field; ``purchase_days`` counts them), one offset fence per partition and the
  compacted head of the event log (field ``log_base``, :class:`state.customer.event_log.LogBase`, or
  only its bound while the log is empty: the base is then the live state)
- ``<p>seg:{<customer_id>}:ids:<g>`` set: event_ids applied in dedupe generation ``g``
  (:mod:`state.adapters.dedupe_window`; producer-resend dedupe)
- ``<p>seg:{<customer_id>}:ev``   set: the applied event_ids of versions before the window (read only)
- ``<p>seg:{<customer_id>}:days`` set: UTC days with a purchase, as earlier versions kept them (read
  only; the days are now fields of the state hash)
- ``<p>seg:{<customer_id>}:log``  zset: applied events after the log base (``LogEntry`` text) by
  occurred_at_ms; compacted once the evaluator's clock has passed them (:meth:`RedisStore.compact`)
- ``<p>seg:{<customer_id>}:tp``    string: the customer's own tally counters (``state.customer.store.Tally``), every
  table in one MessagePack map (:mod:`state.adapters.packed_tallies`: one key per customer, ~9 bytes a counter)
- ``<p>seg:{<customer_id>}:t``     hash: the same counters as earlier versions wrote them (field
  ``<table>/<field>``; read, never written)
- ``<p>seg:t:<table>``            hash: a shared tally table's counters (single Redis node only: a
  cluster cannot fold them in the same atomic call as the customers' state)
- ``<p>eval:{segments}:agenda``   zset: events not evaluated yet, score occurred_at_ms + 1
- ``<p>eval:{segments}:received`` zset: the same entries, score the wall-clock ms a worker first
  received the event (``ZADD NX``; latency metrics only)
- ``<p>seg:consumed``             zset: next unprocessed offset per ``topic:partition`` (``ZADD GT``)
- ``<p>seg:watermark``            zset: largest occurred_at_ms per partition (``ZADD GT``)
- ``<p>seg:stats``                hash: running totals for progress displays
- ``<p>seg:dlq-fence``            zset: last dead-lettered offset per ``topic:partition``
- ``<p>seg:fence-epoch``          hash: topic -> fence epoch (absent: 0), see ``state.customer.store``
- ``<p>seg:topic-resets``         list: JSON :class:`state.customer.store.TopicReset` records, oldest first

On a Redis Cluster (``cluster=True``) the last four are ``<p>seg:{offsets}:consumed``,
``<p>seg:{offsets}:dlq-fence``, ``<p>seg:{offsets}:fence-epoch`` and ``<p>seg:{offsets}:topic-resets``:
one hash tag, so a topic reset still moves them in one script call; a single node keeps the
names above (the data of earlier versions). The fold runs one script call per hash slot, the
running totals follow it, and shared tally tables are refused (they cannot be folded in the
customer's atomic call).

Every operation runs under a :class:`state.adapters.redis_retry.Retrier`: transient errors (Redis
restarting or loading) are retried within the policy's budget. Each operation says why
running it again is safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from functools import partial
from importlib import resources
from typing import Any, TypeVar, cast

import redis.asyncio as redis
from redis.client import NEVER_DECODE
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from state.adapters.dedupe_window import DEDUPE_WINDOW_S, DedupeWindow, Generation
from state.adapters.fold_call import by_hash_slot, by_tally_volume, fold_call
from state.adapters.log_read import read_logs
from state.adapters.packed_tallies import merged
from state.adapters.redis_access import (
    HiredisPackingConnection,
    HiredisPackingSSLConnection,
    RedisAccess,
    RedisClient,
    open_client,
)
from state.adapters.redis_retry import OnRetry, Retrier, redis_address
from state.adapters.retry import RetryPolicy, StoreRestarted, StoreUnavailable
from state.adapters.state_hash import parse_state
from state.customer.event_log import CustomerLog
from state.customer.rfm import DAY_MS, CustomerState
from state.customer.store import (
    AgendaEntry,
    Delivery,
    Outcome,
    Partition,
    Stats,
    TopicReset,
    agenda_member,
    highest_per_key,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["REDIS_ERRORS", "RedisStore"]

_FOLD_LUA = resources.files("state.adapters").joinpath("rfm_fold.lua").read_text()
_COMPACT_LUA = resources.files("state.adapters").joinpath("log_compact.lua").read_text()
_SCAN_COUNT = 2000
# Tallies per fold script call, and per pipeline of calls: ~5 us each in Lua, so a call stays near
# 0.1 s, far below Redis's 5-second busy-script threshold, and a pipeline near 1 MB, whatever a
# batch's baskets hold (events are atomic one by one, so cutting a batch changes nothing else).
_TALLIES_PER_CALL = 20_000
# Customers per log compaction call on a single node (each one's script work is its log's head).
_COMPACT_PER_CALL = 100
# Customers per log read call on a single node (state.adapters.log_read).
_LOGS_PER_CALL = 500
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, StoreUnavailable)
# Compare-and-set of a topic's fence epoch, with the forgetting of its offsets, in one step.
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


class RedisStore:
    """:class:`state.customer.store.CustomerStore` on Redis."""

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
    ) -> None:
        self._dedupe = DedupeWindow(dedupe_window_s, wall_s)
        self._redis = client
        self._cluster = cluster
        self._prefix = prefix
        self._fold = client.register_script(_FOLD_LUA)
        self._reset = client.register_script(_RESET_TOPIC)
        self._compact = client.register_script(_COMPACT_LUA)
        self._watermark_key = f"{prefix}seg:watermark"
        self._stats_key = f"{prefix}seg:stats"
        self._agenda_key = f"{prefix}eval:{{segments}}:agenda"
        self._received_key = f"{prefix}eval:{{segments}}:received"
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

    @classmethod
    def connect(
        cls,
        access: RedisAccess,
        prefix: str = "",
        *,
        cluster: bool = False,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
        watch_restarts: bool = False,
        dedupe_window_s: int = DEDUPE_WINDOW_S,
    ) -> RedisStore:
        """A store on the Redis ``access`` describes (ACL user, TLS).

        ``retry``: the worker's policy; by default (command-line tools) the first error raises.
        ``watch_restarts``: the worker's ingest: refuse to write to a Redis that restarted and lost
        writes this store made (:meth:`_same_redis_or_fail`).
        """
        client = open_client(
            access,
            decode_responses=True,
            plain_class=HiredisPackingConnection,
            tls_class=HiredisPackingSSLConnection,
        )
        return cls(
            client,
            prefix,
            cluster=cluster or access.cluster,
            retry=retry,
            on_retry=on_retry,
            watch_restarts=watch_restarts,
            dedupe_window_s=dedupe_window_s,
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = "",
        *,
        cluster: bool = False,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
        dedupe_window_s: int = DEDUPE_WINDOW_S,
    ) -> RedisStore:
        """A store on an open Redis (no ACL user, no TLS unless ``rediss://``)."""
        return cls.connect(
            RedisAccess(url),
            prefix,
            cluster=cluster,
            retry=retry,
            on_retry=on_retry,
            dedupe_window_s=dedupe_window_s,
        )

    @property
    def cluster(self) -> bool:
        """True when keys are grouped by Redis Cluster hash slot (one script call per slot)."""
        return self._cluster

    async def close(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> None:
        """Raise ``redis.ConnectionError`` if Redis cannot be reached."""
        await self._redis.ping()

    def _state_key(self, customer_id: str) -> str:
        return f"{self._prefix}seg:{{{customer_id}}}"

    async def apply_batch(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        await self._watch()
        if not deliveries:
            return []
        # Retrying the fold is safe even if Redis applied it before the error reached us: the
        # offset fences turn every event already applied into REDELIVERED (event_id dedupe
        # catches the rest), the watermark and agenda writes are idempotent. Only the running
        # totals can then count such an event as redelivered as well as applied. On a single node
        # the fold counts them in the same atomic call; a cluster's totals hash is in another slot,
        # so there they follow in a call of their own (a crash between the two undercounts).
        outcomes = await self._retry("fold a batch", lambda: self._fold_batch(deliveries))
        if self._cluster:
            totals = Stats()
            totals.count(outcomes)
            await self._retry("add to the running totals", lambda: self._add_stats(totals))
        return outcomes

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

    async def _fold_batch(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        return await self._scripts_ready(lambda: self._fold_batch_once(deliveries))

    async def _fold_batch_once(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        epochs = {str(t): int(e) for t, e in (await self._redis.hgetall(self._epoch_key)).items()}
        groups = (
            by_hash_slot(deliveries, self._state_key) if self._cluster else [list(range(len(deliveries)))]
        )
        groups = [part for group in groups for part in by_tally_volume(group, deliveries, _TALLIES_PER_CALL)]
        outcomes: list[Outcome] = [Outcome.REDELIVERED] * len(deliveries)
        generation = self._dedupe.now()  # one per batch: every call agrees

        def record(sent: list[list[int]], results: Sequence[Any]) -> None:
            for group, codes in zip(sent, results, strict=False):
                for i, code in zip(group, codes, strict=True):
                    outcomes[i] = Outcome(int(code))

        # The script calls go in pipelines of at most _TALLIES_PER_CALL tallies (usually one for
        # the whole batch): a batch heavy with tallies is never one huge write to the socket.
        pipe, size = self._redis.pipeline(transaction=False), 0
        sent: list[list[int]] = []
        for group in groups:
            tallies = sum(len(deliveries[i].tallies) for i in group)
            if sent and size + tallies > _TALLIES_PER_CALL:
                record(sent, await pipe.execute())
                pipe, sent, size = self._redis.pipeline(transaction=False), [], 0
            keys, args = self._call_arguments([deliveries[i] for i in group], epochs, generation)
            await self._in_pipeline(pipe, self._fold, keys, args)
            sent.append(group)
            size += tallies
        watermarks = highest_per_key((d.partition, d.event.occurred_at_ms) for d in deliveries)
        pipe.zadd(self._watermark_key, {str(p): ms for p, ms in watermarks.items()}, gt=True)
        agenda = {
            agenda_member(d.event.customer_id, d.event.event_id): d.event.occurred_at_ms + 1
            for d in deliveries
        }
        pipe.zadd(self._agenda_key, agenda)
        receipts: dict[str, int] = {}
        for d in deliveries:
            if d.received_ms is not None:
                receipts.setdefault(agenda_member(d.event.customer_id, d.event.event_id), d.received_ms)
        if receipts:
            pipe.zadd(self._received_key, receipts, nx=True)  # a resend keeps the first receipt
        record(sent, await pipe.execute())
        return outcomes

    def _call_arguments(
        self, deliveries: Sequence[Delivery], epochs: Mapping[str, int], generation: Generation
    ) -> tuple[list[str], list[str | int]]:
        stats_key = None if self._cluster else self._stats_key
        return fold_call(deliveries, epochs, generation, self._state_key, self._shared_tally_key, stats_key)

    def _shared_tally_key(self, table: str) -> str:
        if self._cluster:
            raise ValueError(
                f"shared tally table {table!r} needs a single Redis node: a Redis Cluster cannot fold it "
                "atomically with the customers' state"
            )
        return f"{self._prefix}seg:t:{table}"

    async def tally(self, table: str, customer_id: str | None = None) -> dict[str, int]:
        if customer_id is not None:
            return (await self.tallies(table, [customer_id]))[customer_id]
        key = self._shared_tally_key(table)
        raw = await self._retry("read a tally table", lambda: self._redis.hgetall(key))
        return {str(f): int(v) for f, v in raw.items()}

    async def tallies(self, table: str, customer_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        ids = list(customer_ids)
        found: dict[str, dict[str, int]] = {}
        for start in range(0, len(ids), _SCAN_COUNT):
            chunk = ids[start : start + _SCAN_COUNT]

            async def read(chunk: list[str] = chunk) -> list[Any]:
                pipe = self._redis.pipeline(transaction=False)
                for c in chunk:
                    pipe.execute_command("GET", f"{self._state_key(c)}:tp", **{NEVER_DECODE: []})
                    pipe.hgetall(f"{self._state_key(c)}:t")
                return await pipe.execute()

            raw = await self._retry("read customers' tallies", read)
            for c, packed, hashed in zip(chunk, raw[::2], raw[1::2], strict=True):
                found[c] = merged(table, packed, hashed)
        return found

    async def _add_stats(self, totals: Stats) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for f in fields(Stats):
            value = getattr(totals, f.name)
            if value:
                pipe.hincrby(self._stats_key, f.name, value)
        await pipe.execute()

    async def dead_letter_fences(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        members = [f"{t}:{p}" for t, p in wanted]
        scores = await self._retry(
            "read dead-letter fences", lambda: self._redis.zmscore(self._letter_fence_key, members)
        )
        return {tp: int(score) if score is not None else -1 for tp, score in zip(wanted, scores, strict=True)}

    async def record_dead_letters(self, last_offsets: Mapping[Partition, int], count: int) -> None:
        if not last_offsets and not count:
            return

        async def record() -> None:  # fences: ZADD GT, idempotent; the count may repeat on a retry
            pipe = self._redis.pipeline(transaction=False)
            if last_offsets:
                fences = {f"{t}:{p}": offset for (t, p), offset in last_offsets.items()}
                pipe.zadd(self._letter_fence_key, fences, gt=True)
            if count:
                pipe.hincrby(self._stats_key, "invalid", count)
            await pipe.execute()

        await self._retry("record dead letters", record)

    async def get(self, customer_id: str) -> CustomerState | None:
        raw = await self._retry("read a customer", lambda: self._redis.hgetall(self._state_key(customer_id)))
        return parse_state(raw) if raw else None

    async def current_states(self, customer_ids: Iterable[str]) -> dict[str, CustomerState]:
        ids = list(customer_ids)

        async def read() -> list[dict[str, str]]:  # read-only
            pipe = self._redis.pipeline(transaction=False)
            for c in ids:
                pipe.hgetall(self._state_key(c))
            return cast(list[dict[str, str]], await pipe.execute())

        raw = await self._retry("read customers", read) if ids else []
        return {c: parse_state(r) for c, r in zip(ids, raw, strict=True) if r}

    async def all_customers(self) -> list[CustomerState]:
        return await self._retry("read every customer", self._all_customers)

    async def _all_customers(self) -> list[CustomerState]:
        pattern = f"{self._prefix}seg:{{*}}"  # a state hash's name ends at its hash tag; its tallies' do not
        keys = [k async for k in self._redis.scan_iter(pattern, count=_SCAN_COUNT, _type="hash")]
        states: list[CustomerState] = []
        for start in range(0, len(keys), _SCAN_COUNT):
            pipe = self._redis.pipeline(transaction=False)
            for key in keys[start : start + _SCAN_COUNT]:
                pipe.hgetall(key)
            states.extend(parse_state(raw) for raw in await pipe.execute() if raw)
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

    async def record_consumed(self, next_offsets: Mapping[Partition, int]) -> None:
        await self._watch()
        if next_offsets:
            offsets = {f"{t}:{p}": offset for (t, p), offset in next_offsets.items()}
            await self._retry(  # ZADD GT: idempotent
                "record consumed offsets", lambda: self._redis.zadd(self._consumed_key, offsets, gt=True)
            )
            for member, offset in offsets.items():
                self._recorded[member] = max(offset, self._recorded.get(member, offset))

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

    async def consumed(self, topic: str) -> dict[int, int]:
        raw = cast(
            list[tuple[str, float]],
            await self._retry(
                "read consumed offsets",
                lambda: self._redis.zrange(self._consumed_key, 0, -1, withscores=True),
            ),
        )
        found = ((member.rpartition(":"), int(score)) for member, score in raw)
        return {int(p): offset for (t, _, p), offset in found if t == topic}

    async def due(self, up_to_ms: int) -> list[AgendaEntry]:
        raw = cast(
            list[tuple[str, float]],
            await self._retry(
                "read the agenda",
                lambda: self._redis.zrangebyscore(self._agenda_key, "-inf", up_to_ms, withscores=True),
            ),
        )
        return [(member, int(score)) for member, score in raw]

    async def done(self, entries: Sequence[AgendaEntry]) -> None:
        for start in range(0, len(entries), _SCAN_COUNT):
            members = [m for m, _ in entries[start : start + _SCAN_COUNT]]

            async def remove(members: list[str] = members) -> None:  # ZREM: idempotent
                pipe = self._redis.pipeline(transaction=False)
                pipe.zrem(self._agenda_key, *members)
                pipe.zrem(self._received_key, *members)
                await pipe.execute()

            await self._retry("remove agenda entries", remove)

    async def received(self, members: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(members), _SCAN_COUNT):
            chunk = list(members[start : start + _SCAN_COUNT])

            async def read(chunk: list[str] = chunk) -> list[float | None]:
                return await self._redis.zmscore(self._received_key, chunk)

            scores = await self._retry("read receipt times", read)
            found.update({m: int(s) for m, s in zip(chunk, scores, strict=True) if s is not None})
        return found

    async def logs(self, customer_ids: Iterable[str]) -> dict[str, CustomerLog]:
        ids = list(customer_ids)
        logs: dict[str, CustomerLog] = {}
        per_call = 1 if self._cluster else _LOGS_PER_CALL  # a cluster call stays in one hash slot
        for start in range(0, len(ids), _SCAN_COUNT):
            chunk = ids[start : start + _SCAN_COUNT]

            async def read(chunk: list[str] = chunk) -> dict[str, CustomerLog]:  # read-only
                return await read_logs(self._redis, self._state_key, chunk, per_call=per_call)

            logs.update(await self._retry("read event logs", read))
        return logs

    async def compact(self, customer_ids: Iterable[str], before_ms: int) -> int:
        if before_ms % DAY_MS:
            raise ValueError(f"logs are compacted at a UTC midnight, not at {before_ms} ms")
        ids = list(customer_ids)
        folded = 0
        per_call = 1 if self._cluster else _COMPACT_PER_CALL  # a cluster call stays in one hash slot
        for start in range(0, len(ids), _SCAN_COUNT):
            chunk = ids[start : start + _SCAN_COUNT]

            async def run(chunk: list[str] = chunk) -> list[Any]:  # idempotent: a base never moves back
                pipe = self._redis.pipeline(transaction=False)
                for at in range(0, len(chunk), per_call):
                    keys = [
                        k
                        for c in chunk[at : at + per_call]
                        for k in (self._state_key(c), f"{self._state_key(c)}:log")
                    ]
                    await self._in_pipeline(pipe, self._compact, keys, [before_ms])
                return await pipe.execute()

            folded += sum(
                int(n) for n in await self._retry("compact event logs", partial(self._scripts_ready, run))
            )
        return folded

    async def fence_epoch(self, topic: str) -> int:
        raw = await self._retry("read a fence epoch", lambda: self._redis.hget(self._epoch_key, topic))
        return int(raw) if raw is not None else 0

    async def reset_topic(self, reset: TopicReset) -> bool:
        keys = [self._epoch_key, self._consumed_key, self._letter_fence_key, self._resets_key]
        args: list[str | int] = [reset.topic, reset.epoch, reset.to_json()]
        # A retry after Redis applied it finds the epoch already moved and returns False: the
        # caller then re-reads the epoch and offsets, which is what it does when another worker won.
        moved = await self._retry("reset a topic's fences", lambda: self._reset(keys=keys, args=args))
        return bool(int(moved))

    async def topic_resets(self) -> list[TopicReset]:
        raw = await self._retry("read topic resets", lambda: self._redis.lrange(self._resets_key, 0, -1))
        return [TopicReset.from_json(r) for r in raw]

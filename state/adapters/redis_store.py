"""The Redis customer store: one Lua call folds a batch, each event atomically.

Keys (``<p>`` is the namespace prefix, ``{id}`` a hash tag so Redis Cluster keeps
one customer's keys in one slot):

- ``<p>seg:{<customer_id>}``      hash: the customer's state under one-letter names (``state_fields.lua``:
  ``f`` frequency, ``m`` net cents, ``r`` refunds, ``a``/``z`` first and last purchase, ``n``
  purchase days), the UTC days with a purchase (``p0``, ``p1``, ...: the first day and the gaps
  between days as LEB128 numbers, about a byte a day, 60 bytes to a field; ``rfm_fold.lua``;
  earlier versions' ``d0``, ``d1``, ... of base-62 text are converted by the customer's next
  purchase), the customer's own tally counters (``t0``, ``t1``, ...: one MessagePack map,
  :mod:`state.adapters.packed_tallies`, 60 bytes a field), one offset fence per partition and the
  compacted head of the event log (``l``, :class:`state.customer.event_log.LogBase`, or only its
  bound while the log is empty: the base is then the live state). Earlier versions' long names
  and ``customer_id`` field are read, and renamed by the next fold (:mod:`state.adapters.state_hash`)
- ``<p>seg:{<customer_id>}:ids:<g>`` set: event_ids applied in dedupe generation ``g``
  (:mod:`state.adapters.dedupe_window`; producer-resend dedupe)
- ``<p>seg:{<customer_id>}:ev``   set: the applied event_ids of versions before the window (read only)
- ``<p>seg:{<customer_id>}:days`` set: UTC days with a purchase, as earlier versions kept them (read
  only; the days are now fields of the state hash)
- ``<p>seg:{<customer_id>}:log``  zset: applied events after the log base (``LogEntry`` text) by
  occurred_at_ms; compacted once the evaluator's clock has passed them (:meth:`RedisStore.compact`)
- ``<p>seg:{<customer_id>}:tp``    string: the counters' map as earlier versions kept it (read; moved into the
  state hash by the next fold that counts for the customer)
- ``<p>seg:{<customer_id>}:t``     hash: the counters as versions before that wrote them (field
  ``<table>/<field>``; read, never written)
- ``<p>seg:t:<table>``            hash: a shared tally table's counters (single Redis node only: a
  cluster cannot fold them in the same atomic call as the customers' state)
- ``<p>eval:{p<n>}:agenda``       zset: events not evaluated yet of evaluation partition ``n``'s
  customers (:mod:`state.adapters.agenda_partitions`), score occurred_at_ms + 1
- ``<p>eval:{p<n>}:received``     zset: the same entries, score the wall-clock ms a worker first
  received the event (``ZADD NX``; latency metrics only)
- ``<p>eval:partitions``          string: the namespace's evaluation partition count (``SET NX``)
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

The store is one class assembled from its roles, each in its own module: the keys, scripts,
retries and the restart check every role shares (:mod:`state.adapters.redis_store_base`), the fold
of a batch (:mod:`state.adapters.redis_store_fold`), the reads of customers, tallies, watermarks
and totals (:mod:`state.adapters.redis_store_reads`), consumed offsets, dead-letter fences and
topic resets (:mod:`state.adapters.redis_store_offsets`), and the evaluator's agenda, receipt
times and event logs (:mod:`state.adapters.redis_store_agenda`). This module puts them together
and opens the client (:meth:`RedisStore.connect`).
"""

from __future__ import annotations

import redis.asyncio as redis

from state.adapters.dedupe_window import DEDUPE_WINDOW_S
from state.adapters.redis_access import (
    HiredisPackingConnection,
    HiredisPackingSSLConnection,
    RedisAccess,
    open_client,
)
from state.adapters.redis_retry import OnRetry
from state.adapters.redis_store_agenda import StoreAgenda
from state.adapters.redis_store_base import EVAL_PARTITIONS
from state.adapters.redis_store_fold import StoreFold
from state.adapters.redis_store_offsets import StoreOffsets
from state.adapters.redis_store_reads import StoreReads
from state.adapters.retry import RetryPolicy, StoreUnavailable

__all__ = ["REDIS_ERRORS", "RedisStore"]

REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, StoreUnavailable)


class RedisStore(StoreFold, StoreReads, StoreOffsets, StoreAgenda):
    """:class:`state.customer.store.CustomerStore` on Redis.

    Built as ``RedisStore(client, prefix, cluster=..., ...)`` (:class:`state.adapters.redis_store_base.StoreBase`)
    or, opening the client, by :meth:`connect` and :meth:`from_url`.
    """

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
        eval_partitions: int = EVAL_PARTITIONS,
    ) -> RedisStore:
        """A store on the Redis ``access`` describes (ACL user, TLS).

        ``retry``: the worker's policy; by default (command-line tools) the first error raises.
        ``watch_restarts``: the worker's ingest: refuse to write to a Redis that restarted and lost
        writes this store made (:meth:`_same_redis_or_fail`). ``eval_partitions``: the count it
        proposes for a new namespace (:mod:`state.adapters.agenda_partitions`).
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
            eval_partitions=eval_partitions,
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

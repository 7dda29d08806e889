"""Retrying Redis operations through restarts: which errors are transient, backoff, a log line each.

redis-py 8.1's own ``Retry`` counts attempts (no time budget) and has no hook to log or count
a retry, so the Redis adapters wrap each operation in :class:`Retrier` instead and their
clients keep redis-py's per-connection retries off: one policy, every retry visible.

Transient: the connection was lost or refused (Redis restarting), a timeout, Redis still
loading its data after a restart (``BusyLoadingError``, a ``ConnectionError``), or a Redis Cluster
between topologies (``CLUSTERDOWN``, ``TRYAGAIN``, a slot no master serves yet: a failover). Anything
else (a script error, wrong type) is a bug and raises at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, SlotNotCoveredError, TryAgainError

from state.adapters.retry import RetryPolicy, StoreUnavailable

__all__ = ["TRANSIENT_ERRORS", "OnRetry", "Retrier", "no_client_retry", "redis_address"]

log = logging.getLogger(__name__)
T = TypeVar("T")
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    ClusterDownError,
    TryAgainError,
    SlotNotCoveredError,
)
OnRetry = Callable[[str, Exception], None]
"""Called with ``(operation, error)`` before each retry (the worker counts them)."""


def no_client_retry() -> Retry:
    """redis-py's own retry switched off (:class:`Retrier` does it, visibly)."""
    return Retry(NoBackoff(), 0)


def redis_address(client: redis.Redis | redis.RedisCluster) -> str:
    """``Redis at host:port/db`` (``Redis Cluster at host:port,...``: its startup nodes) for error
    messages (never the password)."""
    if isinstance(client, redis.RedisCluster):
        return "Redis Cluster at " + ",".join(f"{n.host}:{n.port}" for n in client.startup_nodes)
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"Redis at {kwargs['path']}"
    return f"Redis at {kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


class Retrier:
    """Runs one Redis operation, retrying transient errors under ``policy``."""

    def __init__(
        self,
        policy: RetryPolicy,
        where: str,
        on_retry: OnRetry | None = None,
        verify: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._policy = policy
        self._where = where  # e.g. "Redis at 127.0.0.1:6379": named in the errors
        self._on_retry = on_retry
        self._verify = verify  # run before each re-attempt: may refuse a Redis that lost writes

    async def call(self, operation: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """``await attempt()`` until it succeeds, a non-transient error, or the budget is spent.

        ``attempt`` must be safe to run again after a failure that may have happened after
        Redis applied it (each caller says why its operation is).
        """
        started: float | None = None
        failures = 0
        while True:
            try:
                if failures and self._verify is not None:
                    await self._verify()
                return await attempt()
            except TRANSIENT_ERRORS as error:
                now = time.monotonic()
                started = now if started is None else started
                failures += 1
                wait = self._policy.next_delay(failures, now - started)
                if wait is None and failures == 1:
                    raise  # no retry at all (command-line tools): the error as it is
                if wait is None:
                    raise StoreUnavailable(
                        f"{self._where}: {operation} failed for {now - started:.1f} s "
                        f"({failures} attempts, retry budget {self._policy.budget_s:g} s, "
                        f"SEGSTREAM_REDIS_RETRY_S); last error: {type(error).__name__}: {error}; "
                        "check that Redis is running and reachable"
                    ) from error
                log.warning(
                    "%s: %s failed (%s: %s); retry %d in %.2f s",
                    self._where,
                    operation,
                    type(error).__name__,
                    error,
                    failures,
                    wait,
                )
                if self._on_retry is not None:
                    self._on_retry(operation, error)
                await asyncio.sleep(wait)

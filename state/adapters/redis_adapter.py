"""What every Redis adapter of segstream shares: its client, key prefix, retrier, ``connect`` and ``close``.

An adapter (``state.adapters.redis_profiles``, ``state.adapters.redis_catalogue``, ``state.adapters.redis_baskets``) subclasses
:class:`RedisAdapter`, says whether its replies are text (``decode_responses``) and adds its keys
and scripts in its own ``__init__``.
"""

from __future__ import annotations

from typing import ClassVar, Self

from state.adapters.redis_access import RedisAccess, RedisClient, open_client
from state.adapters.redis_retry import OnRetry, Retrier, redis_address
from state.adapters.retry import RetryPolicy

__all__ = ["RedisAdapter"]


class RedisAdapter:
    """A Redis client with the worker's retry policy; subclasses add their keys and scripts."""

    decode_responses: ClassVar[bool] = True
    """Replies as ``str`` (True) or ``bytes`` (False)."""

    def __init__(
        self,
        client: RedisClient,
        prefix: str = "",
        *,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._retry = Retrier(retry or RetryPolicy.none(), redis_address(client), on_retry).call
        self._setup()

    def _setup(self) -> None:
        """Register the subclass's scripts and name its keys (``self._redis``, ``self._prefix`` are set)."""

    @classmethod
    def connect(
        cls,
        access: RedisAccess,
        prefix: str = "",
        *,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
    ) -> Self:
        """An adapter on the Redis ``access`` describes (ACL user, TLS, one node or a cluster).

        ``retry``: the worker's policy; by default (command-line tools) the first error raises.
        """
        client = open_client(access, decode_responses=cls.decode_responses)
        return cls(client, prefix, retry=retry, on_retry=on_retry)

    @classmethod
    def from_url(
        cls, url: str, prefix: str = "", *, retry: RetryPolicy | None = None, on_retry: OnRetry | None = None
    ) -> Self:
        """An adapter on an open Redis (no ACL user, no TLS unless ``rediss://``)."""
        return cls.connect(RedisAccess(url), prefix, retry=retry, on_retry=on_retry)

    async def close(self) -> None:
        await self._redis.aclose()

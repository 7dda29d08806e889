"""How to reach Redis: URL, ACL user, TLS. Every segstream Redis client is built here.

>>> RedisAccess("redis://h:6379/0", "app", "s3cret")
RedisAccess(url='redis://h:6379/0', username='app', tls=False, ca_file=None, cluster=False)
>>> RedisAccess("rediss://h:6379/0").uses_tls, RedisAccess("rediss://h:6379/0").plain_url
(True, 'redis://h:6379/0')
>>> sorted(RedisAccess("redis://h/0", "app", "pw", tls=True).connection_kwargs())
['password', 'ssl_ca_certs', 'ssl_cert_reqs', 'ssl_check_hostname', 'username']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hiredis
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

__all__ = [
    "HiredisPackingConnection",
    "HiredisPackingSSLConnection",
    "RedisAccess",
    "RedisClient",
    "connection_pool",
    "open_client",
]

RedisClient = redis.Redis | redis.RedisCluster
"""A client of one Redis node or of a Redis Cluster: what every adapter holds."""


@dataclass(frozen=True, slots=True)
class RedisAccess:
    """Where Redis is and how to log in; the password never shows in ``repr``.

    ``tls`` (or a ``rediss://`` URL) verifies the server's certificate against ``ca_file``
    (the system CAs when ``None``) and its host name. ``cluster``: the URL names one master of a
    Redis Cluster; clients are redis-py ``RedisCluster``s that find the other masters from it.
    """

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None
    cluster: bool = False

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.url.startswith("rediss://")

    @property
    def plain_url(self) -> str:
        """The URL with a ``redis://`` scheme: TLS is chosen by connection class, not by scheme."""
        return (
            "redis://" + self.url.removeprefix("rediss://") if self.url.startswith("rediss://") else self.url
        )

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of a redis-py connection (credentials in the URL win over these)."""
        kwargs: dict[str, Any] = {}
        if self.username:
            kwargs["username"] = self.username
        if self.password:
            kwargs["password"] = self.password
        if self.uses_tls:
            kwargs["ssl_ca_certs"] = str(self.ca_file) if self.ca_file else None
            kwargs["ssl_cert_reqs"] = "required"
            kwargs["ssl_check_hostname"] = True
        return kwargs


def connection_pool(
    access: RedisAccess,
    *,
    decode_responses: bool,
    plain_class: type[redis.Connection] = redis.Connection,
    tls_class: type[redis.SSLConnection] = redis.SSLConnection,
) -> redis.ConnectionPool:
    """A connection pool for ``access``: ``tls_class`` connections when TLS is on, else ``plain_class``."""
    return redis.ConnectionPool.from_url(
        access.plain_url,
        decode_responses=decode_responses,
        connection_class=tls_class if access.uses_tls else plain_class,
        retry=Retry(NoBackoff(), 0),  # the stores retry, visibly (state.adapters.redis_retry)
        socket_connect_timeout=5,
        **access.connection_kwargs(),
    )


def open_client(
    access: RedisAccess,
    *,
    decode_responses: bool,
    plain_class: type[redis.Connection] = redis.Connection,
    tls_class: type[redis.SSLConnection] = redis.SSLConnection,
) -> RedisClient:
    """A client for ``access``: a ``Redis`` on :func:`connection_pool`, or with ``access.cluster`` a
    ``RedisCluster`` with the same credentials, TLS and timeouts.

    A ``RedisCluster`` builds its node connections from redis-py's own classes (it ignores a
    ``connection_class``), so ``plain_class``/``tls_class`` apply to a single node only.
    """
    if not access.cluster:
        pool = connection_pool(
            access, decode_responses=decode_responses, plain_class=plain_class, tls_class=tls_class
        )
        return redis.Redis.from_pool(pool)
    return redis.RedisCluster.from_url(
        access.plain_url,
        decode_responses=decode_responses,
        ssl=access.uses_tls,
        retry=Retry(NoBackoff(), 0),  # the stores retry, visibly; MOVED/ASK redirections still followed
        socket_connect_timeout=5,
        **access.connection_kwargs(),
    )


def _hiredis_pack(args: tuple[Any, ...]) -> list[bytes]:
    """redis-py's asyncio client packs commands in pure Python (~35 µs each); hiredis does it in C.

    Same splitting of multi-word command names as redis-py's own sync HiredisRespSerializer.
    """
    if isinstance(args[0], str):
        args = (*args[0].encode().split(), *args[1:])
    elif b" " in args[0]:
        args = (*args[0].split(), *args[1:])
    return [hiredis.pack_command(args)]


class HiredisPackingConnection(redis.Connection):
    def pack_command(self, *args: Any) -> list[bytes]:
        return _hiredis_pack(args)


class HiredisPackingSSLConnection(redis.SSLConnection):
    def pack_command(self, *args: Any) -> list[bytes]:
        return _hiredis_pack(args)

"""The catalogue and traits store (``state.analytics.catalogue``) on Redis: one Lua call per batch, fenced per key.

Keys (``<p>`` the namespace prefix; ``{products}`` / ``{traits}`` hash tags keep each kind's
values and fences in one Redis Cluster slot, as one script call needs):

- ``<p>cat:{products}``             hash: sku -> the latest product (JSON, ``encode_product``)
- ``<p>cat:{products}:fence:<e>``   hash: ``<partition>:<sku>`` -> offset of the last message applied
  from that partition in fence epoch ``e`` of the ``products`` topic
- ``<p>cat:{traits}``, ``<p>cat:{traits}:fence:<e>``: the same for ``customer-traits``

A new fence epoch (the topic was recreated: ``state.customer.store``) starts an empty fence hash, so the
new incarnation's offsets are not compared with the old one's.

Every operation runs under a :class:`state.adapters.redis_retry.Retrier`. Retrying a batch after Redis
applied it is safe: the fences turn every message already applied into a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec

from state.adapters.redis_adapter import RedisAdapter
from state.analytics.catalogue import Keyed, V, brands, categories, departments
from streams.catalogue_contract import Product, Traits, encode_product, encode_traits

__all__ = ["RedisCatalogue"]

_CHUNK = 2000  # keys per HMGET; the chunks of one lookup go in one pipeline (one round trip)
# KEYS: values hash, fence hash. ARGV: (fence field, offset, key, "s"et | "d"elete, value) per message.
# Returns 1 per message applied, 0 per message at or below its key's fence.
_APPLY = """
local applied = {}
for i = 1, #ARGV, 5 do
  local last = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) <= last then
    applied[#applied + 1] = 0
  else
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    if ARGV[i + 3] == 'd' then
      redis.call('HDEL', KEYS[1], ARGV[i + 2])
    else
      redis.call('HSET', KEYS[1], ARGV[i + 2], ARGV[i + 4])
    end
    applied[#applied + 1] = 1
  end
end
return applied
"""
_product = msgspec.json.Decoder(Product)
_traits = msgspec.json.Decoder(Traits)


class RedisCatalogue(RedisAdapter):
    """:class:`state.analytics.catalogue.CatalogueStore` on Redis."""

    decode_responses = False

    def _setup(self) -> None:
        self._apply = self._redis.register_script(_APPLY)

    def _values_key(self, kind: str) -> str:
        return f"{self._prefix}cat:{{{kind}}}"

    async def apply_products(self, updates: Sequence[Keyed[Product]], epoch: int) -> list[bool]:
        return await self._apply_all("products", updates, epoch, encode_product)

    async def apply_traits(self, updates: Sequence[Keyed[Traits]], epoch: int) -> list[bool]:
        return await self._apply_all("traits", updates, epoch, encode_traits)

    async def _apply_all(
        self, kind: str, updates: Sequence[Keyed[V]], epoch: int, encode: Callable[[V], bytes]
    ) -> list[bool]:
        if not updates:
            return []
        values = self._values_key(kind)
        keys = [values, f"{values}:fence:{epoch}"]
        args: list[str | int | bytes] = []
        for u in updates:
            op, body = ("d", b"") if u.value is None else ("s", encode(u.value))
            args += (f"{u.partition}:{u.key}", u.offset, u.key, op, body)
        applied = await self._retry(f"apply {kind} updates", lambda: self._apply(keys=keys, args=args))
        return [bool(int(code)) for code in applied]

    async def _read(self, kind: str, ids: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        key = self._values_key(kind)

        async def read() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for start in range(0, len(wanted), _CHUNK):
                pipe.hmget(key, wanted[start : start + _CHUNK])
            return await pipe.execute()

        found = [raw for chunk in await self._retry(f"read {kind}", read) for raw in chunk]
        return {k: raw for k, raw in zip(wanted, found, strict=True) if raw is not None}

    async def products_of(self, skus: Iterable[str]) -> dict[str, Product]:
        return {sku: _product.decode(raw) for sku, raw in (await self._read("products", skus)).items()}

    async def categories_of(self, skus: Iterable[str]) -> dict[str, str]:
        return categories(await self.products_of(skus))

    async def departments_of(self, skus: Iterable[str]) -> dict[str, str]:
        return departments(await self.products_of(skus))

    async def brands_of(self, skus: Iterable[str]) -> dict[str, str]:
        return brands(await self.products_of(skus))

    async def traits_of(self, customer_ids: Iterable[str]) -> dict[str, Traits]:
        return {c: _traits.decode(raw) for c, raw in (await self._read("traits", customer_ids)).items()}

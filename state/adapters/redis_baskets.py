"""The basket tables in Redis: read them, bound their pair counts, measure their memory.

The tallies (``state.analytics.basket_tally``) write the shared tables through the fold; this adapter
only reads them and prunes the pair hashes, under the same key names as
``state.adapters.redis_store`` (shared table ``<table>`` is the hash ``<p>seg:t:<table>``):

- ``<p>seg:t:basket:<level>:n``          baskets per name, and in field ``""`` all baskets;
- ``<p>seg:t:basket:<level>:pair``       baskets per pair of names (``state.analytics.basket_tally.pair_field``);
- ``<p>seg:t:basket:<level>:pair:delta`` per pair, how far below the truth its count may be;
- ``<p>seg:t:basket:<level>:pair:meta``  the pruning threshold ``t`` and how many prunes ran.

A pair hash may hold at most ``max_pairs`` fields: past that, :meth:`RedisBaskets.prune`
(``basket_prune.lua``, atomic) deletes the rarest pairs, lossy-counting style, raising ``t`` just
enough to leave ``max_pairs / 2``. Every stored count is then at most ``t`` below the truth and
every pair seen in more than ``t`` baskets is stored; ``t`` stays 0 (exact counts) as long as the
table never outgrew the bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as redis

from state.adapters.redis_adapter import RedisAdapter
from state.analytics.basket_tally import SEP, TOTAL, Level, table

__all__ = ["LevelTables", "PruneResult", "RedisBaskets", "glob_escape"]

_PRUNE_LUA = resources.files("state.adapters").joinpath("basket_prune.lua").read_text()
_SCAN_COUNT = 5000


@dataclass(frozen=True, slots=True)
class LevelTables:
    """One level's counters as stored: ``items`` includes the total under ``""``."""

    items: dict[str, int]
    pairs: dict[str, int]
    threshold: int


@dataclass(frozen=True, slots=True)
class PruneResult:
    level: Level
    deleted: int
    threshold: int
    left: int


def glob_escape(text: str) -> str:
    r"""``text`` as a literal in a Redis ``MATCH`` pattern.

    >>> glob_escape("a*b?[c]\\d")
    'a\\*b\\?\\[c\\]\\\\d'
    """
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisBaskets(RedisAdapter):
    def _setup(self) -> None:
        self._prune = self._redis.register_script(_PRUNE_LUA)

    def key(self, level: Level, kind: str) -> str:
        """Redis key of a level's ``n``, ``pair``, ``pair:delta`` or ``pair:meta`` hash."""
        if kind == "n":
            return f"{self._prefix}seg:t:{table(level, 'n')}"
        if kind not in ("pair", "pair:delta", "pair:meta"):
            raise ValueError(f"no basket hash {kind!r}")
        return f"{self._prefix}seg:t:{table(level, 'pair')}{kind.removeprefix('pair')}"

    async def tables(self, level: Level) -> LevelTables:
        """Every counter of ``level`` (read with one MULTI, so counts and threshold agree; on a Redis
        Cluster, whose fold refuses shared tables so they stay empty, a plain pipeline across slots)."""

        async def read() -> LevelTables:
            pipe = self._redis.pipeline(transaction=not isinstance(self._redis, redis.RedisCluster))
            pipe.hgetall(self.key(level, "n"))
            pipe.hgetall(self.key(level, "pair"))
            pipe.hget(self.key(level, "pair:meta"), "threshold")
            items, pairs, threshold = await pipe.execute()
            return LevelTables(
                {str(k): int(v) for k, v in items.items()},
                {str(k): int(v) for k, v in pairs.items()},
                int(threshold or 0),
            )

        return await self._retry("read the basket tables", read)  # read-only

    async def partners(self, level: Level, name: str) -> LevelTables:
        """The counters about ``name``: its pairs, and the single counts of it, its partners and
        all baskets (one scan of the pair hash, matching ``name`` on either side)."""

        async def read() -> LevelTables:
            pairs: dict[str, int] = {}
            pattern = f"*{glob_escape(name)}*"
            async for field, value in self._redis.hscan_iter(
                self.key(level, "pair"), match=pattern, count=_SCAN_COUNT
            ):
                a, _, b = str(field).partition(SEP)
                if name in (a, b):
                    pairs[str(field)] = int(value)
            names = [TOTAL, name, *sorted({n for f in pairs for n in f.split(SEP)} - {name})]
            pipe = self._redis.pipeline(transaction=False)
            pipe.hmget(self.key(level, "n"), names)
            pipe.hget(self.key(level, "pair:meta"), "threshold")
            counts, threshold = await pipe.execute()
            items = {n: int(c) for n, c in zip(names, counts, strict=True) if c is not None}
            return LevelTables(items, pairs, int(threshold or 0))

        return await self._retry("read a product's pairs", read)  # read-only

    async def prune(self, level: Level, max_pairs: int) -> PruneResult:
        """Bound ``level``'s pair hash to ``max_pairs`` fields (nothing happens below the bound).

        Safe to retry: a second run finds the table within its bound, or prunes it again under
        the same invariant.
        """
        keys = [self.key(level, k) for k in ("pair", "pair:delta", "pair:meta")]

        async def run() -> Any:
            return await self._prune(keys=keys, args=[max_pairs, max(max_pairs // 2, 1)])

        deleted, threshold, left = await self._retry("prune basket pairs", run)
        return PruneResult(level, int(deleted), int(threshold), int(left))

    async def pair_fields(self, levels: Sequence[Level]) -> dict[Level, int]:
        """How many pair counters each level holds now (``HLEN``)."""

        async def read() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for level in levels:
                pipe.hlen(self.key(level, "pair"))
            return list(await pipe.execute())

        return dict(zip(levels, map(int, await self._retry("count basket pairs", read)), strict=True))

    async def memory(self, level: Level) -> dict[str, int]:
        """Bytes each of ``level``'s hashes takes (``MEMORY USAGE ... SAMPLES 0``: every field counted)
        and how many fields it has."""
        found: dict[str, int] = {}
        for kind in ("n", "pair", "pair:delta"):
            key = self.key(level, kind)
            found[f"{kind}_bytes"] = int(await self._redis.memory_usage(key, samples=0) or 0)
            found[f"{kind}_fields"] = int(await self._redis.hlen(key))
        return found

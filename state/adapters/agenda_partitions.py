"""The agenda cut by evaluation partition: how many partitions, and moving an agenda of one key.

The agenda (events not evaluated yet, score occurred_at + 1) and the receipt times are one sorted
set each per evaluation partition, ``<p>eval:{p<n>}:agenda`` and ``<p>eval:{p<n>}:received``; an
entry goes to its customer's partition (:func:`state.customer.partitions.customer_partition`).
Each partition is its own hash slot, so no key gathers every customer's pending events and a
Redis Cluster spreads them over its masters.

The partition count is the namespace's, not a worker's: the first store that needs it proposes
its own (the worker's ``SEGSTREAM_PARTITIONS``, the ``purchases`` topic's count when segstream
creates it) with ``SET NX`` on ``<p>eval:partitions``, and every store uses what that key holds
from then on, so workers started with another setting still agree on where an entry is. It never
changes (entries would be on the wrong partition); a topic with more partitions than the
namespace leaves the extra ones without an evaluation partition of their own.

An agenda from before the cut (``<p>eval:{segments}:agenda`` and ``:received``, one key each) is
moved onto the partitions the first time a store resolves the count: read a page, written to
the partitions, removed from the old key, page after page. Every step is idempotent (``ZADD`` of
the same entry, ``ZADD NX`` of a receipt, ``ZREM``), so a crash half-way leaves entries in both
places and the next store moves the rest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import cast

from state.adapters.redis_access import RedisClient
from state.customer.partitions import customer_partition
from state.customer.store import parse_agenda_member

__all__ = ["LEGACY_PAGE", "by_partition", "count_key", "move_legacy_agenda", "resolve_partitions"]

LEGACY_PAGE = 10_000
"""Entries moved per step from an agenda of one key."""


def count_key(prefix: str) -> str:
    """The key holding namespace ``prefix``'s evaluation partition count."""
    return f"{prefix}eval:partitions"


def by_partition(members: dict[str, int], partitions: int) -> dict[int, dict[str, int]]:
    """``members`` (agenda member -> score) grouped by their customer's partition."""
    grouped: dict[int, dict[str, int]] = defaultdict(dict)
    for member, score in members.items():
        grouped[customer_partition(parse_agenda_member(member), partitions)][member] = score
    return grouped


async def resolve_partitions(client: RedisClient, key: str, proposed: int) -> int:
    """The namespace's partition count: ``key``'s value, set to ``proposed`` if it had none."""
    pipe = client.pipeline(transaction=False)
    pipe.set(key, proposed, nx=True)
    pipe.get(key)
    _, held = await pipe.execute()
    text = held.decode(errors="replace") if isinstance(held, bytes) else str(held)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{key} holds {text[:40]!r}, not a partition count >= 1: delete it or fix it")
    return int(text)


async def move_legacy_agenda(
    client: RedisClient,
    legacy: tuple[str, str],
    key_of: Callable[[str, int], str],
    partitions: int,
) -> int:
    """Move every entry of the one-key agenda ``legacy`` (agenda, received) onto the partitions'
    keys (``key_of("agenda" | "received", partition)``); returns how many agenda entries moved."""
    agenda, received = legacy
    moved = 0
    while True:
        page = cast(list[tuple[str, float]], await client.zrange(agenda, 0, LEGACY_PAGE - 1, withscores=True))
        if not page:
            await client.delete(received)  # receipts left without an entry are of nothing pending
            return moved
        members = [m for m, _ in page]
        receipts = await client.zmscore(received, members)
        pipe = client.pipeline(transaction=False)
        entries = {m: int(s) for m, s in page}
        times = {m: int(t) for m, t in zip(members, receipts, strict=True) if t is not None}
        for partition, mine in by_partition(entries, partitions).items():
            pipe.zadd(key_of("agenda", partition), mine)
            if got := {m: times[m] for m in mine if m in times}:
                pipe.zadd(key_of("received", partition), got, nx=True)
        pipe.zrem(agenda, *members)
        pipe.zrem(received, *members)
        await pipe.execute()
        moved += len(page)

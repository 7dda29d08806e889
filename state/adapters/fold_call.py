"""The arguments of one ``rfm_fold.lua`` call, and how a batch is cut into calls.

Kept apart from :class:`state.adapters.redis_store.RedisStore` because it is the one place that
knows the script's argument layout (documented in the script's header) and the two rules that cut
a batch: one call per Redis Cluster hash slot, and at most so many tallies a call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import msgspec
from redis.crc import key_slot

from state.adapters.dedupe_window import Generation
from state.adapters.packed_tallies import packed_field, table_key
from state.customer.store import Delivery, fence_field, log_entry

__all__ = ["by_hash_slot", "by_tally_volume", "fold_call"]

_json_encode = msgspec.json.Encoder().encode


def fold_call(
    deliveries: Sequence[Delivery],
    epochs: Mapping[str, int],
    generation: Generation,
    state_key: Callable[[str], str],
    shared_tally_key: Callable[[str], str],
    stats_key: str | None,
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of one ``rfm_fold.lua`` call (layout in the script's header).

    ``state_key``: a customer's state hash key; ``shared_tally_key``: a shared tally table's key
    (raises where the store cannot fold one); ``stats_key``: the running totals, counted in the
    same call (None: a cluster, whose totals hash is in another slot).
    """
    keys: list[str] = []
    index: dict[str, int] = {}  # tally key -> its 1-based KEYS position

    def key_index(key: str) -> int:
        if key not in index:
            keys.append(key)
            index[key] = len(keys)
        return index[key]

    args: list[str | int] = [len(deliveries), generation.expires_at_s]
    for d in deliveries:
        e = d.event
        key = state_key(e.customer_id)
        ids, previous = generation.keys(f"{key}:ids")
        keys += (key, ids, previous, f"{key}:ev", f"{key}:days", f"{key}:log")
        base = len(keys) - 5
        ops = [
            [key_index(f"{key}:tp"), table_key(t.table), packed_field(t.table, t.field), t.delta]
            if t.per_customer
            else [key_index(shared_tally_key(t.table)), t.field, t.delta]
            for t in d.tallies
        ]
        args += (
            base,
            e.event_id,
            fence_field(d.topic, d.partition, epochs.get(d.topic, 0)),
            d.offset,
            e.type,
            e.occurred_at_ms,
            e.amount_cents,
            log_entry(e).encode(),
            _json_encode(ops).decode() if ops else "",
        )
    if stats_key is not None:  # the totals in the same atomic call (rfm_fold.lua's last argument)
        args.append(key_index(stats_key))
    return keys, args


def by_tally_volume(group: list[int], deliveries: Sequence[Delivery], most: int) -> list[list[int]]:
    """``group`` cut into consecutive runs carrying at most ``most`` tallies each (an event is never
    split; one with more is a run of its own), so no single script call blocks Redis for long.

    >>> from state.customer.store import Tally
    >>> from streams.contract import Purchase
    >>> tallies = [(Tally("x", "f"),) * n for n in (3, 3, 5, 0)]
    >>> d = [Delivery(Purchase(f"e{i}", "c", 0, 1), "t", 0, i, t) for i, t in enumerate(tallies)]
    >>> by_tally_volume([0, 1, 2, 3], d, 6)
    [[0, 1], [2, 3]]
    """
    parts: list[list[int]] = []
    size = 0
    for i in group:
        n = len(deliveries[i].tallies)
        if not parts or size + n > most:
            parts.append([])
            size = 0
        parts[-1].append(i)
        size += n
    return parts


def by_hash_slot(deliveries: Sequence[Delivery], key_of: Callable[[str], str]) -> list[list[int]]:
    """Indices of ``deliveries`` grouped by Redis Cluster hash slot, first-seen order kept.

    One script call may only touch keys of one slot in a cluster; on a single
    Redis the whole batch is one call.
    """
    groups: dict[int, list[int]] = {}
    for i, d in enumerate(deliveries):
        groups.setdefault(key_slot(key_of(d.event.customer_id).encode()), []).append(i)
    return list(groups.values())

"""Talliers: what each purchase adds to the analytics counters when the fold applies it.

A :data:`Tallier` looks at a batch of valid purchases and returns, per purchase, the
:class:`state.customer.store.Tally` increments it carries; the store adds them only if it applies the
purchase, atomically with the fold, so resends and redeliveries never count twice. Talliers
may read (a catalogue, say) but never write: what they return is their only effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from state.customer.store import Tally
from streams.contract import Purchase

__all__ = ["Tallier", "combine"]

Tallier = Callable[[Sequence[Purchase]], Awaitable[list[tuple[Tally, ...]]]]
"""Given a batch of valid purchases, the tallies each would add if applied (one tuple per purchase)."""


def combine(*talliers: Tallier) -> Tallier:
    """One tallier that runs ``talliers`` side by side and joins their tallies per purchase.

    >>> from state.customer.store import Tally
    >>> async def count(events):
    ...     return [(Tally("purchases", "all"),) for _ in events]
    >>> async def channel(events):
    ...     return [(Tally("channel", e.channel or "none"),) for e in events]
    >>> from streams.contract import Purchase
    >>> asyncio.run(combine(count, channel)([Purchase("e1", "c1", 0, 100, channel="web")]))
    [(Tally(table='purchases', field='all', delta=1, per_customer=False), Tally(table='channel', field='web', delta=1, per_customer=False))]
    """

    async def tally(events: Sequence[Purchase]) -> list[tuple[Tally, ...]]:
        if not events:
            return []
        parts = await asyncio.gather(*(t(events) for t in talliers))
        for t, part in zip(talliers, parts, strict=True):
            if len(part) != len(events):
                raise ValueError(f"tallier {t!r} gave {len(part)} tallies for {len(events)} purchases")
        return [tuple(x for part in parts for x in part[i]) for i in range(len(events))]

    return tally

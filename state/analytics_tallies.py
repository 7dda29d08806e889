"""The worker's tallier for cohorts and best time: each valid purchase's counters, per event.

Both features are pure functions of one event (:func:`state.analytics.cohorts.cohort_tallies`,
:func:`state.analytics.best_time.best_time_tallies`); this wraps them as a :data:`state.customer.tally.Tallier`
that ``agents.tallies.build_talliers`` registers, so the store folds them exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from state.analytics.best_time import best_time_tallies
from state.analytics.cohorts import Split, cohort_tallies
from state.customer.store import Tally
from state.customer.tally import Tallier
from streams.contract import Purchase

__all__ = ["cohort_and_best_time_tallier", "per_event"]


def per_event(rule: Callable[[Purchase], tuple[Tally, ...]]) -> Tallier:
    """A tallier that applies ``rule`` to each purchase of the batch on its own.

    >>> import asyncio
    >>> tally = per_event(lambda e: (Tally("n", e.type),))
    >>> asyncio.run(tally([Purchase("e1", "c1", 0, 100)]))
    [(Tally(table='n', field='purchase', delta=1, per_customer=False),)]
    """

    async def tally(events: Sequence[Purchase]) -> list[tuple[Tally, ...]]:
        return [rule(event) for event in events]

    return tally


def cohort_and_best_time_tallier(splits: Sequence[Split]) -> Tallier:
    """Cohort counters (with the given splits) and the hour-of-week counter of each purchase."""
    chosen = tuple(splits)
    return per_event(lambda event: (*cohort_tallies(event, chosen), *best_time_tallies(event)))

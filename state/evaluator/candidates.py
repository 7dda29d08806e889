"""Which buyers' scores can change at an instant: range queries over the sorted columns, not a scan.

A buyer's stored R, F and M are their scores under the current cut-points at the previous instant
(every instant re-scores everyone whose score moved, so this holds by induction). Moving to instant
``at_ms`` can change a score in two ways, and each is a range of one sorted column
(:class:`state.segments.order_stats.SortedColumns`):

- **time passes** (:func:`decayed`): R >= s while ``age <= max_age[s]``, so the buyers whose R falls
  in ``(previous, at_ms]`` under unchanged cut-points have their last purchase in
  ``[previous - max_age, at_ms - max_age)``;
- **the cut-points move** (:func:`threshold_moves`): a score's threshold moving from ``a`` to ``b``
  changes the score of exactly the buyers whose value lies in ``[min(a, b), max(a, b))``; for R the
  thresholds are on the last purchase, ``at_ms - max_age``.

Every other buyer keeps their scores, so re-scoring only these (plus the buyers who purchased) gives
the same profiles as re-scoring everyone: the cost of an instant follows the customers who can change,
not the population.

>>> from state.segments.order_stats import SortedColumns
>>> stats = SortedColumns()
>>> for row, last in enumerate([10, 20, 30]):
...     stats.update(row, None, (last, 1, 100))
>>> decayed(stats, (5, 100), previous=24, at_ms=30).tolist()  # only row 1 ages past 5 in (24, 30]
[1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from state.customer.rfm import CustomerState
from state.evaluator.rescore import EMPTY
from state.segments.cutpoints import CutPoints
from state.segments.order_stats import Dimension, SortedColumns, Values
from state.segments.population import Population

__all__ = [
    "Stored",
    "buyer_columns",
    "buyer_values",
    "decayed",
    "store_states",
    "threshold_moves",
    "to_rescore",
]

IntArray = npt.NDArray[np.int64]


def _union(parts: Sequence[IntArray]) -> IntArray:
    return np.unique(np.concatenate(parts)).astype(np.int64) if parts else EMPTY


def decayed(stats: SortedColumns, max_age_ms: Sequence[int], previous: int, at_ms: int) -> IntArray:
    """Buyers whose R score fell in ``(previous, at_ms]`` under cut-points with these ``max_age_ms``."""
    return _union([stats.rows_between("last_ms", previous - limit, at_ms - limit) for limit in max_age_ms])


def threshold_moves(stats: SortedColumns, old: CutPoints, new: CutPoints, at_ms: int) -> IntArray:
    """Buyers whose R, F or M score at ``at_ms`` differs between cut-points ``old`` and ``new``."""
    pairs: list[tuple[Dimension, Sequence[int], Sequence[int]]] = [
        (
            "last_ms",
            [at_ms - a for a in old.max_age_ms],
            [at_ms - a for a in new.max_age_ms],
        ),
        ("frequency", old.min_frequency, new.min_frequency),
        ("monetary_cents", old.min_monetary_cents, new.min_monetary_cents),
    ]
    parts = [
        stats.rows_between(dim, min(a, b), max(a, b))
        for dim, before, after in pairs
        for a, b in zip(before, after, strict=True)
        if a != b
    ]
    return _union(parts)


def to_rescore(
    stats: SortedColumns,
    buyers: IntArray,
    bought: IntArray,
    decayed_rows: IntArray,
    old: CutPoints | None,
    new: CutPoints,
    at_ms: int,
    *,
    model_moved: bool,
) -> IntArray:
    """The rows an instant re-scores: every buyer under a first cut-point version (``old`` None) or
    a new cluster model; otherwise the rows that purchased, those that ``decayed``, and, when the
    cut-point version moved, those its thresholds crossed."""
    if old is None or model_moved:
        return buyers
    moved = threshold_moves(stats, old, new, at_ms) if old.version != new.version else EMPTY
    return np.unique(np.concatenate([bought, decayed_rows, moved])).astype(np.int64)


def buyer_columns(population: Population) -> SortedColumns:
    """The buyers' last purchase, frequency and net spend, each sorted once (a first evaluation,
    a restore)."""
    rows = population.buyers()
    cols = [population.column(n)[rows] for n in ("last_ms", "frequency", "monetary_cents")]
    return SortedColumns.of(rows, *cols)


def buyer_values(population: Population, row: int) -> Values | None:
    """Row ``row``'s (last purchase, frequency, net spend) if a buyer (in the scored population), else None."""
    frequency = int(population.column("frequency")[row])
    if frequency <= 0:
        return None
    return int(population.column("last_ms")[row]), frequency, int(population.column("monetary_cents")[row])


class Stored(NamedTuple):
    """What :func:`store_states` did: rows created, rows whose state changed, and of those the buyers'."""

    new: list[int]
    changed: list[int]
    bought: list[int]


def store_states(population: Population, stats: SortedColumns, states: Sequence[CustomerState]) -> Stored:
    """Store ``states`` in ``population`` in customer-id order (a new customer's row is created in
    that order) and move the buyers' sorted values with every state that changed."""
    stored = Stored([], [], [])
    for state in sorted(states, key=lambda s: s.customer_id):
        known = population.index.get(state.customer_id)
        before = None if known is None else buyer_values(population, known)
        row, changed = population.upsert(state)
        if known is None:
            stored.new.append(row)
        if changed:
            stored.changed.append(row)
            stats.update(row, before, buyer_values(population, row))
            if state.frequency > 0:
                stored.bought.append(row)
    return stored

"""Versioned RFM cut-points: exact population scores, frozen so that time can move them.

``compute_cutpoints`` turns the live population into thresholds that reproduce the
exact rank scores of ``state.segments.segments`` (``1 + floor(5 * worse / N)``) for every
customer at the version's as-of time. Between versions:

- F and M compare a customer's value with the thresholds;
- R compares the customer's *age* (as-of minus last purchase) with the maximum age
  each R score allowed at version time, so a silent customer's R falls as the clock
  advances (``recency_decay``), at instants :func:`next_decay_ms` gives in advance.

A new version (``cutpoint_update``) is computed when the population has moved (new
purchases), never because time alone passed: otherwise a silent population would
bounce back up.

>>> cp = compute_cutpoints([0, 10 * DAY_MS, 20 * DAY_MS, 30 * DAY_MS, 40 * DAY_MS],
...                        [1, 1, 2, 3, 5], [100, 200, 300, 400, 500], as_of_ms=40 * DAY_MS, version=1)
>>> [scores_at(cp, last, 1, 100, 40 * DAY_MS)[0] for last in (0, 10 * DAY_MS, 40 * DAY_MS)]
[1, 2, 5]
>>> cp.max_age_ms[-1] // DAY_MS  # R = 5 while the last purchase is at most this many days old
9
>>> next_decay_ms(cp, 40 * DAY_MS, at_ms=40 * DAY_MS) == 40 * DAY_MS + cp.max_age_ms[-1] + 1
True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from state.customer.rfm import DAY_MS
from state.segments.order_stats import Dimension, SortedColumns

__all__ = ["DAY_MS", "CutPoints", "compute_cutpoints", "cutpoints_of", "next_decay_ms", "scores_at"]

_LEVELS = 5
Values = Sequence[int] | npt.NDArray[np.int64]


@dataclass(frozen=True)
class CutPoints:
    """Thresholds for scores 2..5 (index 0 = score 2) of one population snapshot."""

    version: int
    as_of_ms: int
    population: int
    max_age_ms: tuple[int, ...]  # R >= s while as_of - last_purchase <= max_age_ms[s - 2]
    min_frequency: tuple[int, ...]  # F >= s while frequency >= min_frequency[s - 2]
    min_monetary_cents: tuple[int, ...]  # M >= s while monetary_cents >= min_monetary_cents[s - 2]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CutPoints:
        raw = json.loads(text)
        return cls(
            version=int(raw["version"]),
            as_of_ms=int(raw["as_of_ms"]),
            population=int(raw["population"]),
            max_age_ms=tuple(raw["max_age_ms"]),
            min_frequency=tuple(raw["min_frequency"]),
            min_monetary_cents=tuple(raw["min_monetary_cents"]),
        )


def _min_values(values: Values) -> tuple[int, ...]:
    """For s = 2..5, the smallest integer v with ``1 + 5 * #(values < v) // N >= s``.

    ``#(values < v) >= k`` first holds at ``v = sorted[k - 1] + 1`` with
    ``k = ceil((s - 1) * N / 5)``. A score nobody reaches gets a threshold above every value.
    """
    ordered = np.sort(np.asarray(values, dtype=np.int64))
    n = ordered.size
    thresholds = []
    for s in range(2, _LEVELS + 1):
        k = -(-(s - 1) * n // _LEVELS)  # ceil
        thresholds.append(int(ordered[k - 1]) + 1 if 1 <= k <= n else int(ordered[-1]) + 1)
    return tuple(thresholds)


def compute_cutpoints(
    last_purchase_ms: Values,
    frequency: Values,
    monetary_cents: Values,
    *,
    as_of_ms: int,
    version: int,
) -> CutPoints:
    """Cut-points of a population of customers with at least one purchase."""
    if not len(last_purchase_ms):
        raise ValueError("cut-points need at least one customer with a purchase")
    if not len(last_purchase_ms) == len(frequency) == len(monetary_cents):
        raise ValueError("the three value lists must have one entry per customer")
    min_last = _min_values(last_purchase_ms)
    return CutPoints(
        version=version,
        as_of_ms=as_of_ms,
        population=len(last_purchase_ms),
        max_age_ms=tuple(as_of_ms - t for t in min_last),
        min_frequency=_min_values(frequency),
        min_monetary_cents=_min_values(monetary_cents),
    )


def _ranks(n: int) -> list[int]:
    """For s = 2..5, the rank (0-based) whose value + 1 is score s's threshold: ``ceil((s - 1) n / 5) - 1``."""
    return [-(-(s - 1) * n // _LEVELS) - 1 for s in range(2, _LEVELS + 1)]


def cutpoints_of(stats: SortedColumns, *, as_of_ms: int, version: int) -> CutPoints:
    """:func:`compute_cutpoints` of the buyers ``stats`` holds, read at four ranks per dimension.

    The same thresholds as sorting the columns (``_min_values``: ``sorted[k - 1] + 1``), in
    O(log N) instead of O(N log N).
    """
    n = len(stats)
    if not n:
        raise ValueError("cut-points need at least one customer with a purchase")

    def thresholds(dim: Dimension) -> tuple[int, ...]:
        return tuple(stats.value_at_rank(dim, k) + 1 for k in _ranks(n))

    return CutPoints(
        version=version,
        as_of_ms=as_of_ms,
        population=n,
        max_age_ms=tuple(as_of_ms - t for t in thresholds("last_ms")),
        min_frequency=thresholds("frequency"),
        min_monetary_cents=thresholds("monetary_cents"),
    )


def _level(passed: list[bool]) -> int:
    """1 + the number of leading thresholds passed (they are nested: s+1 implies s)."""
    score = 1
    for ok in passed:
        if not ok:
            break
        score += 1
    return score


def scores_at(
    cp: CutPoints, last_purchase_ms: int, frequency: int, monetary_cents: int, at_ms: int
) -> tuple[int, int, int]:
    """``(r, f, m)`` of one customer at event time ``at_ms`` under cut-points ``cp``."""
    age = at_ms - last_purchase_ms
    return (
        _level([age <= limit for limit in cp.max_age_ms]),
        _level([frequency >= v for v in cp.min_frequency]),
        _level([monetary_cents >= v for v in cp.min_monetary_cents]),
    )


def next_decay_ms(cp: CutPoints, last_purchase_ms: int, at_ms: int) -> int | None:
    """The first instant after ``at_ms`` when the customer's R score falls; None once at R = 1.

    R falls below s the moment the age passes ``max_age_ms[s - 2]``. Callers keep each
    customer in a due-time sorted set under this instant and re-evaluate when the clock
    passes it, so a clock tick touches only the customers whose R actually changes.
    """
    due = [last_purchase_ms + limit + 1 for limit in cp.max_age_ms]
    return min((t for t in due if t > at_ms), default=None)

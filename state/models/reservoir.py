"""A seeded reservoir sample: which ``k`` of ``n`` items in arrival order a uniform sample keeps.

Vitter's Algorithm R: the first ``k`` items fill the reservoir; item ``i`` (0-based, ``i >= k``)
draws ``j`` uniform in ``0..i`` and, if ``j < k``, replaces slot ``j``. Every ``k``-subset of the
items is equally likely, and the draws depend only on the seed and ``n``, so the sample of a
population that grows by appending (the evaluator's rows, in first-seen order) is the one a
stream would have kept, and the same seed always gives the same sample. The draws are made in
one vector operation; only the ~``k ln(n / k)`` replacements are applied, latest winning.

>>> reservoir_sample(5, 10, seed=1).tolist()
[0, 1, 2, 3, 4]
>>> a, b = reservoir_sample(1000, 4, seed=7), reservoir_sample(1000, 4, seed=7)
>>> a.tolist() == b.tolist(), len(set(a.tolist())), bool((a < 1000).all())
(True, 4, True)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["reservoir_sample"]


def reservoir_sample(n: int, k: int, seed: int) -> npt.NDArray[np.int64]:
    """Indices (ascending) of Algorithm R's sample of ``k`` of the items ``0..n-1`` (all of them if
    ``n <= k``), with draws from ``numpy.random.default_rng(seed)``."""
    if k < 1:
        raise ValueError(f"a reservoir holds at least 1 item, got k={k}")
    if n <= k:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    items = np.arange(k, n, dtype=np.int64)
    slots = rng.integers(0, items + 1)  # item i draws j in 0..i
    hits = np.flatnonzero(slots < k)
    reservoir = np.arange(k, dtype=np.int64)  # every initial item is below every later one, so
    np.maximum.at(reservoir, slots[hits], items[hits])  # the latest replacement of a slot wins
    return np.sort(reservoir)

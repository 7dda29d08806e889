"""The small pure rules around the online clusters: pick k, keep ids, name clusters, hold customers.

- :func:`choose_k`: the streaming elbow over the online inertia of each candidate k;
- :func:`match_ids`: stable cluster ids across republished centres (Hungarian matching);
- :func:`name_clusters`: readable, unique names from each centre's profile;
- :class:`DwellGate`: hysteresis, so a customer near a boundary does not flap;
- :func:`seed_centers`: k-means++ and Lloyd on the warm-up buffer.

Names read a centre's z-scores (its coordinates in the scaled space: standard deviations from
the population mean) as ``"<recency> <value> <frequency>"``:

- recency (``recency_days``): ``Recent`` (z <= -0.25), ``Cooling`` (< 0.25), ``Lapsing`` (< 0.75),
  ``Lapsed`` (< 1.5), else ``Lost``: more steps on the side where recency's long tail lies;
- value (``log_net_spend``): ``low-value`` (z <= -0.25) / ``mid-value`` / ``high-value`` (z >= 0.25);
- frequency: ``one-timers`` when the centre's frequency (``expm1(log_frequency)``) is below 1.5
  purchases, ``newcomers`` when its tenure is short (z <= -1), else by ``log_frequency``:
  ``occasional buyers`` / ``repeat buyers`` / ``frequent buyers``.

Clusters whose names still collide get a qualifier from the first of tenure (``new`` /
``long-standing``), mean gap (``short gaps`` / ``long gaps``) or order value (``small baskets`` /
``big baskets``) that tells most of them apart, then `` #1``, `` #2``... in id order. Names are
unique and depend on the centres only. Without the base features a cluster is ``Cluster <id>``.

>>> z = {0: {"recency_days": -1.0, "log_net_spend": 1.2, "log_frequency": 1.5, "avg_order_value": 0.0},
...      1: {"recency_days": 0.9, "log_net_spend": -0.8, "log_frequency": -0.7, "avg_order_value": 0.0}}
>>> name_clusters(z, raw={0: {"log_frequency": 2.3}, 1: {"log_frequency": 0.69}})
{0: 'Recent high-value frequent buyers', 1: 'Lapsed low-value one-timers'}
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

__all__ = [
    "DwellDecision",
    "DwellGate",
    "choose_k",
    "match_ids",
    "mean_inertia",
    "name_clusters",
    "seed_centers",
]

Array = npt.NDArray[np.float64]
_LEVEL = 0.25  # |z| from which a centre counts as above / below the population mean
_BASE_FEATURES = ("recency_days", "log_net_spend", "log_frequency")
_QUALIFIERS = {  # feature -> (below, around, above) the population mean
    "tenure_days": ("new", "mid-tenure", "long-standing"),
    "mean_gap_days": ("short gaps", "mid gaps", "long gaps"),
    "avg_order_value": ("small baskets", "mid baskets", "big baskets"),
}


def choose_k(inertia: Mapping[int, float], elbow_ratio: float, min_gain: float = 0.0) -> int:
    """The streaming elbow: the smallest k after which the marginal reduction of inertia flattens.

    ``inertia`` maps consecutive k, starting at 1 (one cluster: the total variance), to the mean
    squared distance to the closest centre. The gain of a step is the share of inertia it removes,
    ``g(k) = (I[k] - I[k+1]) / I[k]``. The answer is the smallest k > 1 whose next step gains less
    than ``elbow_ratio`` times the best gain of any earlier step, or less than ``min_gain``
    (the largest k if no step does). It compares steps with each other, not with a constant.

    >>> choose_k({1: 6.0, 2: 3.63, 3: 3.05, 4: 2.57, 5: 2.13, 6: 1.92, 7: 1.76}, elbow_ratio=1 / 3)
    5
    >>> choose_k({1: 6.0, 2: 3.0, 3: 1.5}, elbow_ratio=1 / 3)  # every step still pays: the largest k
    3
    """
    ks = sorted(inertia)
    if len(ks) < 2:
        raise ValueError(f"choose_k needs the inertia of at least k = 1 and k = 2, got k = {ks}")
    best = 0.0
    for k, bigger in itertools.pairwise(ks):
        gain = (inertia[k] - inertia[bigger]) / inertia[k] if inertia[k] > 0 else 0.0
        if k > ks[0] and gain < max(elbow_ratio * best, min_gain):
            return k
        best = max(best, gain)
    return ks[-1]


def match_ids(previous: Mapping[int, Array], centers: Array, next_id: int) -> tuple[list[int], int]:
    """Ids for ``centers`` (rows): each keeps the id of the previous centre it is matched to.

    Matching minimises the total Euclidean distance (Hungarian algorithm). Rows left unmatched
    (more clusters than before) get fresh ids from ``next_id``; returns ``(ids, next_id)``.

    >>> old = {4: np.array([0.0, 0.0]), 7: np.array([10.0, 0.0])}
    >>> match_ids(old, np.array([[9.0, 1.0], [0.0, 9.0], [1.0, 0.0]]), next_id=8)
    ([7, 8, 4], 9)
    """
    ids = [-1] * len(centers)
    if previous:
        old_ids = sorted(previous)
        old = np.stack([previous[i] for i in old_ids])
        cost = np.sqrt(((centers[:, None, :] - old[None, :, :]) ** 2).sum(axis=2))
        rows, cols = linear_sum_assignment(cost)
        for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
            ids[row] = old_ids[col]
    for row in range(len(ids)):
        if ids[row] < 0:
            ids[row], next_id = next_id, next_id + 1
    return ids, next_id


def _level(z: float, words: tuple[str, str, str]) -> str:
    return words[2] if z >= _LEVEL else words[0] if z <= -_LEVEL else words[1]


def _recency(z: float) -> str:
    if z <= -_LEVEL:
        return "Recent"
    return next(
        (word for bound, word in ((_LEVEL, "Cooling"), (0.75, "Lapsing"), (1.5, "Lapsed")) if z < bound),
        "Lost",
    )


def _base_name(z: Mapping[str, float], raw: Mapping[str, float]) -> str:
    recency = _recency(z["recency_days"])
    value = _level(z["log_net_spend"], ("low-value", "mid-value", "high-value"))
    if math.expm1(raw["log_frequency"]) < 1.5:
        frequency = "one-timers"
    elif z.get("tenure_days", 0.0) <= -1.0:
        frequency = "newcomers"
    else:
        frequency = _level(z["log_frequency"], ("occasional buyers", "repeat buyers", "frequent buyers"))
    return f"{recency} {value} {frequency}"


def _collisions(names: Mapping[int, str]) -> list[list[int]]:
    groups: dict[str, list[int]] = {}
    for i in sorted(names):
        groups.setdefault(names[i], []).append(i)
    return [group for group in groups.values() if len(group) > 1]


def name_clusters(
    scaled: Mapping[int, Mapping[str, float]], raw: Mapping[int, Mapping[str, float]]
) -> dict[int, str]:
    """Unique readable names by cluster id, from scaled (z-score) and raw (original units) centres."""
    ids = sorted(scaled)
    if any(name not in scaled[i] for i in ids for name in _BASE_FEATURES):
        return {i: f"Cluster {i}" for i in ids}
    names = {i: _base_name(scaled[i], raw[i]) for i in ids}
    qualifiers = [f for f in _QUALIFIERS if all(f in scaled[i] for i in ids)]
    for group in _collisions(names):
        words = {f: [_level(scaled[i][f], _QUALIFIERS[f]) for i in group] for f in qualifiers}
        best = max(qualifiers, key=lambda f: len(set(words[f])), default=None)
        if best is not None and len(set(words[best])) > 1:
            for i, word in zip(group, words[best], strict=True):
                names[i] = f"{names[i]} ({word})"
    for group in _collisions(names):
        for n, i in enumerate(group, start=1):
            names[i] = f"{names[i]} #{n}"
    return names


class DwellDecision(NamedTuple):
    """Where a customer is after a proposal: ``cluster_id`` since ``since_ms``; ``switched`` if moved."""

    cluster_id: int
    since_ms: int
    switched: bool


class DwellGate:
    """Hysteresis: a customer leaves a cluster only after ``min_dwell_ms`` in it.

    >>> gate = DwellGate(min_dwell_ms=1000)
    >>> gate.decide(None, None, proposed=3, at_ms=0)
    DwellDecision(cluster_id=3, since_ms=0, switched=True)
    >>> gate.decide(3, 0, proposed=5, at_ms=999)
    DwellDecision(cluster_id=3, since_ms=0, switched=False)
    >>> gate.decide(3, 0, proposed=5, at_ms=1000)
    DwellDecision(cluster_id=5, since_ms=1000, switched=True)
    """

    __slots__ = ("min_dwell_ms",)

    def __init__(self, min_dwell_ms: int) -> None:
        if min_dwell_ms < 0:
            raise ValueError(f"min_dwell_ms must be >= 0, got {min_dwell_ms}")
        self.min_dwell_ms = min_dwell_ms

    def decide(
        self,
        current: int | None,
        since_ms: int | None,
        proposed: int,
        at_ms: int,
        *,
        current_exists: bool = True,
    ) -> DwellDecision:
        """Move to ``proposed`` if there is no current cluster, it was retired, or the dwell is over.

        Dwell is measured in event time, so a late event (older than ``since_ms``) never moves anyone.
        """
        if current is None or since_ms is None or not current_exists:
            return DwellDecision(proposed, at_ms, True)
        if proposed == current or at_ms - since_ms < self.min_dwell_ms:
            return DwellDecision(current, since_ms, False)
        return DwellDecision(proposed, at_ms, True)


def mean_inertia(z: Array, centers: Array) -> float:
    """Mean squared distance from each row of ``z`` to its closest centre.

    >>> mean_inertia(np.array([[0.0], [2.0], [10.0]]), np.array([[1.0], [10.0]]))
    0.6666666666666666
    """
    return float(((z[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).min(axis=1).mean())


def seed_centers(z: Array, k: int, n_init: int, rng: np.random.Generator) -> tuple[Array, float]:
    """Warm-start centres: the best of ``n_init`` k-means++ seedings of ``z`` refined by Lloyd.

    Returns ``(centres, inertia)``, inertia being the mean squared distance to the closest centre.

    >>> z = np.array([[0.0], [0.2], [10.0], [10.2]])
    >>> centers, inertia = seed_centers(z, 2, n_init=3, rng=np.random.default_rng(0))
    >>> sorted(centers.ravel().round(2).tolist()), round(inertia, 4)
    ([0.1, 10.1], 0.01)
    """
    best: tuple[Array, float] = (z[:k].copy(), np.inf)
    for _ in range(n_init):
        centers = z[[rng.integers(len(z))]]
        for _ in range(k - 1):
            d2 = ((z[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).min(axis=1)
            pick = rng.choice(len(z), p=d2 / d2.sum()) if d2.sum() > 0 else rng.integers(len(z))
            centers = np.vstack([centers, z[pick]])
        labels = np.full(len(z), -1)
        for _ in range(100):
            new_labels = ((z[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
            if np.array_equal(new_labels, labels):
                break
            labels = new_labels
            for j in range(k):
                if (labels == j).any():
                    centers[j] = z[labels == j].mean(axis=0)
        inertia = mean_inertia(z, centers)
        if inertia < best[1]:
            best = (centers, inertia)
    return best

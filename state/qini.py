"""Qini curve, Qini coefficient, uplift at the top of a ranking, and a suggested target size.

Rank exposures by estimated uplift, highest first. After the top ``k``, with ``n_t, r_t``
treated exposures and responders and ``n_c, r_c`` control ones among them, the Qini curve
(Radcliffe 2007) is the incremental responses ``Q(k) = r_t - r_c * n_t / n_c`` (``r_t`` while
no control is in the top ``k``). Random targeting is the straight line from ``(0, 0)`` to
``(N, Q(N))``. The **Qini coefficient** here is the area between the curve and that line with
both axes as shares of ``N``: ``sum_k (Q(k) - k Q(N) / N) / N**2``; above 0 means the ranking
beats random targeting. Tied scores are ordered by position (ranking is stable).

**Weighted** (``weights``, one per exposure): every count above becomes a sum of weights, so
``Q(k) = R_t - R_c * W_t / W_c``; with inverse-propensity weights normalised within each arm to
the arm's size (:func:`state.campaigns.balance.inverse_propensity_weights`) the arms are compared as if
assignment had been random given the propensity's features, on the same scale as the plain
coefficient (all weights 1 give it exactly). Why: with non-random arms the plain Qini also
measures how the ranking lines up with the selection (inside the top of a ranking the treated
and control customers differ by more or less than overall), not only the effect.

>>> u = np.array([0.9, 0.8, 0.7, 0.1])
>>> t = np.array([True, False, True, False])
>>> r = np.array([True, False, False, True])
>>> qini_curve(u, t, r).tolist()  # Q(0..4): 0, 1, 1-0*1/1, 1-0*2/1, 1-1*2/2
[0.0, 1.0, 1.0, 1.0, 0.0]
>>> qini_coefficient(u, t, r)  # (1 + 1 + 1 + 0) / 16
0.1875
>>> uplift_at(u, t, r, 0.5), uplift_at(u, t, r, 1.0)  # top 2: 1/1 - 0/1; all: 1/2 - 1/2
(1.0, 0.0)
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "bootstrap_qini",
    "qini_coefficient",
    "qini_curve",
    "suggested_target",
    "uplift_at",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _ranked(
    uplift: FloatArray, treated: BoolArray, responded: BoolArray, weights: FloatArray | None = None
) -> tuple[BoolArray, BoolArray, FloatArray]:
    order = np.argsort(-np.asarray(uplift, dtype=np.float64), kind="stable")
    w = np.ones(order.size) if weights is None else np.asarray(weights, dtype=np.float64)
    return np.asarray(treated, dtype=np.bool_)[order], np.asarray(responded, dtype=np.bool_)[order], w[order]


def qini_curve(
    uplift: FloatArray, treated: BoolArray, responded: BoolArray, weights: FloatArray | None = None
) -> FloatArray:
    """``Q(k)`` for ``k = 0..N`` (module docstring), weighted if ``weights`` are given."""
    t, r, w = _ranked(uplift, treated, responded, weights)
    n_t, n_c = np.cumsum(w * t), np.cumsum(w * ~t)
    r_t, r_c = np.cumsum(w * (t & r)), np.cumsum(w * (~t & r))
    scaled = np.divide(r_c * n_t, n_c, out=np.zeros(t.size), where=n_c > 0)
    return np.concatenate([[0.0], r_t - scaled])


def qini_coefficient(
    uplift: FloatArray, treated: BoolArray, responded: BoolArray, weights: FloatArray | None = None
) -> float:
    """Area between the Qini curve and random targeting, both axes as shares of ``N``."""
    q = qini_curve(uplift, treated, responded, weights)
    n = q.size - 1
    if n == 0:
        return 0.0
    k = np.arange(1, n + 1)
    return float((q[1:] - k * q[-1] / n).sum() / n**2)


def uplift_at(
    uplift: FloatArray,
    treated: BoolArray,
    responded: BoolArray,
    fraction: float,
    weights: FloatArray | None = None,
) -> float:
    """Observed uplift (treated rate minus control rate, weighted if ``weights`` are given) in the
    top ``fraction`` of the ranking; NaN if an arm is empty there. ``fraction`` 1 is random
    targeting's (everyone's)."""
    t, r, w = _ranked(uplift, treated, responded, weights)
    top = max(1, math.ceil(fraction * t.size))
    t, r, w = t[:top], r[:top], w[:top]
    if not t.any() or t.all():
        return float("nan")
    return float(np.average(r[t], weights=w[t]) - np.average(r[~t], weights=w[~t]))


def bootstrap_qini(
    uplift: FloatArray,
    treated: BoolArray,
    responded: BoolArray,
    *,
    resamples: int = 200,
    seed: int = 7,
    confidence: float = 0.95,
    weights: FloatArray | None = None,
) -> tuple[float, float]:
    """Percentile interval of the Qini coefficient over ``resamples`` seeded bootstrap resamples
    of the exposures (drawn with replacement; each keeps its weight)."""
    rng = np.random.default_rng(seed)
    n = np.asarray(uplift).size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    values = []
    for _ in range(resamples):
        i = rng.integers(0, n, n)
        values.append(qini_coefficient(uplift[i], treated[i], responded[i], w[i]))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def suggested_target(uplift: FloatArray) -> tuple[int, float, float]:
    """``(count, fraction, incremental)``: the top of the ranking while the estimated incremental
    responses still grow (estimated uplift above 0), its share of everyone, and the incremental
    responses it is estimated to bring.

    >>> suggested_target(np.array([0.3, -0.1, 0.2, 0.0]))
    (2, 0.5, 0.5)
    """
    u = np.asarray(uplift, dtype=np.float64)
    positive = u[u > 0]
    return int(positive.size), float(positive.size / u.size) if u.size else 0.0, float(positive.sum())

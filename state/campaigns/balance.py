"""Covariate balance between observational arms, and the inverse-propensity weights that seek it.

With non-random targeting the treated and control customers differ before any campaign; a
propensity model ``e(x) = P(treated | x)`` and the weights ``1 / e`` (treated) and
``1 / (1 - e)`` (control) re-weight both arms towards the whole exposed population. Whether the
weighting worked is checked feature by feature with the **standardised mean difference** (SMD,
Austin 2009): ``(mean_treated - mean_control) / sqrt((var_treated + var_control) / 2)``, the
means weighted, the denominator from the *unweighted* arms so that the SMD before and after
weighting share one scale. |SMD| below 0.1 is the usual "balanced".

>>> x = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
>>> t = np.array([True, True, True, False, False, False])
>>> round(standardized_mean_difference(x, t), 3)  # 2/3 against 1/3
0.707
>>> e = np.where(x > 0, 2 / 3, 1 / 3)  # the true propensity: 2 of the 3 with x = 1 are treated
>>> w = inverse_propensity_weights(e, t, np.zeros(6, np.int64))
>>> w.round(3).tolist(), round(standardized_mean_difference(x, t, w), 3)
([0.75, 0.75, 1.5, 1.5, 0.75, 0.75], 0.0)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["inverse_propensity_weights", "standardized_mean_difference"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def inverse_propensity_weights(
    propensity: FloatArray, treated: BoolArray, groups: npt.NDArray[np.int64], clip: float = 0.0
) -> FloatArray:
    """``1 / e`` for the treated, ``1 / (1 - e)`` for the control, ``e`` clipped to
    ``[clip, 1 - clip]``, then scaled within each group's arm to sum to the arm's size (so a
    weighted count reads as a count of exposures; ``groups``: e.g. the campaign of each exposure)."""
    e = np.clip(np.asarray(propensity, dtype=np.float64), clip, 1 - clip)
    t = np.asarray(treated, dtype=np.bool_)
    w = np.where(t, 1 / e, 1 / (1 - e))
    for group in np.unique(groups):
        for arm in (t, ~t):
            mine = (groups == group) & arm
            if mine.any():
                w[mine] *= mine.sum() / w[mine].sum()
    return np.asarray(w, dtype=np.float64)


def standardized_mean_difference(
    values: FloatArray, treated: BoolArray, weights: FloatArray | None = None
) -> float:
    """SMD of ``values`` between the arms (module docstring), means weighted by ``weights``; NaN
    when an arm is empty or both arms are constant."""
    v, t = np.asarray(values, dtype=np.float64), np.asarray(treated, dtype=np.bool_)
    if not t.any() or t.all():
        return float("nan")
    w = np.ones(v.size) if weights is None else np.asarray(weights, dtype=np.float64)
    spread = np.sqrt((v[t].var() + v[~t].var()) / 2)
    if spread == 0:
        return float("nan")
    return float((np.average(v[t], weights=w[t]) - np.average(v[~t], weights=w[~t])) / spread)

"""The churn model's features: their names and the arithmetic from a population's columns.

Kept apart from the model (``state.models.churn``) because the features are shared: the response
and uplift models (``state.campaigns.response``) start from the same base features, the lifetime
benchmarks compute them, and the online learner's default columns (``state.models.online_logistic``)
are :data:`BASE_FEATURES`.

>>> churn_feature_names(("Champions", "Lost"))[-2:]
('segment=Champions', 'segment=Lost')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from state.customer.rfm import DAY_MS

__all__ = ["BASE_FEATURES", "churn_feature_names", "churn_matrix"]

FloatArray = npt.NDArray[np.float64]

BASE_FEATURES = (
    "recency_days",
    "tenure_days",
    "log_frequency",
    "log_net_spend",
    "avg_order_value",
    "mean_gap_days",
    "r_score",
    "f_score",
    "m_score",
    "p_alive",
    "expected_purchases_90d",
)


def churn_feature_names(segments: Sequence[str]) -> tuple[str, ...]:
    """The churn model's columns: :data:`BASE_FEATURES`, then one indicator per named segment."""
    return (*BASE_FEATURES, *(f"segment={s}" for s in segments))


def churn_matrix(
    cols: Mapping[str, npt.NDArray[np.int64]],
    as_of_ms: int,
    alive: FloatArray,
    expected: FloatArray,
    segment: npt.NDArray[np.int64],
    segments: int,
) -> FloatArray:
    """The churn model's features (:func:`churn_feature_names` order) of buyers' columns.

    ``segment`` is each row's named-segment index (``-1``: none yet), one indicator column per
    segment after the base features.
    """
    freq = cols["frequency"].astype(np.float64)
    spend = np.maximum(cols["monetary_cents"], 0) / 100
    first, last = cols["first_ms"], cols["last_ms"]
    base = [
        np.maximum(as_of_ms - last, 0) / DAY_MS,  # recency_days
        np.maximum(as_of_ms - first, 0) / DAY_MS,  # tenure_days
        np.log1p(freq),
        np.log1p(spend),
        spend / np.maximum(freq, 1),  # avg_order_value
        np.where(freq > 1, (last - first) / DAY_MS / np.maximum(freq - 1, 1), 0.0),  # mean_gap_days
        cols["r"].astype(np.float64),
        cols["f"].astype(np.float64),
        cols["m"].astype(np.float64),
        alive,
        np.nan_to_num(expected),
    ]
    matrix = np.zeros((freq.size, len(base) + segments), dtype=np.float64)
    for j, column in enumerate(base):
        matrix[:, j] = column
    named = np.flatnonzero(segment >= 0)
    matrix[named, len(base) + segment[named]] = 1.0  # one indicator per named segment
    return matrix

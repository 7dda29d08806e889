"""What a model has earned: its recent prequential ROC AUC and calibration error, and the alert gate.

*Recent* is a window decayed in event time: a labelled prediction made ``d`` days before the
newest labelled batch weighs ``0.5 ** (d / half_life_days)`` (56 days by default: the last
churn batch weighs 1, the one 28 days older 0.71, a year older 0.01). The window keeps two
histograms of scores (the AUC's, :func:`histogram_auc`) and a :class:`~state.models.calibration.Reliability`
of the probabilities served (its ECE), all O(bins). Each batch counts before its model learns
it (test, then train), so the figures are prequential: scores made before the labels were known.

An alert kind backed by a model fires only while :func:`gate_open`: the recent AUC is defined
and above ``min_auc`` and the recent ECE is below ``max_ece``.

>>> w = RecentWindow(half_life_ms=10)
>>> w.update(0, np.array([True, False]), np.array([0.9, 0.1]), np.array([0.9, 0.1]))
>>> w.update(10, np.array([True, False]), np.array([0.2, 0.8]), np.array([0.2, 0.8]))  # worse, newer
>>> h = w.health(version=2)
>>> round(h.auc or 0, 3), round(h.examples, 2), gate_open(h, 0.65, 0.1)
(0.556, 3.0, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from state.models.calibration import Reliability

__all__ = ["AUC_BINS", "ModelHealth", "RecentWindow", "gate_open", "histogram_auc"]

AUC_BINS = 1000  # score histogram bins of the AUC
DEFAULT_HALF_LIFE_MS = 56 * 86_400_000
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def histogram_auc(positive: npt.NDArray[Any], negative: npt.NDArray[Any]) -> float | None:
    """Mann-Whitney ROC AUC from per-bin (possibly weighted) counts; pairs in one bin count 1/2.

    None until both a positive and a negative were counted.

    >>> histogram_auc(np.array([0, 1, 1]), np.array([1, 1, 0]))
    0.875
    """
    pos, neg = float(positive.sum()), float(negative.sum())
    if pos <= 0 or neg <= 0:
        return None
    below = np.cumsum(negative) - negative  # negatives in lower bins
    wins = float((positive * below).sum()) + 0.5 * float((positive * negative).sum())
    return wins / (pos * neg)


def _bins(scores: FloatArray) -> npt.NDArray[np.int64]:
    return np.clip((np.asarray(scores, dtype=np.float64) * AUC_BINS).astype(np.int64), 0, AUC_BINS - 1)


class ModelHealth(NamedTuple):
    """A model's version and its recent prequential figures (None while undefined)."""

    version: int
    auc: float | None
    ece: float | None
    examples: float  # decayed weight of the labelled predictions behind the figures

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "auc": self.auc,
            "ece": self.ece,
            "examples": round(self.examples, 3),
        }


def gate_open(health: ModelHealth, min_auc: float, max_ece: float) -> bool:
    """Whether the model has earned its alerts: recent AUC above ``min_auc``, ECE below ``max_ece``."""
    return health.auc is not None and health.auc > min_auc and health.ece is not None and health.ece < max_ece


@dataclass
class RecentWindow:
    """Labelled predictions decayed by event-time age (module docstring)."""

    half_life_ms: int = DEFAULT_HALF_LIFE_MS
    positive: FloatArray = field(default_factory=lambda: np.zeros(AUC_BINS))
    negative: FloatArray = field(default_factory=lambda: np.zeros(AUC_BINS))
    served: Reliability = field(default_factory=Reliability)
    newest_ms: int | None = None

    def update(self, made_at_ms: int, labels: BoolArray, raw: FloatArray, served: FloatArray) -> None:
        """Count one labelled batch made at ``made_at_ms``: ``raw`` scores rank (AUC), ``served``
        probabilities are what readers saw (ECE). A batch older than the newest is down-weighted."""
        labels = np.asarray(labels, dtype=np.bool_)
        weight = 1.0
        if self.newest_ms is None or made_at_ms >= self.newest_ms:
            if self.newest_ms is not None:
                self._decay(0.5 ** ((made_at_ms - self.newest_ms) / self.half_life_ms))
            self.newest_ms = made_at_ms
        else:
            weight = 0.5 ** ((self.newest_ms - made_at_ms) / self.half_life_ms)
        b = _bins(raw)
        self.positive += weight * np.bincount(b[labels], minlength=AUC_BINS)
        self.negative += weight * np.bincount(b[~labels], minlength=AUC_BINS)
        self.served.update_many(labels, served, weight)

    def _decay(self, factor: float) -> None:
        self.positive *= factor
        self.negative *= factor
        self.served.decay(factor)

    def health(self, version: int) -> ModelHealth:
        return ModelHealth(
            version, histogram_auc(self.positive, self.negative), self.served.ece(), self.served.examples
        )

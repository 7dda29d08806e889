"""Prequential ROC AUC from score histograms: the honest figure of a model tested before it learns.

Every online model of segstream (churn, response, uplift arms) counts each labelled prediction's
score here *before* learning from its label, so the AUC measures predictions as they were made.
Kept apart from the learner (``state.models.online_logistic``) because readers and benchmarks use the
counters on their own (AUC per segment, per variant).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from state.models.model_health import AUC_BINS, histogram_auc

__all__ = ["Prequential", "auc_row", "auc_rows"]

_BINS = AUC_BINS  # score histogram bins of the prequential AUC
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass
class Prequential:
    """ROC AUC of scores made before their labels were known, from score histograms.

    Scores fall into ``_BINS`` equal bins per label; the AUC is the Mann-Whitney statistic over
    the bins, pairs in the same bin counting one half. It is exact for scores in different bins,
    so its error is at most half the share of (positive, negative) pairs that share a bin.
    Updates are O(1), the state is two arrays of counts.

    >>> p = Prequential()
    >>> for score, churned in ((0.9, True), (0.8, True), (0.3, False), (0.85, False)):
    ...     p.update(churned, score)
    >>> p.value(), p.examples, p.positives
    (0.75, 4, 2)
    """

    churned: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(_BINS, dtype=np.int64))
    retained: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(_BINS, dtype=np.int64))

    @property
    def examples(self) -> int:
        return int(self.churned.sum() + self.retained.sum())

    @property
    def positives(self) -> int:
        return int(self.churned.sum())

    def update(self, churned: bool, score: float) -> None:
        counts = self.churned if churned else self.retained
        counts[min(max(int(score * _BINS), 0), _BINS - 1)] += 1

    def update_many(self, churned: BoolArray, scores: FloatArray) -> None:
        bins = np.clip((scores * _BINS).astype(np.int64), 0, _BINS - 1)
        np.add.at(self.churned, bins[churned], 1)
        np.add.at(self.retained, bins[~churned], 1)

    def value(self) -> float | None:
        """None until both a churned and a retained customer were seen (AUC is undefined before)."""
        return histogram_auc(self.churned, self.retained)


def auc_row(p: Prequential) -> dict[str, Any]:
    """The AUC and label counts of ``p``."""
    return {"auc": p.value(), "examples": p.examples, "positives": p.positives}


def auc_rows(by_key: Mapping[str, Prequential]) -> dict[str, dict[str, Any]]:
    """AUC and label counts per key (segment, variant), keys sorted."""
    return {k: auc_row(p) for k, p in sorted(by_key.items())}

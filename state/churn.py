"""Online churn model learned from delayed labels, with prequential ROC AUC per segment.

A *prediction* is made for a customer at the evaluation instant after each of their purchases:
"will they stay silent for the churn horizon (default 90 days)?". It is scored at once and
kept pending. The label arrives later, in event time:

- a purchase before the horizon ends resolves it as a negative (``False``);
- the clock passing ``last purchase + horizon`` with no purchase resolves it as a positive.

On resolution the stored score (made before the label was known) updates the prequential
ROC AUC, overall and for the segment the customer was in, and only then does the model learn
from the example: test-then-train, so the AUC is honest. :class:`ChurnModel` owns the verbs;
River (``StandardScaler`` + ``LogisticRegression``) is an implementation detail. (River's own
``ROCAUC`` costs O(thresholds) per update; a score histogram does the same in O(1).)

>>> model = ChurnModel()
>>> for _ in range(200):
...     model.resolve(Pending({"recency_days": 1.0}, model.score({"recency_days": 1.0}), "A", 0), churned=False)
...     model.resolve(Pending({"recency_days": 9.0}, model.score({"recency_days": 9.0}), "B", 0), churned=True)
>>> model.score({"recency_days": 9.0}) > 0.5 > model.score({"recency_days": 1.0})
True
>>> round(model.auc(), 2), model.examples
(1.0, 400)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from river import compose, linear_model, optim, preprocessing

from state.profiles import Profile
from state.rfm import DAY_MS, CustomerState

__all__ = ["ChurnModel", "Pending", "churn_features"]

_BINS = 1000  # score histogram bins of the prequential AUC


@dataclass(frozen=True, slots=True)
class Pending:
    """A scored prediction waiting for its label."""

    features: dict[str, float]
    score: float
    segment: str
    made_at_ms: int


def churn_features(state: CustomerState, profile: Profile, as_of_ms: int) -> dict[str, float]:
    """What the churn model sees: RFM scores, behaviour and the named segment (one-hot).

    >>> s = CustomerState("c", frequency=3, monetary_cents=9000, first_purchase_ms=0, last_purchase_ms=20 * DAY_MS)
    >>> f = churn_features(s, Profile(5, 3, 4, "Loyal Customers", None, None), 20 * DAY_MS)
    >>> f["mean_gap_days"], f["segment=Loyal Customers"], f["r_score"]
    (10.0, 1.0, 5.0)
    """
    first, last = state.first_purchase_ms or 0, state.last_purchase_ms or 0
    spend = max(state.monetary_cents, 0) / 100
    return {
        "r_score": float(profile.r_score),
        "f_score": float(profile.f_score),
        "m_score": float(profile.m_score),
        "log_frequency": math.log1p(state.frequency),
        "log_net_spend": math.log1p(spend),
        "avg_order_value": spend / max(state.frequency, 1),
        "tenure_days": max(as_of_ms - first, 0) / DAY_MS,
        "mean_gap_days": (last - first) / DAY_MS / (state.frequency - 1) if state.frequency > 1 else 0.0,
        f"segment={profile.rfm_segment}": 1.0,
    }


@dataclass
class _Prequential:
    """ROC AUC of scores made before their labels were known, from score histograms.

    Scores fall into ``_BINS`` equal bins per label; the AUC is the Mann-Whitney statistic over
    the bins, pairs in the same bin counting one half. It is exact for scores in different bins,
    so its error is at most half the share of (positive, negative) pairs that share a bin.
    Updates are O(1), the state is two arrays of counts.

    >>> p = _Prequential()
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

    def value(self) -> float | None:
        """None until both a churned and a retained customer were seen (AUC is undefined before)."""
        pos, neg = self.churned.sum(), self.retained.sum()
        if not pos or not neg:
            return None
        below = np.cumsum(self.retained) - self.retained  # retained scores in lower bins
        wins = (self.churned * below).sum() + 0.5 * (self.churned * self.retained).sum()
        return float(wins / (pos * neg))


@dataclass
class ChurnModel:
    """Scores churn risk and learns from resolved predictions (see the module docstring)."""

    learning_rate: float = 0.05
    _model: Any = None
    _overall: _Prequential = field(default_factory=_Prequential)
    _by_segment: dict[str, _Prequential] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self._model is None:
            self._model = compose.Pipeline(
                preprocessing.StandardScaler(),
                linear_model.LogisticRegression(optimizer=optim.SGD(self.learning_rate)),
            )

    @property
    def examples(self) -> int:
        return self._overall.examples

    @property
    def positives(self) -> int:
        return self._overall.positives

    def score(self, features: Mapping[str, float]) -> float:
        """Probability that the customer stays silent for the horizon (0.5 before any learning)."""
        return float(self._model.predict_proba_one(dict(features)).get(True, 0.5))

    def resolve(self, pending: Pending, churned: bool) -> None:
        """Test-then-train: count the stored score in the AUC, then learn the example."""
        self._overall.update(churned, pending.score)
        if pending.segment not in self._by_segment:
            self._by_segment[pending.segment] = _Prequential()
        self._by_segment[pending.segment].update(churned, pending.score)
        self._model.learn_one(dict(pending.features), churned)

    def auc(self) -> float | None:
        """Prequential ROC AUC over every resolved prediction; None until both labels were seen."""
        return self._overall.value()

    def report(self) -> dict[str, Any]:
        """AUC and label counts overall and per segment (the segment at prediction time)."""

        def row(p: _Prequential) -> dict[str, Any]:
            return {"auc": p.value(), "examples": p.examples, "positives": p.positives}

        return {**row(self._overall), "by_segment": {s: row(p) for s, p in sorted(self._by_segment.items())}}

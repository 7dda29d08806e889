"""Online churn model learned from delayed labels, with prequential ROC AUC per segment.

A *prediction* is made for a customer at the evaluation instant after each of their purchases:
"will they stay silent for the churn horizon (default 90 days)?". It is scored at once and
kept pending. The label arrives later, in event time:

- a purchase before the horizon ends resolves it as a negative (``False``);
- the clock passing ``last purchase + horizon`` with no purchase resolves it as a positive.

On resolution the stored score (made before the label was known) updates the prequential
ROC AUC, overall and for the segment the customer was in, and only then does the model learn
from the example: test-then-train, so the AUC is honest. :class:`ChurnModel` owns the verbs;
River (``StandardScaler`` + ``LogisticRegression``) is an implementation detail.

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

from river import compose, linear_model, metrics, optim, preprocessing

from state.profiles import Profile
from state.rfm import DAY_MS, CustomerState

__all__ = ["ChurnModel", "Pending", "churn_features"]

_THRESHOLDS = 200  # River's ROCAUC is exact up to this many score thresholds


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


def _roc_auc() -> Any:
    return metrics.ROCAUC(n_thresholds=_THRESHOLDS)  # type: ignore[no-untyped-call]


@dataclass
class _Prequential:
    """ROC AUC of scores made before their labels were known, with the label counts."""

    auc: Any = field(default_factory=lambda: _roc_auc())
    examples: int = 0
    positives: int = 0

    def update(self, churned: bool, score: float) -> None:
        self.auc.update(churned, score)
        self.examples += 1
        self.positives += int(churned)

    def value(self) -> float | None:
        """None until both a positive and a negative were seen (AUC is undefined before)."""
        return float(self.auc.get()) if 0 < self.positives < self.examples else None


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
        self._by_segment.setdefault(pending.segment, _Prequential()).update(churned, pending.score)
        self._model.learn_one(dict(pending.features), churned)

    def auc(self) -> float | None:
        """Prequential ROC AUC over every resolved prediction; None until both labels were seen."""
        return self._overall.value()

    def report(self) -> dict[str, Any]:
        """AUC and label counts overall and per segment (the segment at prediction time)."""

        def row(p: _Prequential) -> dict[str, Any]:
            return {"auc": p.value(), "examples": p.examples, "positives": p.positives}

        return {**row(self._overall), "by_segment": {s: row(p) for s, p in sorted(self._by_segment.items())}}

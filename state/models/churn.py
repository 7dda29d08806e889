"""Online churn model learned from delayed labels, with prequential ROC AUC per segment.

*Predictions* are made in batches at checkpoint instants (every 28 days of event time by
default): at a checkpoint ``t`` every buyer gets a score for "will they make no purchase in
``[t, t + horizon)``?" (horizon 90 days by default), from their features as of ``t``. The batch
waits for its labels, in event time: at instant ``t + horizon`` a customer whose last purchase
is still before ``t`` churned (positive), anyone who bought since is retained (negative). All of
a batch's labels arrive together, at its horizon, so the learner never sees the easy early
negatives ahead of the positives of the same batch.

On resolution the stored scores (made before the labels were known) update the prequential
ROC AUC, overall and for the segment each customer was in, and only then does the model learn,
from an evenly spread sample of the batch (``learn_per_batch`` customers, so a large population
costs a bounded time): test-then-train, so the AUC is honest. Because checkpoints fall at every
silence length, the model scores a customer at any instant, not only right after a purchase;
the evaluator uses that for the current churn probability and band.

:class:`ChurnModel` owns the verbs and the calibration; what it shares with the campaign models
is elsewhere: the learner and its batches (``state.models.online_logistic``: River does the
learning, scoring a whole population is a numpy dot product with River's learned means, variances
and weights, :meth:`ChurnModel.scorer`), the prequential AUC (``state.models.prequential``: a score
histogram, O(1) per update where River's own ``ROCAUC`` costs O(thresholds)) and the features
(``state.models.churn_features``).

>>> model = ChurnModel(names=("recency_days",))
>>> silent, recent = np.array([[90.0]]), np.array([[2.0]])
>>> for t in range(50):
...     x = np.vstack([silent, recent])
...     model.resolve(PendingBatch.make(t, np.array([0, 1]), model.scores(x), np.array([0, 0]), x, 2), np.array([True, False]))
>>> bool(model.scores(silent)[0] > 0.5 > model.scores(recent)[0])
True
>>> round(model.auc() or 0, 2), model.examples, model.version
(1.0, 100, 50)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from state.models.alerts import NO_BAND, band_name
from state.models.calibration import Platt
from state.models.online_logistic import OnlineLogistic, PendingBatch

__all__ = ["ChurnModel"]

BoolArray = npt.NDArray[np.bool_]


@dataclass
class ChurnModel(OnlineLogistic):
    """Scores churn risk and learns from resolved batches (see the module docstring).

    The probability it serves (:meth:`scores`, the scorer's arithmetic) is the raw logistic
    probability through an online Platt map (:class:`~state.models.calibration.Platt`), refitted after
    each batch on the batch's learned sample scored by the model just updated, with older
    batches fading at the recent window's half-life. The map is strictly increasing, so the
    ranking (AUC) is the raw model's. Reliability, Brier and ECE are kept for both the raw and
    the served probabilities, and each band's observed churn rate from the band the customer was
    in when the prediction was made.
    """

    calibrator: Platt = field(default_factory=Platt)
    _calibrated_at_ms: int | None = None
    _band_count: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(4, dtype=np.int64))
    _band_churned: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(4, dtype=np.int64))

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("calibrator", Platt())
        self.__dict__.setdefault("_calibrated_at_ms", None)
        self.__dict__.setdefault("_band_count", np.zeros(4, dtype=np.int64))
        self.__dict__.setdefault("_band_churned", np.zeros(4, dtype=np.int64))

    def scorer(self) -> dict[str, Any]:
        """The raw scorer with the calibration map (``score_with`` applies both)."""
        return {**self._raw_scorer(), "calibration": self.calibrator.params()}

    def resolve(self, batch: PendingBatch, churned: BoolArray) -> None:
        """Test-then-train: count the batch's stored scores (AUC, calibration, bands), learn its
        sample, then refit the calibration map on that sample as the updated model scores it."""
        churned = np.asarray(churned, dtype=np.bool_)
        if batch.bands is not None:
            np.add.at(self._band_count, batch.bands, 1)
            np.add.at(self._band_churned, batch.bands[churned], 1)
        self._test_then_train(batch, churned)
        if self._calibrated_at_ms is not None and batch.made_at_ms > self._calibrated_at_ms:
            self.calibrator.decay(0.5 ** ((batch.made_at_ms - self._calibrated_at_ms) / self.half_life_ms))
        self._calibrated_at_ms = max(batch.made_at_ms, self._calibrated_at_ms or batch.made_at_ms)
        self.calibrator.learn(churned[batch.sample], self.raw_scores(batch.features))

    def band_outcomes(self) -> dict[str, dict[str, Any]]:
        """Per band (the customer's band when the prediction was made): predictions labelled,
        churned, and the observed churn rate (None before any)."""
        out: dict[str, dict[str, Any]] = {}
        for band in range(NO_BAND + 1, 4):
            n, k = int(self._band_count[band]), int(self._band_churned[band])
            out[str(band_name(band))] = {
                "predictions": n,
                "churned": k,
                "observed_churn_rate": k / n if n else None,
            }
        return out

    def report(self) -> dict[str, Any]:
        """AUC and label counts overall and per segment (the segment at prediction time); the
        calibration of the raw and served probabilities (every labelled prediction) and the
        recent window's AUC and ECE; each band's observed churn rate."""
        return {
            **self._report(),
            "calibration": {
                "raw": self._raw_reliability.figures().to_json(),
                "served": self._served_reliability.figures().to_json(),
                "platt": self.calibrator.params(),
            },
            "recent": {**self.health().to_json(), "half_life_days": self.half_life_ms / 86_400_000},
            "band_outcomes": self.band_outcomes(),
        }

"""Calibration of probability scores, kept online in O(bins): reliability, Brier, ECE, Platt scaling.

Definitions (the ones ``make eval`` and ``segstream models`` report):

- **Reliability**: the scores fall into ``bins`` equal-width bins of predicted probability
  (``[0, 0.1), [0.1, 0.2), ..., [0.9, 1]`` for 10); per bin, the number of predictions, their
  mean predicted probability and the observed rate of positives.
- **Brier score**: the mean of ``(p - y)^2`` over all predictions (0 is perfect; always
  predicting the base rate ``b`` scores ``b (1 - b)``).
- **Expected calibration error (ECE)**: ``sum over bins of (n_bin / N) * |mean predicted -
  observed rate|`` over those 10 equal-width bins: the average gap, weighted by predictions,
  between what the model said and what happened.

:class:`Reliability` keeps weighted sums per bin (a weight lets the caller decay old batches),
so its state is O(bins) however many predictions it has seen. :class:`Platt` is the online
calibration step: logistic regression of the label on the logit of the raw score,
``p = expit(a * logit(raw) + b)``, fitted by Newton's method on a decayed histogram of raw
logits (O(bins) state). With ``a > 0`` it is strictly increasing, so it leaves the ranking,
and the ROC AUC, untouched.

>>> r = Reliability()
>>> r.update_many(np.array([True, False, True, True]), np.array([0.95, 0.05, 0.9, 0.35]))
>>> round(r.brier() or 0, 4), round(r.ece() or 0, 4)
(0.1094, 0.2125)
>>> [(row.low, row.predictions, row.observed_rate) for row in r.rows() if row.predictions]
[(0.0, 1.0, 0.0), (0.3, 1.0, 1.0), (0.9, 2.0, 1.0)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.special import expit

__all__ = [
    "ECE_BINS",
    "CalibrationFigures",
    "Platt",
    "Reliability",
    "ReliabilityRow",
    "calibration_figures",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ECE_BINS = 10
_LOGIT_LIMIT = 12.0  # raw logits are clipped to +-this (probabilities 6e-6 .. 1 - 6e-6)
_PLATT_BINS = 240  # histogram bins of raw logits: 0.1 logit wide
_MIN_SLOPE = 0.05  # the calibration map stays strictly increasing
_RIDGE = 1.0  # pull towards the identity map (a = 1, b = 0), in pseudo-examples


class ReliabilityRow(NamedTuple):
    """One equal-width bin of predicted probability: ``[low, high)`` (the last bin includes 1)."""

    low: float
    high: float
    predictions: float  # in the bin (weighted)
    mean_predicted: float | None  # None for an empty bin
    observed_rate: float | None


class CalibrationFigures(NamedTuple):
    """Brier score and ECE over ``examples`` predictions (None before any), with the reliability table."""

    examples: float
    brier: float | None
    ece: float | None
    reliability: list[ReliabilityRow]

    def to_json(self) -> dict[str, Any]:
        return {
            "examples": round(self.examples, 3),
            "brier": self.brier,
            "ece": self.ece,
            "reliability": [row._asdict() for row in self.reliability],
        }


def _bin_of(scores: FloatArray, bins: int) -> npt.NDArray[np.int64]:
    return np.clip((np.asarray(scores, dtype=np.float64) * bins).astype(np.int64), 0, bins - 1)


@dataclass
class Reliability:
    """Weighted counts per equal-width probability bin, and the squared error (module docstring)."""

    bins: int = ECE_BINS
    count: FloatArray = field(default_factory=lambda: np.zeros(0))
    predicted: FloatArray = field(default_factory=lambda: np.zeros(0))  # sum of predicted probabilities
    positives: FloatArray = field(default_factory=lambda: np.zeros(0))
    squared: float = 0.0  # sum of (p - y)^2

    def __post_init__(self) -> None:
        for name in ("count", "predicted", "positives"):
            if getattr(self, name).size == 0:
                setattr(self, name, np.zeros(self.bins))

    @property
    def examples(self) -> float:
        return float(self.count.sum())

    def update_many(self, labels: BoolArray, scores: FloatArray, weight: float = 1.0) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64)
        b = _bin_of(scores, self.bins)
        self.count += weight * np.bincount(b, minlength=self.bins)
        self.predicted += weight * np.bincount(b, weights=scores, minlength=self.bins)
        self.positives += weight * np.bincount(b, weights=y, minlength=self.bins)
        self.squared += weight * float(((scores - y) ** 2).sum())

    def decay(self, factor: float) -> None:
        """Multiply every count by ``factor`` (older predictions weigh less)."""
        self.count *= factor
        self.predicted *= factor
        self.positives *= factor
        self.squared *= factor

    def brier(self) -> float | None:
        n = self.examples
        return self.squared / n if n > 0 else None

    def ece(self) -> float | None:
        n = self.examples
        if n <= 0:
            return None
        return float(np.abs(self.predicted - self.positives).sum() / n)  # sum_b n_b/N |mean_p - rate|

    def rows(self) -> list[ReliabilityRow]:
        out = []
        for i in range(self.bins):
            n = float(self.count[i])
            seen = n > 1e-12
            out.append(
                ReliabilityRow(
                    round(i / self.bins, 6),
                    round((i + 1) / self.bins, 6),
                    round(n, 3),
                    float(self.predicted[i] / n) if seen else None,
                    float(self.positives[i] / n) if seen else None,
                )
            )
        return out

    def figures(self) -> CalibrationFigures:
        return CalibrationFigures(self.examples, self.brier(), self.ece(), self.rows())


def calibration_figures(labels: BoolArray, scores: FloatArray, bins: int = ECE_BINS) -> CalibrationFigures:
    """Brier, ECE and the reliability table of one scored set (what ``make eval`` reports).

    >>> f = calibration_figures(np.array([False, True]), np.array([0.2, 0.8]))
    >>> round(f.brier or 0, 3), round(f.ece or 0, 3)
    (0.04, 0.2)
    """
    r = Reliability(bins)
    r.update_many(labels, scores)
    return r.figures()


def _logit(p: FloatArray) -> FloatArray:
    p = np.clip(np.asarray(p, dtype=np.float64), expit(-_LOGIT_LIMIT), expit(_LOGIT_LIMIT))
    return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)


@dataclass
class Platt:
    """Online Platt scaling: ``expit(a * logit(raw) + b)``, learned from a decayed histogram.

    :meth:`learn` adds labelled raw scores to per-bin counts of raw logits (``_PLATT_BINS``
    bins over ``+-_LOGIT_LIMIT``), then refits ``(a, b)`` by Newton's method on the bin
    centres, with a small ridge towards the identity (``a = 1, b = 0``) so few labels move it
    little; ``a`` is kept at least ``_MIN_SLOPE`` (strictly increasing). Until it has learned,
    it is the identity. :meth:`decay` lets older labels fade.

    >>> platt = Platt()
    >>> rng = np.random.default_rng(0)
    >>> raw = rng.uniform(0.01, 0.99, 20_000)
    >>> truth = expit(0.5 * _logit(raw) - 1.0)  # an over-confident, biased raw model
    >>> platt.learn(rng.random(raw.size) < truth, raw)
    >>> round(platt.a, 1), round(platt.b, 1)
    (0.5, -1.0)
    >>> bool(np.all(np.diff(platt.apply(np.sort(raw))) >= 0))
    True
    """

    a: float = 1.0
    b: float = 0.0
    count: FloatArray = field(default_factory=lambda: np.zeros(_PLATT_BINS))
    positives: FloatArray = field(default_factory=lambda: np.zeros(_PLATT_BINS))

    @property
    def examples(self) -> float:
        return float(self.count.sum())

    def params(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b}

    def apply(self, raw: FloatArray) -> FloatArray:
        return apply_platt(self.a, self.b, raw)

    def decay(self, factor: float) -> None:
        self.count *= factor
        self.positives *= factor

    def learn(self, labels: BoolArray, raw: FloatArray) -> None:
        z = _logit(raw)
        width = 2 * _LOGIT_LIMIT / _PLATT_BINS
        b = np.clip(((z + _LOGIT_LIMIT) / width).astype(np.int64), 0, _PLATT_BINS - 1)
        self.count += np.bincount(b, minlength=_PLATT_BINS)
        self.positives += np.bincount(b, weights=np.asarray(labels, dtype=np.float64), minlength=_PLATT_BINS)
        self._fit()

    def _fit(self) -> None:
        width = 2 * _LOGIT_LIMIT / _PLATT_BINS
        centre = -_LOGIT_LIMIT + width * (np.arange(_PLATT_BINS) + 0.5)
        used = self.count > 0
        z, n, k = centre[used], self.count[used], self.positives[used]
        if n.sum() <= 0 or k.sum() <= 0 or k.sum() >= n.sum():
            return  # one label only: nothing to scale against
        theta = np.array([self.a, self.b])
        prior = np.array([1.0, 0.0])
        design = np.column_stack([z, np.ones_like(z)])
        for _ in range(50):
            p = expit(design @ theta)
            gradient = design.T @ (k - n * p) - _RIDGE * (theta - prior)
            hessian = (design * (n * p * (1 - p))[:, None]).T @ design + _RIDGE * np.eye(2)
            step = np.linalg.solve(hessian, gradient)
            theta = theta + step
            if np.abs(step).max() < 1e-9:
                break
        self.a, self.b = max(float(theta[0]), _MIN_SLOPE), float(theta[1])


def apply_platt(a: float, b: float, raw: FloatArray) -> FloatArray:
    """``expit(a * logit(raw) + b)``: the calibrated probability of raw scores."""
    return np.asarray(expit(a * _logit(raw) + b), dtype=np.float64)

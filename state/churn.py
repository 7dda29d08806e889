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

:class:`ChurnModel` owns the verbs; River (``StandardScaler`` + ``LogisticRegression``) does the
learning, and scoring a whole population is a numpy dot product with River's learned means,
variances and weights (:meth:`ChurnModel.scorer`, the same arithmetic, tested against River).
River's own ``ROCAUC`` costs O(thresholds) per update; a score histogram does the same in O(1).

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from river import compose, linear_model, optim, preprocessing
from scipy.special import expit

from state.models.alerts import NO_BAND, band_name
from state.models.calibration import Platt, Reliability, apply_platt
from state.models.model_health import AUC_BINS, DEFAULT_HALF_LIFE_MS, ModelHealth, RecentWindow, histogram_auc
from state.customer.rfm import DAY_MS

__all__ = [
    "BASE_FEATURES",
    "ChurnModel",
    "OnlineLogistic",
    "PendingBatch",
    "Prequential",
    "auc_rows",
    "churn_feature_names",
    "churn_matrix",
    "clip_standardised",
    "score_with",
]

_BINS = AUC_BINS  # score histogram bins of the prequential AUC
CLIP = 5.0  # standardised features are clipped to +-CLIP standard deviations
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

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


@dataclass(frozen=True)
class PendingBatch:
    """Scored predictions made at one checkpoint, waiting for their labels.

    ``rows``, ``scores`` and ``segments`` (index into the model's segment names) cover every
    customer scored; ``sample`` (positions in ``rows``) and ``features`` the ones learned from.
    ``scores`` are the model's raw probabilities (they rank: AUC); ``served`` the probabilities
    readers were given (calibrated; None: the raw ones) and ``bands`` each customer's churn band
    at the prediction (None: not tracked), both counted when the labels arrive.
    """

    made_at_ms: int
    rows: IntArray
    scores: FloatArray
    segments: IntArray
    sample: IntArray
    features: FloatArray
    served: FloatArray | None = None
    bands: IntArray | None = None

    @classmethod
    def make(
        cls,
        made_at_ms: int,
        rows: IntArray,
        scores: FloatArray,
        segments: IntArray,
        x: FloatArray,
        learn: int,
        *,
        served: FloatArray | None = None,
        bands: IntArray | None = None,
    ) -> PendingBatch:
        """A batch learning from ``learn`` customers evenly spread over ``rows`` (all if fewer)."""
        sample = np.unique(np.linspace(0, rows.size - 1, min(learn, rows.size)).round().astype(np.int64))
        features = np.asarray(x[sample], dtype=np.float64)
        return cls(made_at_ms, rows, scores, segments, sample, features, served, bands)


def clip_standardised(z: dict[str, float]) -> dict[str, float]:
    """Standardised values clipped to +-``CLIP``: a feature whose distribution moved (a new
    lifetime model version can spread ``p_alive`` that was nearly constant while the model
    learned) must not swamp every other feature."""
    return {k: min(max(v, -CLIP), CLIP) for k, v in z.items()}


def score_with(scorer: Mapping[str, Any], x: FloatArray) -> FloatArray:
    """Churn probabilities of feature rows ``x`` from a :meth:`ChurnModel.scorer` (JSON-safe) dict.

    River's arithmetic: each column standardised, ``(x - mean) / std`` (0 where std is 0),
    clipped (:func:`clip_standardised`), then the logistic of the dot product with the weights;
    then, if the scorer has a ``calibration`` (the churn model's :class:`~state.models.calibration.Platt`
    map), that map.
    """
    mean, std = np.asarray(scorer["means"]), np.asarray(scorer["stds"])
    inverse = np.where(std > 0, 1 / np.where(std > 0, std, 1.0), 0.0)
    z = np.clip((x - mean) * inverse, -CLIP, CLIP)
    raw = np.asarray(expit(z @ np.asarray(scorer["weights"]) + float(scorer["intercept"])), dtype=np.float64)
    calibration = scorer.get("calibration")
    if calibration is None:
        return raw
    return apply_platt(float(calibration["a"]), float(calibration["b"]), raw)


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


@dataclass
class OnlineLogistic:
    """What the churn and response models share: River's pipeline learning from labelled
    batches, the scorer every reader applies, and the prequential AUC overall and by segment.

    River ``StandardScaler`` -> :func:`clip_standardised` -> ``LogisticRegression`` (SGD);
    :func:`score_with` is the same arithmetic in numpy.
    """

    names: tuple[str, ...] = BASE_FEATURES
    segments: tuple[str, ...] = ()  # segment names, indexed by PendingBatch.segments
    learning_rate: float = 0.01
    version: int = 0  # batches learned from
    half_life_ms: int = DEFAULT_HALF_LIFE_MS  # of the recent window (state.models.model_health)
    _model: Any = None
    _overall: Prequential = field(default_factory=Prequential)
    _by_segment: dict[str, Prequential] = field(default_factory=dict)
    _recent: RecentWindow = field(default_factory=RecentWindow)
    _raw_reliability: Reliability = field(default_factory=Reliability)  # every labelled raw score
    _served_reliability: Reliability = field(default_factory=Reliability)  # every labelled served one

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A model saved before the recent window and reliability existed starts them empty."""
        self.__dict__.update(state)
        self.__dict__.setdefault("half_life_ms", DEFAULT_HALF_LIFE_MS)
        self.__dict__.setdefault("_recent", RecentWindow(self.half_life_ms))
        self.__dict__.setdefault("_raw_reliability", Reliability())
        self.__dict__.setdefault("_served_reliability", Reliability())

    def __post_init__(self) -> None:
        if self._model is None:
            self._model = compose.Pipeline(
                preprocessing.StandardScaler(),
                compose.FuncTransformer(clip_standardised),
                linear_model.LogisticRegression(optimizer=optim.SGD(self.learning_rate)),
            )
        self._recent.half_life_ms = self.half_life_ms

    @property
    def examples(self) -> int:
        return self._overall.examples

    @property
    def positives(self) -> int:
        return self._overall.positives

    def scorer(self) -> dict[str, Any]:
        """The learned arithmetic as plain lists: what every scorer loads (:func:`score_with`)."""
        return self._raw_scorer()

    def _raw_scorer(self) -> dict[str, Any]:
        scaler, linear = self._model["StandardScaler"], self._model["LogisticRegression"]
        return {
            "version": self.version,
            "names": list(self.names),
            "means": [float(scaler.means.get(n, 0.0)) for n in self.names],
            "stds": [float(scaler.vars.get(n, 0.0)) ** 0.5 for n in self.names],
            "weights": [float(linear.weights.get(n, 0.0)) for n in self.names],
            "intercept": float(linear.intercept),
        }

    def scores(self, x: FloatArray) -> FloatArray:
        """The positive class's probability for each row of ``x`` (0.5 before learning), as served."""
        return score_with(self.scorer(), x)

    def raw_scores(self, x: FloatArray) -> FloatArray:
        """The logistic regression's own probabilities, before any calibration."""
        return score_with(self._raw_scorer(), x)

    def auc(self) -> float | None:
        """Prequential ROC AUC over every resolved prediction; None until both labels were seen."""
        return self._overall.value()

    def health(self) -> ModelHealth:
        """The version with the recent (decayed) prequential AUC and ECE (``state.models.model_health``)."""
        return self._recent.health(self.version)

    def _test_then_train(self, batch: PendingBatch, labels: BoolArray) -> None:
        """Count the batch's stored scores in the AUC (overall and by segment), then learn its sample.

        One pass over the sample in a shuffled order, seeded by the batch's instant so it is
        deterministic: rows come in the caller's order (first-seen), which SGD must not learn
        as a trend.
        """
        self._overall.update_many(labels, batch.scores)
        served = batch.scores if batch.served is None else batch.served
        self._recent.update(batch.made_at_ms, labels, batch.scores, served)
        self._raw_reliability.update_many(labels, batch.scores)
        self._served_reliability.update_many(labels, served)
        for index in np.unique(batch.segments).tolist():
            name = self.segments[index] if 0 <= index < len(self.segments) else "unknown"
            mine = batch.segments == index
            self._by_segment.setdefault(name, Prequential()).update_many(labels[mine], batch.scores[mine])
        sample = labels[batch.sample]
        for i in np.random.default_rng(batch.made_at_ms).permutation(sample.size).tolist():
            self._model.learn_one(
                dict(zip(self.names, batch.features[i].tolist(), strict=True)), bool(sample[i])
            )
        self.version += 1

    def _report(self) -> dict[str, Any]:
        return {**_row(self._overall), "version": self.version, "by_segment": auc_rows(self._by_segment)}


def _row(p: Prequential) -> dict[str, Any]:
    return {"auc": p.value(), "examples": p.examples, "positives": p.positives}


def auc_rows(by_key: Mapping[str, Prequential]) -> dict[str, dict[str, Any]]:
    """AUC and label counts per key (segment, variant), keys sorted."""
    return {k: _row(p) for k, p in sorted(by_key.items())}


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


def churn_matrix(
    cols: Mapping[str, npt.NDArray[np.int64]],
    as_of_ms: int,
    alive: FloatArray,
    expected: FloatArray,
    segment: npt.NDArray[np.int64],
    segments: int,
) -> FloatArray:
    """The churn model's features (``state.models.churn.churn_feature_names`` order) of buyers' columns.

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

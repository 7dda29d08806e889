"""The online logistic learner the churn, response and uplift models share, and its batches.

*Predictions* are made in batches (:class:`PendingBatch`) that wait for their labels; when a
batch's labels arrive its stored scores, made before the labels were known, are counted in the
prequential AUC (``state.models.prequential``), and only then does the model learn from the batch's
sample: test-then-train. River (``StandardScaler`` + ``LogisticRegression``) does the learning;
scoring a whole population is a numpy dot product with River's learned means, variances and
weights (:func:`score_with`, the same arithmetic, tested against River). Kept apart from the churn
model (``state.models.churn``) because the campaign models (``state.campaigns``) are the same learner
with other features and labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from river import compose, linear_model, optim, preprocessing
from scipy.special import expit

from state.models.calibration import Reliability, apply_platt
from state.models.churn_features import BASE_FEATURES
from state.models.model_health import DEFAULT_HALF_LIFE_MS, ModelHealth, RecentWindow
from state.models.prequential import Prequential, auc_row, auc_rows

__all__ = ["CLIP", "OnlineLogistic", "PendingBatch", "clip_standardised", "narrowest_ints", "score_with"]

CLIP = 5.0  # standardised features are clipped to +-CLIP standard deviations
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


_INT_FIELDS = ("rows", "segments", "sample", "bands")


def narrowest_ints(values: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.integer[Any]]:
    """``values`` in the narrowest signed integer type holding all of them.

    >>> narrowest_ints(np.array([0, 5, 127])).dtype, narrowest_ints(np.array([-1, 40_000])).dtype
    (dtype('int8'), dtype('int32'))
    """
    if values.size == 0:
        return values.astype(np.int8)
    low, high = int(values.min()), int(values.max())
    for kind in (np.int8, np.int16, np.int32):
        info = np.iinfo(kind)
        if info.min <= low and high <= info.max:
            return values.astype(kind)
    return values


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

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its integer arrays in the narrowest type that holds them.

        Open batches are most of the evaluator's saved snapshot (one row per customer per batch,
        several batches open at a time), and their integers (row numbers, segment and band
        indices) fit in 1 to 4 bytes, not 8. Unpickled back as int64 (:meth:`__setstate__`), so
        nothing downstream sees another type; snapshots pickled before this load the same way.
        """
        state = dict(self.__dict__)
        for name in _INT_FIELDS:
            if state.get(name) is not None:
                state[name] = narrowest_ints(state[name])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in _INT_FIELDS:
            if state.get(name) is not None:
                state[name] = np.asarray(state[name], dtype=np.int64)
        self.__dict__.update(state)

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
        return {**auc_row(self._overall), "version": self.version, "by_segment": auc_rows(self._by_segment)}

"""The single-model candidates of ``bench/uplift_candidates.py``: one model over all exposures.

- :class:`Interaction`: one logistic regression with every feature and every feature times
  ``treated`` (the base learns from both arms), uplift = its probability treated minus untreated;
- :class:`TransformedOutcome`: an online linear regression of ``y (t - e) / (e (1 - e))``.

Both score at the exposure and learn each due batch once its label is final (test, then train).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from river import compose, linear_model, preprocessing
from scipy.special import expit

from bench.uplift_arm_candidates import river_optimizer, shuffled
from state.campaigns.uplift import PropensityModel, stabilised_weights
from state.models.online_logistic import CLIP, PendingBatch, clip_standardised


def interact(z: dict[str, float]) -> dict[str, float]:
    """Standardised, clipped features and each of them times ``treated`` (its standardised value
    is above 0 exactly when treated)."""
    z = clip_standardised(z)
    on = z["treated"] > 0
    return {**z, **{f"t*{k}": (v if on else 0.0) for k, v in z.items() if k != "treated"}}


@dataclass
class Pending:
    due_ms: int
    keys: np.ndarray
    batch: PendingBatch  # rows: positions in ``keys``
    treated: np.ndarray
    weights: np.ndarray
    propensity: np.ndarray


@dataclass
class _Single:
    """One model over all exposures (the interaction and transformed-outcome candidates)."""

    names: tuple[str, ...]
    segments: tuple[str, ...] = ()
    learning_rate: float = 0.003
    clip: float = 0.05
    arm_rate: float | None = None
    passes: int = 1
    optimizer: str = "sgd"
    learn_per_batch: int = 5000
    pending: list[Pending] = field(default_factory=list)
    version: int = 0
    _model: Any = None

    def __post_init__(self) -> None:
        self.propensity = PropensityModel(
            names=self.names, segments=self.segments, learning_rate=self.learning_rate
        )
        self._model = self._pipeline(river_optimizer(self.optimizer, self.arm_rate or self.learning_rate))

    def _pipeline(self, opt: Any) -> Any:
        raise NotImplementedError

    def uplift(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _learn(self, p: Pending, labels: np.ndarray) -> None:
        raise NotImplementedError

    def score(self, at_ms: int, keys: Any, x: np.ndarray, segments: Any, *, window_ms: int) -> Any:
        x = np.asarray(x, dtype=np.float64)
        treated = x[:, self.names.index("treated")] > 0
        share = self.propensity.share()
        e = self.propensity.score_and_learn(at_ms, keys, x, segments, treated)
        u = self.uplift(x)
        batch = PendingBatch.make(at_ms, np.arange(len(keys)), u, segments, x, self.learn_per_batch)
        weights = stabilised_weights(e, treated, share, self.clip)
        self.pending.append(Pending(at_ms + window_ms, np.asarray(keys), batch, treated, weights, e))
        self.pending.sort(key=lambda p: p.due_ms)
        return u, e

    def take_due(self, at_ms: int) -> list[Pending]:
        due = [p for p in self.pending if p.due_ms <= at_ms]
        self.pending = [p for p in self.pending if p.due_ms > at_ms]
        return due

    def resolve(self, pending: Pending, responded: np.ndarray) -> None:
        self._learn(pending, np.asarray(responded, dtype=np.bool_))  # by position in ``keys``
        self.version += 1

    def report(self) -> dict[str, Any]:
        return {"version": self.version, "propensity": self.propensity.report()}


@dataclass
class Interaction(_Single):
    def _pipeline(self, opt: Any) -> Any:
        return compose.Pipeline(
            preprocessing.StandardScaler(),
            compose.FuncTransformer(interact),
            linear_model.LogisticRegression(optimizer=opt),
        )

    def _probability(self, x: np.ndarray, treated: float) -> np.ndarray:
        scaler, linear = self._model["StandardScaler"], self._model["LogisticRegression"]
        mean = np.array([scaler.means.get(n, 0.0) for n in self.names])
        std = np.sqrt([scaler.vars.get(n, 0.0) for n in self.names])
        x = x.copy()
        x[:, self.names.index("treated")] = treated
        z = np.clip((x - mean) * np.where(std > 0, 1 / np.where(std > 0, std, 1), 0), -CLIP, CLIP)
        base = np.array([linear.weights.get(n, 0.0) for n in self.names])
        extra = np.array([0.0 if n == "treated" else linear.weights.get(f"t*{n}", 0.0) for n in self.names])
        on = z[:, self.names.index("treated")] > 0
        return np.asarray(expit(z @ base + on * (z @ extra) + linear.intercept))

    def uplift(self, x: np.ndarray) -> np.ndarray:
        return self._probability(x, 1.0) - self._probability(x, 0.0)

    def _learn(self, p: Pending, labels: np.ndarray) -> None:
        sample, w = labels[p.batch.sample], p.weights[p.batch.sample]
        for i in shuffled(p.batch, self.passes):
            x = dict(zip(self.names, p.batch.features[i].tolist(), strict=True))
            self._model.learn_one(x, bool(sample[i]), w=float(w[i]))


@dataclass
class TransformedOutcome(_Single):
    def _pipeline(self, opt: Any) -> Any:
        return compose.Pipeline(
            preprocessing.StandardScaler(),
            compose.FuncTransformer(clip_standardised),
            linear_model.LinearRegression(optimizer=opt),
        )

    def _blind(self, x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=np.float64)
        x[:, self.names.index("treated")] = 0.0
        return x

    def uplift(self, x: np.ndarray) -> np.ndarray:
        scaler, linear = self._model["StandardScaler"], self._model["LinearRegression"]
        mean = np.array([scaler.means.get(n, 0.0) for n in self.names])
        std = np.sqrt([scaler.vars.get(n, 0.0) for n in self.names])
        z = np.clip(
            (self._blind(x) - mean) * np.where(std > 0, 1 / np.where(std > 0, std, 1), 0), -CLIP, CLIP
        )
        weights = np.array([linear.weights.get(n, 0.0) for n in self.names])
        return np.asarray(z @ weights + linear.intercept)

    def _learn(self, p: Pending, labels: np.ndarray) -> None:
        e = np.clip(p.propensity, self.clip, 1 - self.clip)
        target = labels * (p.treated - e) / (e * (1 - e))
        rows, blind = p.batch.sample, self._blind(p.batch.features)
        for i in shuffled(p.batch, self.passes):
            self._model.learn_one(
                dict(zip(self.names, blind[i].tolist(), strict=True)), float(target[rows[i]])
            )

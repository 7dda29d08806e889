"""The two-model candidates of ``bench/uplift_candidates.py`` (the live model's verbs, online).

- :class:`TwoModel`: the live two-model with ``passes`` shuffled passes per due batch, another
  River ``optimizer`` and the treatment arm's steps scaled to the arms' volumes (``volume``);
- :class:`Offset`: the treatment arm is the control arm's logit plus a learned linear difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from river import compose, linear_model, optim, preprocessing
from scipy.special import expit

from state.campaigns.uplift import ArmModel, UpliftModel
from state.models.online_logistic import CLIP, PendingBatch, clip_standardised
from state.models.prequential import Prequential


def river_optimizer(name: str, rate: float) -> Any:
    return {"sgd": optim.SGD, "adam": optim.Adam, "adagrad": optim.AdaGrad}[name](rate)


def shuffled(batch: PendingBatch, passes: int) -> list[int]:
    """The batch's sample positions, ``passes`` times, each pass in its own seeded order."""
    order: list[int] = []
    for k in range(passes):
        order += np.random.default_rng(batch.made_at_ms + k).permutation(batch.sample.size).tolist()
    return order


@dataclass
class Arm(ArmModel):
    """An arm model with a chosen River optimizer and several passes per batch."""

    optimizer: str = "sgd"
    passes: int = 1

    def __post_init__(self) -> None:
        if self._model is None:
            self._model = compose.Pipeline(
                preprocessing.StandardScaler(),
                compose.FuncTransformer(clip_standardised),
                linear_model.LogisticRegression(
                    optimizer=river_optimizer(self.optimizer, self.learning_rate)
                ),
            )
        super().__post_init__()

    def learn_weighted(self, batch: PendingBatch, labels: np.ndarray, weights: np.ndarray) -> None:
        self._overall.update_many(labels, batch.scores)
        sample, w = labels[batch.sample], weights[batch.sample]
        for i in shuffled(batch, self.passes):
            x = dict(zip(self.names, batch.features[i].tolist(), strict=True))
            self._model.learn_one(x, bool(sample[i]), w=float(w[i]))
        self.version += 1


@dataclass
class TwoModel(UpliftModel):
    """The live model with ``passes``, ``optimizer`` and ``volume`` (module docstring)."""

    passes: int = 1
    optimizer: str = "sgd"
    volume: bool = False
    arm_rate: float | None = None  # the arms' (or the difference's) rate; None: ``learning_rate``

    def __post_init__(self) -> None:
        super().__post_init__()  # the propensity model keeps ``learning_rate``
        self.arm_rate = self.learning_rate if self.arm_rate is None else self.arm_rate
        for arm in ("treatment", "control"):
            setattr(self, arm, self._arm())

    def _arm(self) -> Any:
        return Arm(
            names=self.names,
            segments=self.segments,
            learning_rate=float(self.arm_rate or self.learning_rate),
            optimizer=self.optimizer,
            passes=self.passes,
        )

    def factor(self) -> float:
        """Control exposures labelled so far over treated ones (1 before both)."""
        t, c = self.treatment.examples, self.control.examples
        return c / t if self.volume and t and c else 1.0

    def resolve(self, pending: Any, responded: np.ndarray) -> None:
        responded = np.asarray(responded, dtype=np.bool_)
        factor = self.factor()
        for model, (batch, weights), scale in zip(
            (self.treatment, self.control), pending.arms, (factor, 1.0), strict=True
        ):
            if batch.rows.size:
                model.learn_weighted(batch, responded[batch.rows], weights * scale)


@dataclass
class DeltaArm:
    """Treatment arm = the control arm's logit + ``z . v + b`` (``z``: the control arm's
    standardisation), learned by SGD (``rate`` x the volume ratio) or AdaGrad (``rate``)."""

    control: Any
    names: tuple[str, ...]
    rate: float
    passes: int
    adagrad: bool
    v: np.ndarray = field(init=False)
    b: float = 0.0
    g2: np.ndarray = field(init=False)
    version: int = 0
    _overall: Prequential = field(default_factory=Prequential)

    def __post_init__(self) -> None:
        self.v = np.zeros(len(self.names))
        self.g2 = np.zeros(len(self.names) + 1)

    @property
    def examples(self) -> int:
        return self._overall.examples

    def _z(self, x: np.ndarray) -> np.ndarray:
        s = self.control.scorer()
        mean, std = np.asarray(s["means"]), np.asarray(s["stds"])
        return np.asarray(
            np.clip((x - mean) * np.where(std > 0, 1 / np.where(std > 0, std, 1), 0), -CLIP, CLIP)
        )

    def _base_logit(self, x: np.ndarray) -> np.ndarray:
        p = np.clip(self.control.scores(x), 1e-9, 1 - 1e-9)
        return np.asarray(np.log(p / (1 - p)))

    def scores(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(expit(self._base_logit(x) + self._z(x) @ self.v + self.b))

    def learn_weighted(
        self, batch: PendingBatch, labels: np.ndarray, weights: np.ndarray, step: float
    ) -> None:
        self._overall.update_many(labels, batch.scores)
        sample, w = labels[batch.sample], weights[batch.sample]
        z, base = self._z(batch.features), self._base_logit(batch.features)
        for i in shuffled(batch, self.passes):
            g = (expit(base[i] + z[i] @ self.v + self.b) - float(sample[i])) * w[i]
            grad = np.append(g * z[i], g)
            if self.adagrad:
                self.g2 += grad**2
                grad = self.rate * grad / np.sqrt(self.g2 + 1e-8)
            else:
                grad = self.rate * step * grad
            self.v -= grad[:-1]
            self.b -= float(grad[-1])
        self.version += 1

    def _report(self) -> dict[str, Any]:
        return {"auc": self._overall.value(), "examples": self.examples, "version": self.version}

    def scorer(self) -> dict[str, Any]:
        return {"difference_weights": self.v.tolist(), "difference_intercept": self.b}


@dataclass
class Offset(TwoModel):
    """Control arm as the live model; treatment arm a :class:`DeltaArm` on top of it."""

    adagrad: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.control = Arm(names=self.names, segments=self.segments, learning_rate=self.learning_rate)
        rate = float(self.arm_rate or self.learning_rate)
        self.treatment = DeltaArm(self.control, self.names, rate, self.passes, self.adagrad)  # type: ignore[assignment]

    def factor(self) -> float:
        t, c = self.treatment.examples, self.control.examples
        return c / t if t and c else 1.0

    def resolve(self, pending: Any, responded: np.ndarray) -> None:
        responded = np.asarray(responded, dtype=np.bool_)
        (tb, tw), (cb, cw) = pending.arms
        if tb.rows.size:  # the difference first, on the control arm as it stood
            self.treatment.learn_weighted(tb, responded[tb.rows], tw, self.factor())  # type: ignore[call-arg]
        if cb.rows.size:
            self.control.learn_weighted(cb, responded[cb.rows], cw)

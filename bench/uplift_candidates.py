"""Candidate ways for the online uplift model's arms to learn (``bench/uplift_selection.py --arms``).

Each candidate has the verbs of :class:`state.uplift.UpliftModel` that
``bench.eval_uplift.online_uplift`` uses (``score``, ``take_due``, ``resolve``, ``report``) and
stays online: an exposure is scored at the exposure and learned once its label is final (test,
then train), from the pending batch (at most ``learn_per_batch`` rows), never from stored history.

- :class:`TwoModel`: the live two-model with ``passes`` shuffled passes per due batch, another
  River ``optimizer`` and the treatment arm's steps scaled to the arms' volumes (``volume``);
- :class:`Offset`: the treatment arm is the control arm's logit plus a learned linear difference;
- :class:`Interaction`: one logistic regression with every feature and every feature times
  ``treated`` (the base learns from both arms);
- :class:`TransformedOutcome`: an online linear regression of ``y (t - e) / (e (1 - e))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from river import compose, linear_model, optim, preprocessing
from scipy.special import expit

from state.churn import CLIP, PendingBatch, Prequential, clip_standardised
from state.uplift import ArmModel, UpliftModel, stabilised_weights


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
        from state.uplift import PropensityModel

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


CANDIDATES: dict[str, Any] = {
    "current": lambda **k: UpliftModel(**k, passes=1, volume=False),  # the live model before this round
    "a: treatment rate x volume": lambda **k: TwoModel(**k, volume=True),
    "b: 5 passes": lambda **k: TwoModel(**k, passes=5),
    "b: 20 passes": lambda **k: TwoModel(**k, passes=20),
    "a + b: 5 passes": lambda **k: TwoModel(**k, passes=5, volume=True),
    "c: Adam 0.01": lambda **k: TwoModel(**k, arm_rate=0.01, optimizer="adam"),
    "c: AdaGrad 0.1": lambda **k: TwoModel(**k, arm_rate=0.1, optimizer="adagrad"),
    "d: offset, SGD x volume, 5 passes": lambda **k: Offset(**k, passes=5),
    "d: offset, AdaGrad 0.1": lambda **k: Offset(**k, arm_rate=0.1, adagrad=True),
    "e: transformed outcome, 5 passes": lambda **k: TransformedOutcome(**k, passes=5),
    "f: interaction, 5 passes": lambda **k: Interaction(**k, passes=5),
    "f: interaction, AdaGrad 0.1": lambda **k: Interaction(**k, arm_rate=0.1, optimizer="adagrad"),
}

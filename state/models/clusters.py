"""Online customer clusters: River k-means for several k side by side, a streaming elbow, stable ids.

:class:`SegmentModel` owns the verbs (``learn``, ``assign``, ``snapshot``/``restore``); River is
an implementation detail. What happens, in arrival order:

1. **Scaling.** Features go through an :class:`~state.segments.features.OnlineScaler` (Welford).
2. **Warm-up.** The first ``warmup`` points are buffered, then every candidate k is seeded with
   the best (lowest inertia) of ``n_init`` k-means++ + Lloyd runs on that buffer, as sklearn's
   ``MiniBatchKMeans`` seeds from its ``init_size`` sample.
3. **Learning.** Each later point updates one ``river.cluster.KMeans`` per k in ``k_min..k_max``
   (its ``halflife`` is the step towards the point: a memory of ~1/halflife points per cluster;
   River's step taken for every k at once on an array of the centres, bit for bit the same,
   :meth:`SegmentModel._step`),
   and each k keeps an exponentially weighted mean of the squared distance from the point to its
   closest centre before the step: the online *inertia* (memory ``inertia_halflife`` points).
4. **Streaming elbow.** The inertia of k = 1 (the total variance) is tracked the same way, and
   :func:`~state.models.cluster_rules.choose_k` takes the smallest k whose next cluster removes a share
   of the inertia, ``(I[k] - I[k+1]) / I[k]``, below ``elbow_ratio`` (default 1/3) times the best
   share removed by an earlier step (where the marginal reduction flattens), or below
   ``min_gain`` (5%). A new k is adopted only after it won ``k_patience`` publications in a row.
   With very few features, splitting mere noise gains more (about ``1 - (k / (k + 1)) ** (2 / d)``
   in d dimensions), so raise ``elbow_ratio`` there.
5. **Publication.** Every ``publish_every`` points the chosen model's centres are matched to the
   published ones (Hungarian, :func:`~state.models.cluster_rules.match_ids`): matched clusters keep their
   id, new ones get ids never used before. ``assign`` reads only the published centres and the
   scaler frozen with them, so ids are stable between publications; ``version`` counts them.

>>> import random
>>> rng = random.Random(7)
>>> blobs = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)]
>>> points = [{"a": cx + rng.gauss(0, 1), "b": cy + rng.gauss(0, 1)} for cx, cy in blobs * 200]
>>> model = SegmentModel(ClusterConfig(feature_names=("a", "b"), k_max=5, warmup=300))
>>> model.learn_many(points)
>>> model.k, model.assign({"a": 0.0, "b": 0.0}) != model.assign({"a": 10.0, "b": 0.0})
(3, True)
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from river import cluster

from state.customer import snapshots
from state.models.cluster_rules import (
    DwellDecision,
    DwellGate,
    choose_k,
    match_ids,
    name_clusters,
    seed_centers,
)
from state.segments.features import FEATURE_NAMES, OnlineScaler

__all__ = [
    "SNAPSHOT_VERSION",
    "ClusterConfig",
    "DwellDecision",
    "DwellGate",
    "ModelNotReadyError",
    "SegmentModel",
    "choose_k",
    "match_ids",
]

SNAPSHOT_FORMAT = "segstream.SegmentModel"
SNAPSHOT_VERSION = 1
Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Grid = tuple[Array, IntArray, IntArray]  # every k's centres stacked, each k's first row, each k's rows


class ModelNotReadyError(RuntimeError):
    """``assign`` was called before the warm-up ended."""


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """The knobs of :class:`SegmentModel` (see the module docstring for what each one does)."""

    feature_names: tuple[str, ...] = FEATURE_NAMES
    k_min: int = 2
    k_max: int = 8
    seed: int = 42
    warmup: int = 2000
    n_init: int = 10
    halflife: float = 0.005
    inertia_halflife: int = 2000
    elbow_ratio: float = 1 / 3
    min_gain: float = 0.05
    publish_every: int = 1000
    k_patience: int = 3

    def __post_init__(self) -> None:
        if not 2 <= self.k_min < self.k_max:
            raise ValueError(
                f"need 2 <= k_min < k_max (k = 1 is always tracked), got k_min={self.k_min}, k_max={self.k_max}"
            )
        if not 0 < self.halflife < 1:
            raise ValueError(f"halflife must be in (0, 1), got {self.halflife}")
        if self.warmup < self.k_max:
            raise ValueError(f"warmup ({self.warmup}) must be at least k_max ({self.k_max})")
        if min(self.n_init, self.inertia_halflife, self.publish_every, self.k_patience) < 1:
            raise ValueError("n_init, inertia_halflife, publish_every and k_patience must be >= 1")


class _Publication(NamedTuple):
    version: int
    ids: tuple[int, ...]  # ascending
    centers: Array  # rows in ``ids`` order, in the scaled space of ``mean`` / ``std``
    mean: Array
    std: Array
    names: dict[int, str]


class SegmentModel:
    """Online k-means segments with a streaming elbow over ``k_min..k_max`` (module docstring)."""

    def __init__(self, config: ClusterConfig | None = None) -> None:
        self.config = config or ClusterConfig()
        self._names = self.config.feature_names
        self._scaler = OnlineScaler(self._names)
        self._buffer: list[tuple[float, ...]] = []  # the warm-up points, raw
        self._models: dict[int, Any] = {}  # k -> river.cluster.KMeans
        self._inertia: dict[int, float] = {}
        self._learned = 0
        self._published_at = 0
        self._pending = (0, 0)  # (k the elbow proposes, publications in a row)
        self._next_id = 0
        self._pub: _Publication | None = None

    # ------------------------------------------------------------------ verbs

    def learn(self, x: Mapping[str, float]) -> None:
        """Learn from one customer's features (every name in ``feature_names`` is required)."""
        cfg = self.config
        self._scaler.learn(x)
        self._learned += 1
        if not self._models:
            self._buffer.append(tuple(float(x[n]) for n in self._names))
            if len(self._buffer) >= cfg.warmup:
                self._warm_start()
            return
        z = self._scaler.transform(x)
        h, decay = cfg.halflife, 1 - 0.5 ** (1 / cfg.inertia_halflife)
        point = [z[n] for n in self._names]
        for k, center in zip(self._models, self._step(point), strict=True):  # every candidate k, side by side
            # the centre moved by h towards z, so the distance before the step is the one after / (1 - h)
            d2 = sum((a - b) ** 2 for a, b in zip(point, center, strict=True)) / (1 - h) ** 2
            self._inertia[k] += decay * (d2 - self._inertia[k])
        self._inertia[1] += decay * (sum(v * v for v in z.values()) - self._inertia[1])
        if self._learned % cfg.publish_every == 0:
            self.publish()

    def learn_many(self, xs: Iterable[Mapping[str, float]]) -> None:
        """``learn`` each point in order (exactly the same result as the loop)."""
        for x in xs:
            self.learn(x)

    def assign(self, x: Mapping[str, float]) -> int:
        """The stable id of the published cluster closest to ``x``."""
        return self.assign_many([x])[0]

    def assign_many(self, xs: Sequence[Mapping[str, float]]) -> list[int]:
        """``assign`` for many points at once (vectorised)."""
        pub = self._published()
        z = self.scale_many(xs)
        nearest = ((z[:, None, :] - pub.centers[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        return [pub.ids[i] for i in nearest.tolist()]

    def assign_rows(self, rows: Array, columns: Sequence[str] = FEATURE_NAMES) -> npt.NDArray[np.int64]:
        """``assign`` for the rows of a feature matrix whose columns are named ``columns``."""
        pub = self._published()
        z = (rows[:, [columns.index(n) for n in self._names]] - pub.mean) / pub.std
        nearest = ((z[:, None, :] - pub.centers[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        ids: npt.NDArray[np.int64] = np.asarray(pub.ids, dtype=np.int64)[nearest]
        return ids

    def scale_rows(self, rows: Array, columns: Sequence[str] = FEATURE_NAMES) -> Array:
        """The rows of a feature matrix (columns named ``columns``) in the published scaled space."""
        pub = self._published()
        scaled: Array = (rows[:, [columns.index(n) for n in self._names]] - pub.mean) / pub.std
        return scaled

    def scale_many(self, xs: Sequence[Mapping[str, float]]) -> Array:
        """``xs`` as rows in the published scaled space, where ``assign`` measures distances."""
        pub = self._published()
        raw = np.array([[x[n] for n in self._names] for x in xs], dtype=np.float64)
        return (raw.reshape(-1, len(self._names)) - pub.mean) / pub.std

    def publish(self) -> None:
        """Choose k and republish the centres now (``learn`` does it every ``publish_every`` points)."""
        if not self._models or (self._pub is not None and self._learned == self._published_at):
            return
        self._published_at = self._learned
        proposed = choose_k(self._inertia, self.config.elbow_ratio, self.config.min_gain)
        k = proposed if self._pub is None else len(self._pub.ids)
        streak = self._pending[1] + 1 if self._pending[0] == proposed else 1
        self._pending = (0, 0) if proposed == k else (proposed, streak)
        if proposed != k and streak >= self.config.k_patience:
            k, self._pending = proposed, (0, 0)
        centers = self._centers(k)
        mean, std = self._scaling()
        old, previous = self._pub, {}
        if old is not None:  # the published centres, re-expressed in today's scaled space
            previous = dict(zip(old.ids, (old.centers * old.std + old.mean - mean) / std, strict=True))
        ids, self._next_id = match_ids(previous, centers, self._next_id)
        order = np.argsort(ids)
        centers = centers[order]
        sorted_ids = tuple(ids[i] for i in order.tolist())
        names = name_clusters(self._by_id(sorted_ids, centers), self._by_id(sorted_ids, centers * std + mean))
        self._pub = _Publication(1 if old is None else old.version + 1, sorted_ids, centers, mean, std, names)

    def published_view(self) -> SegmentModel:
        """A model that assigns, scales and names exactly like this one's published version and has
        learned nothing: what an evaluator that only re-scores needs of a model learned elsewhere
        (``state.evaluator.partition_evaluator``). The publication is shared, never changed in place."""
        view = SegmentModel(self.config)
        view._pub = self._pub
        return view

    # ------------------------------------------------------------------ what is published

    @property
    def is_ready(self) -> bool:
        """True once the warm-up is over and the first centres are published."""
        return self._pub is not None

    @property
    def learned(self) -> int:
        """How many points the model has learned from."""
        return self._learned

    @property
    def version(self) -> int:
        """How many times the published centres changed (0 before the first publication)."""
        return 0 if self._pub is None else self._pub.version

    @property
    def k(self) -> int:
        """The number of published clusters (0 before the first publication)."""
        return 0 if self._pub is None else len(self._pub.ids)

    def cluster_names(self) -> dict[int, str]:
        """Readable, unique name of each published cluster id."""
        return {} if self._pub is None else dict(self._pub.names)

    def centroids(self) -> dict[int, dict[str, float]]:
        """Published centres in original (unscaled) feature units, by cluster id."""
        if self._pub is None:
            return {}
        return self._by_id(self._pub.ids, self._pub.centers * self._pub.std + self._pub.mean)

    def inertia(self) -> dict[int, float]:
        """The online inertia of k = 1 and of every candidate k, in scaled units (empty in the warm-up)."""
        return dict(self._inertia)

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> bytes:
        """Everything needed to go on learning and assigning elsewhere: a versioned pickle."""
        header = {
            "format": SNAPSHOT_FORMAT,
            "snapshot_version": SNAPSHOT_VERSION,
            "model_version": self.version,
        }
        return pickle.dumps({**header, "state": self.__getstate__()}, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, data: bytes) -> SegmentModel:
        """The model saved by :meth:`snapshot` (pickle: only load snapshots segstream wrote)."""
        payload = snapshots.load(data)
        if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
            raise ValueError("not a SegmentModel snapshot: expected the bytes of SegmentModel.snapshot()")
        if payload["snapshot_version"] != SNAPSHOT_VERSION:
            raise ValueError(
                f"SegmentModel snapshot version {payload['snapshot_version']} is not supported "
                f"(this code reads version {SNAPSHOT_VERSION}): retrain the model or convert the snapshot"
            )
        model = cls.__new__(cls)
        model.__dict__.update(payload["state"])
        return model

    # ------------------------------------------------------------------ internals

    def _published(self) -> _Publication:
        if self._pub is None:
            raise ModelNotReadyError(
                f"SegmentModel has learned {self._learned} of its warmup={self.config.warmup} points: "
                "keep calling learn() and check is_ready before assign()"
            )
        return self._pub

    def _by_id(self, ids: Sequence[int], rows: Array) -> dict[int, dict[str, float]]:
        return {
            i: dict(zip(self._names, row.tolist(), strict=True)) for i, row in zip(ids, rows, strict=True)
        }

    def _scaling(self) -> tuple[Array, Array]:
        mean, std = self._scaler.mean(), self._scaler.std()
        return np.array([mean[n] for n in self._names]), np.array([std[n] for n in self._names])

    def _centers(self, k: int) -> Array:
        km = self._models[k]
        return np.array([[km.centers[i][n] for n in self._names] for i in range(k)], dtype=np.float64)

    def _step(self, point: list[float]) -> list[list[float]]:
        """River's k-means step (``KMeans.learn_predict_one``) for every candidate k at once: each
        k's closest centre to ``point`` (scaled, in ``feature_names`` order; the first of equals)
        moves by ``halflife`` towards it. Returns each k's moved centre, in ``_models`` order.

        The centres live in River's models (what a snapshot holds) and, for the arithmetic, in one
        array of every k's centres (:meth:`_grid`), written alike: the same subtraction, product
        and sum per coordinate as River's, so the centres are River's bit for bit. Only the
        distances that pick the closest centre are summed in another order (River sums a set of
        feature names, whose order is the process's string hashing), which can matter only where
        two centres are within rounding of the same distance.
        """
        grid, starts, choices = self._grid()
        z = np.asarray(point, dtype=np.float64)
        distances = np.append(((grid - z) ** 2).sum(axis=1), np.inf)
        rows = starts + distances[choices].argmin(axis=1)
        old = grid[rows]
        moved = old + self.config.halflife * (z - old)
        grid[rows] = moved
        centers: list[list[float]] = moved.tolist()
        for km, row, center in zip(self._models.values(), (rows - starts).tolist(), centers, strict=True):
            km.centers[row].update(zip(self._names, center, strict=True))
        return centers

    def _grid(self) -> Grid:
        """Every candidate k's centres stacked (k = k_min first), the first row of each k, and per k
        the rows it chooses among (padded with the index of an infinite distance); built from
        River's models the first time (after a warm start or a restore), kept in step after."""
        cached: Grid | None = self.__dict__.get("_arrays")
        if cached is None:
            ks = list(self._models)
            grid = np.vstack([self._centers(k) for k in ks])
            starts = np.cumsum([0, *ks[:-1]]).astype(np.int64)
            choices = np.full((len(ks), max(ks)), len(grid), dtype=np.int64)
            for i, (k, start) in enumerate(zip(ks, starts.tolist(), strict=True)):
                choices[i, :k] = np.arange(start, start + k)
            cached = self.__dict__["_arrays"] = (grid, starts, choices)
        return cached

    def __getstate__(self) -> dict[str, Any]:
        """What pickles (and :meth:`snapshot` saves): everything but the centres' array, rebuilt from River's."""
        return {name: value for name, value in self.__dict__.items() if name != "_arrays"}

    def _warm_start(self) -> None:
        cfg = self.config
        mean, std = self._scaling()
        z = (np.array(self._buffer) - mean) / std
        self._inertia[1] = float((z**2).sum(axis=1).mean())
        for k in range(cfg.k_min, cfg.k_max + 1):
            centers, self._inertia[k] = seed_centers(z, k, cfg.n_init, np.random.default_rng([cfg.seed, k]))
            self._models[k] = cluster.KMeans(n_clusters=k, halflife=cfg.halflife, seed=cfg.seed + k)
            for i, row in enumerate(centers.tolist()):
                self._models[k].centers[i].update(zip(self._names, row, strict=True))
        self._buffer = []
        self.__dict__.pop("_arrays", None)
        self.publish()

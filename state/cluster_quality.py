"""How good a published cluster model version is: geometry on a sample, business separation on everyone.

Computed once per cluster model version, when the evaluator publishes it (``state.evaluator.evaluate``),
from the buyers at that instant, each assigned by the new version (its own nearest centre, before
any dwell time holds them back), and kept with the version:

- **Geometry**, on a seeded reservoir sample (``state.models.reservoir``, ``sample_size`` buyers,
  ``SEGSTREAM_CLUSTER_QUALITY_SAMPLE``) of the feature vectors the clusters use, in the version's
  own scaled space (where it measures distances):

  - *silhouette*, exact on the sample: per point ``(b - a) / max(a, b)``, ``a`` its mean distance
    to the rest of its cluster, ``b`` the smallest mean distance to another cluster (0 for a
    cluster of one), averaged; from -1 to 1, higher is better separated;
  - *Davies-Bouldin index*: the mean over clusters of the largest ``(s_i + s_j) / d(c_i, c_j)``,
    ``s`` the mean distance of a cluster's points to its centroid, ``c`` the sample centroids;
    0 is best;
  - *dispersion* per cluster: the mean squared distance of its points to their centroid, and the
    *within share* of the whole sample: within-cluster over total sum of squares.

  Both indices are those of scikit-learn (``silhouette_score``, ``davies_bouldin_score``; tested
  equal to 1e-9), undefined (None) unless the sample holds 2 to ``sample - 1`` clusters.
- **Business separation**, per cluster over all buyers: *value share* (their positive net spend
  over everyone's), *churn share* (the share of its members with a churn band who are in band
  High; None before the churn model has banded anyone) and *response rate* (responses over
  treated exposures of its members so far, the ``campaign-events`` the evaluator applied; None
  without any), and for each of the three the *spread*, largest minus smallest over clusters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import cdist

from state.models.alerts import HIGH, NO_BAND
from state.campaigns.campaign_book import Exposure
from state.models.clusters import SegmentModel
from state.segments.features import FEATURE_NAMES
from state.segments.population import Population, feature_matrix
from state.models.reservoir import reservoir_sample
from streams.campaign_contract import CONTROL

__all__ = [
    "QualityConfig",
    "assess_version",
    "davies_bouldin",
    "dispersion",
    "keep_latest",
    "silhouette",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_CHUNK_CELLS = 1 << 22  # distances held at once by the silhouette (32 MiB of float64)


@dataclass(frozen=True)
class QualityConfig:
    sample_size: int = 2000  # SEGSTREAM_CLUSTER_QUALITY_SAMPLE
    seed: int = 42
    versions_kept: int = 12  # the latest versions' figures kept in the summary


def _defined(labels: IntArray) -> bool:
    """scikit-learn's rule: the indices need 2 <= clusters <= points - 1."""
    return 2 <= np.unique(labels).size <= labels.size - 1


def silhouette(z: FloatArray, labels: IntArray) -> float | None:
    """Mean silhouette of the points ``z`` (rows) labelled ``labels``, exact; None where undefined."""
    if not _defined(labels):
        return None
    ids, index = np.unique(labels, return_inverse=True)
    onehot = np.zeros((labels.size, ids.size))
    onehot[np.arange(labels.size), index] = 1.0
    sizes = onehot.sum(axis=0)
    scores = np.zeros(labels.size)
    step = max(1, _CHUNK_CELLS // labels.size)
    for start in range(0, labels.size, step):
        rows = slice(start, min(start + step, labels.size))
        distances = cdist(z[rows], z)  # exact: the root of the summed squared differences
        sums = distances @ onehot  # each point's summed distance to every cluster
        own = index[rows]
        mine = sizes[own]
        a = sums[np.arange(own.size), own] / np.maximum(mine - 1, 1)
        others = sums / sizes
        others[np.arange(own.size), own] = np.inf
        b = others.min(axis=1)
        s = (b - a) / np.maximum(a, b)
        scores[rows] = np.where(mine > 1, np.nan_to_num(s), 0.0)
    return float(scores.mean())


def _centroids(z: FloatArray, labels: IntArray) -> tuple[IntArray, FloatArray, IntArray]:
    ids, index = np.unique(labels, return_inverse=True)
    sums = np.zeros((ids.size, z.shape[1]))
    np.add.at(sums, index, z)
    return ids, sums / np.bincount(index)[:, None], index


def davies_bouldin(z: FloatArray, labels: IntArray) -> float | None:
    """Davies-Bouldin index of ``z`` labelled ``labels`` (scikit-learn's definition); None where undefined."""
    if not _defined(labels):
        return None
    _, centroids, index = _centroids(z, labels)
    spread = np.sqrt(((z - centroids[index]) ** 2).sum(axis=1))
    intra = np.bincount(index, weights=spread) / np.bincount(index)
    between = np.sqrt(((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2))
    if np.allclose(intra, 0) or np.allclose(between, 0):
        return 0.0
    between[between == 0] = np.inf
    return float(np.mean(np.max((intra[:, None] + intra[None, :]) / between, axis=1)))


def dispersion(z: FloatArray, labels: IntArray) -> tuple[dict[int, float], float | None]:
    """Per cluster the mean squared distance to its centroid; and within over total sum of squares."""
    ids, centroids, index = _centroids(z, labels)
    squared = ((z - centroids[index]) ** 2).sum(axis=1)
    per = np.bincount(index, weights=squared) / np.bincount(index)
    total = float(((z - z.mean(axis=0)) ** 2).sum())
    within = float(squared.sum())
    return {int(i): float(v) for i, v in zip(ids, per, strict=True)}, (within / total if total > 0 else None)


def _spread(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) - min(known) if len(known) >= 2 else None


def assess_version(
    at_ms: int,
    population: Population,
    model: SegmentModel,
    exposures: Sequence[Exposure],
    config: QualityConfig,
) -> dict[str, Any]:
    """The figures of ``model``'s published version at ``at_ms`` (module docstring), JSON-ready."""
    buyers = population.buyers()
    raw = feature_matrix(population, buyers, at_ms)
    labels = model.assign_rows(raw)
    sample = reservoir_sample(buyers.size, config.sample_size, config.seed)
    z = model.scale_rows(raw[sample], FEATURE_NAMES)
    per_dispersion, within = dispersion(z, labels[sample]) if sample.size else ({}, None)
    money = np.maximum(population.column("monetary_cents")[buyers], 0)
    band = population.column("band")[buyers]
    position = {int(row): i for i, row in enumerate(buyers.tolist())}
    treated = [
        (position[r], e.responded)
        for e in exposures
        if e.variant != CONTROL and (r := population.index.get(e.customer_id, -1)) in position
    ]
    exposed = np.asarray([p for p, _ in treated], dtype=np.int64)
    responded = np.asarray([y for _, y in treated], dtype=np.bool_)
    names = model.cluster_names()
    total_value = max(int(money.sum()), 1)
    clusters: list[dict[str, Any]] = []
    for cid in sorted(names):
        members = labels == cid
        banded = members & (band != NO_BAND)
        mine = labels[exposed] == cid if exposed.size else np.zeros(0, dtype=np.bool_)
        clusters.append(
            {
                "cluster": cid,
                "name": names[cid],
                "customers": int(members.sum()),
                "sampled": int((labels[sample] == cid).sum()),
                "dispersion": per_dispersion.get(cid),
                "value_share": int(money[members].sum()) / total_value,
                "churn_share": float((band[banded] == HIGH).mean()) if banded.any() else None,
                "response_rate": float(responded[mine].mean()) if mine.any() else None,
                "exposures": int(mine.sum()),
            }
        )
    return {
        "model_version": model.version,
        "at_ms": at_ms,
        "k": model.k,
        "buyers": int(buyers.size),
        "sample": int(sample.size),
        "seed": config.seed,
        "silhouette": silhouette(z, labels[sample]),
        "davies_bouldin": davies_bouldin(z, labels[sample]),
        "within_share": within,
        "spread": {
            name: _spread([c[name] for c in clusters])
            for name in ("value_share", "churn_share", "response_rate")
        },
        "clusters": clusters,
    }


def keep_latest(
    history: Sequence[Mapping[str, Any]], entry: Mapping[str, Any], keep: int
) -> list[dict[str, Any]]:
    """``history`` with ``entry`` appended, the latest ``keep`` kept (oldest first)."""
    return [dict(e) for e in [*history, entry][-keep:]]

"""The segment evaluator's settings and the preset's segment lookups.

Separate from the evaluator itself (``state.evaluator.evaluate``) so that the modules of one
instant's steps (re-scoring, predictions, campaigns) can take the settings they read without
importing the coordinator that calls them, and so the workers and commands can build a
configuration without the evaluator's machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from state.customer.rfm import DAY_MS
from state.evaluator.cluster_quality import QualityConfig
from state.models.alerts import AlertConfig
from state.models.clusters import ClusterConfig
from state.segments.drift import DriftConfig
from state.segments.segments import Preset

__all__ = ["NEVER", "EvaluatorConfig", "segment_lookups"]

NEVER = 2**62


def _evaluator_clusters() -> ClusterConfig:
    # the evaluator publishes on an event-time schedule (``publish_every_ms``), not by count
    return ClusterConfig(k_max=6, publish_every=NEVER)


@dataclass(frozen=True)
class EvaluatorConfig:
    preset: Preset
    cluster: ClusterConfig = field(default_factory=_evaluator_clusters)
    min_dwell_ms: int = 7 * DAY_MS
    step_ms: int = DAY_MS
    learn_per_step: int = 100  # customers of the population the cluster model learns from per instant
    publish_every_ms: int = 28 * DAY_MS  # the cluster model republishes at these grid instants
    churn_horizon_ms: int = 90 * DAY_MS  # no purchase for this long after a prediction = churned
    churn_every_ms: int = 28 * DAY_MS  # every buyer gets a churn prediction at these grid instants
    churn_learn_per_batch: int = 2000  # the churn model learns from this many of each batch
    refit_every_ms: int = 28 * DAY_MS  # the lifetime model is refitted at these grid instants
    response_window_ms: int = 30 * DAY_MS  # a response this long after an exposure is its label
    alerts: AlertConfig = field(default_factory=AlertConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)  # segment_drift alerts (state.segments.drift)
    quality: QualityConfig = field(
        default_factory=QualityConfig
    )  # per model version (state.evaluator.cluster_quality)


def segment_lookups(preset: Preset) -> tuple[dict[tuple[int, int, int], str], npt.NDArray[np.int64]]:
    """The preset's named segment of each of the 125 (r, f, m) triples, looked up once, and the
    same as an index into ``preset.segments`` in a ``(6, 6, 6)`` array (-1 where a score is 0:
    no profile yet), for vector lookups.

    >>> from state.segments.segments import load_preset
    >>> names, index = segment_lookups(load_preset("rfm11"))
    >>> names[5, 5, 5], int(index[5, 5, 5]), int(index[0, 0, 0])
    ('Champions', 0, -1)
    """
    segments = tuple(preset.segments)
    names = {
        (r, f, m): preset.segment_for(r, f, m).segment
        for r in range(1, 6)
        for f in range(1, 6)
        for m in range(1, 6)
    }
    index = np.full((6, 6, 6), -1, dtype=np.int64)  # (r, f, m) -> index in segments
    for (r, f, m), name in names.items():
        index[r, f, m] = segments.index(name)
    return names, index

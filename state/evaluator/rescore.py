"""One instant's profiles: the cluster model's learning and the re-scoring.

Steps 2 to 5 of an instant (see ``state.evaluator.evaluate``), the vector arithmetic of the
profiles, kept apart from the coordinator that orders the steps, from the predictions and from
the choice of whom to re-score (``state.evaluator.candidates``): what the cluster model learns at
a grid instant, which cluster each customer may move to under the dwell, and which profiles
changed and why. Each function takes what it reads; only :func:`rescore` writes, the profiles that
moved, into the population.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from state.customer.profiles import Change, Profile, Reason
from state.evaluator.config import EvaluatorConfig
from state.models.clusters import SegmentModel
from state.segments.cutpoints import CutPoints
from state.segments.features import FEATURE_NAMES
from state.segments.population import NO_CLUSTER, NO_TIME, Population, feature_matrix

__all__ = ["EMPTY", "Rescored", "clusters", "learn", "rescore"]

IntArray = npt.NDArray[np.int64]
EMPTY: IntArray = np.zeros(0, dtype=np.int64)


def learn(
    model: SegmentModel,
    population: Population,
    buyers: IntArray,
    at_ms: int,
    config: EvaluatorConfig,
) -> bool:
    """Teach ``model`` the next ``config.learn_per_step`` buyers at each grid instant, walking round the population.

    Only grid instants (UTC midnights) teach the model, so it learns per event-time day whatever
    moves the clock: a tick or a watermark every second would otherwise flood it.

    The model sees the population as it is at each instant, customers of every age, not
    only the ones buying. The walk starts at (points learned so far) mod (buyers), so it
    needs no state of its own. Returns whether a new model version was published.
    """
    before = model.version
    on_grid = at_ms % config.step_ms == 0  # per event-time day, however often the clock moves
    count = min(config.learn_per_step, buyers.size) if on_grid else 0
    if count:
        start = model.learned % buyers.size
        picked = np.take(buyers, np.arange(start, start + count), mode="wrap")
        for row in feature_matrix(population, picked, at_ms).tolist():
            model.learn(dict(zip(FEATURE_NAMES, row, strict=True)))
    if model.is_ready and at_ms % config.publish_every_ms == 0:
        model.publish()
    return model.version != before


def clusters(
    model: SegmentModel,
    population: Population,
    rows: IntArray,
    evaluate: npt.NDArray[np.bool_],
    at_ms: int,
    min_dwell_ms: int,
) -> tuple[IntArray, IntArray]:
    """Cluster and since-when of ``rows`` at ``at_ms`` (only ``evaluate`` rows may move), held by the dwell."""
    current, since = population.column("cluster")[rows].copy(), population.column("since_ms")[rows].copy()
    if not model.is_ready or not evaluate.any():
        return current, since
    at = np.flatnonzero(evaluate)
    proposed = model.assign_rows(feature_matrix(population, rows[at], at_ms))
    retired = ~np.isin(current[at], np.asarray(sorted(model.cluster_names()), dtype=np.int64))
    dwelt = (since[at] == NO_TIME) | (at_ms - since[at] >= min_dwell_ms)
    switch = (proposed != current[at]) & (retired | dwelt)
    current[at] = np.where(switch, proposed, current[at])
    since[at] = np.where(switch, at_ms, since[at])
    return current, since


class Rescored(NamedTuple):
    """What :func:`rescore` did: the changes, the rows it wrote, and the cluster names profiles now carry."""

    changes: list[Change]
    written: list[int]
    names: dict[int, str]


def rescore(
    population: Population,
    cutpoints: CutPoints,
    model: SegmentModel,
    segment_of: Mapping[tuple[int, int, int], str],
    published_names: dict[int, str],
    at_ms: int,
    rows: IntArray,
    bought: IntArray,
    decayed_rows: IntArray,
    *,
    model_moved: bool,
    min_dwell_ms: int,
) -> Rescored:
    """Score ``rows`` at ``at_ms``, move their clusters, and write and report every profile that changed.

    ``bought`` and ``decayed_rows`` (rows that purchased, rows whose R fell) give the reasons.

    ``published_names`` are the cluster names current profiles were published with; a new model
    version (``model_moved``) that renames a cluster changes its members' profiles too.
    """
    pop, cp = population, cutpoints
    if rows.size == 0:
        return Rescored([], [], published_names)
    age = at_ms - pop.column("last_ms")[rows]
    r = 1 + (age[:, None] <= np.asarray(cp.max_age_ms)[None, :]).sum(axis=1)
    f = 1 + (pop.column("frequency")[rows][:, None] >= np.asarray(cp.min_frequency)[None, :]).sum(axis=1)
    m = 1 + (pop.column("monetary_cents")[rows][:, None] >= np.asarray(cp.min_monetary_cents)).sum(axis=1)
    old_r, old_f, old_m, old_cluster = (pop.column(n)[rows] for n in ("r", "f", "m", "cluster"))
    scores_moved = (r != old_r) | (f != old_f) | (m != old_m)
    # clusters follow an RFM evaluation (purchase, decay, new scores) or a new model, not the
    # mere drift of recency with time, so a quiet day does not reshuffle clusters
    evaluate = scores_moved | model_moved | np.isin(rows, bought) | np.isin(rows, decayed_rows)
    cluster, since = clusters(model, pop, rows, evaluate, at_ms, min_dwell_ms)
    names = model.cluster_names()
    changes: list[Change] = []
    written: list[int] = []
    bought_set, decayed_set = set(bought.tolist()), set(decayed_rows.tolist())
    moved = scores_moved | (cluster != old_cluster)
    if model_moved:  # a republished model may rename a cluster its members stay in
        renamed = [cid for cid, name in names.items() if published_names.get(cid, name) != name]
        moved |= np.isin(cluster, np.asarray(renamed, dtype=np.int64))
        published_names = names
    for j in np.flatnonzero(moved).tolist():
        row = int(rows[j])
        cid = int(cluster[j])
        rfm = (int(r[j]), int(f[j]), int(m[j]))
        after = Profile(
            *rfm,
            segment_of[rfm],
            None if cid == NO_CLUSTER else cid,
            None if cid == NO_CLUSTER else names[cid],
        )
        before = pop.profiles[row]
        if after == before:
            continue
        reason: Reason
        if row in bought_set:
            reason = "purchase"
        elif row in decayed_set and before is not None and after.r_score != before.r_score:
            reason = "recency_decay"
        elif before is None or rfm != before[:3]:
            reason = "cutpoint_update"
        else:
            reason = "model_update"
        pop.set_profile(row, after, int(since[j]))
        written.append(row)
        changes.append(Change(pop.ids[row], at_ms, reason, before, after, cp.version, model.version))
    return Rescored(changes, written, published_names)

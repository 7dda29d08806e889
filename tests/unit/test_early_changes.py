"""Provisional changes: a purchase scored at once against the versions in force.

Oracle for the scores: the rank definition itself, counted against the population the cut-point
version was computed from (``1 + floor(5 * worse / N)``, worse = strictly worse values; for R the
customer's last purchase is moved into the version's frame by the time elapsed since). Oracle for
the cluster: the model's own assignment under the evaluator's dwell rule, spelled out case by case.
"""

from __future__ import annotations

import numpy as np
import pytest

from state.customer.profiles import Profile
from state.customer.rfm import DAY_MS, CustomerState
from state.evaluator.config import segment_lookups
from state.evaluator.early import Published, Versions, early_changes
from state.models.clusters import ClusterConfig, SegmentModel
from state.segments.cutpoints import compute_cutpoints
from state.segments.features import FEATURE_NAMES, features
from state.segments.population import NO_TIME
from state.segments.segments import load_preset

PRESET = load_preset("rfm11")
SEGMENT_OF, _ = segment_lookups(PRESET)
AS_OF = 1_000 * DAY_MS
RNG = np.random.default_rng(5)
LAST = AS_OF - RNG.integers(0, 400, 500) * DAY_MS
FREQ = RNG.integers(1, 9, 500)
MONEY = RNG.integers(100, 90_000, 500)
CUTPOINTS = compute_cutpoints(LAST, FREQ, MONEY, as_of_ms=AS_OF, version=7)


def rank_score(values: np.ndarray, value: int) -> int:
    return min(1 + 5 * int((values < value).sum()) // values.size, 5)


def not_ready() -> SegmentModel:
    return SegmentModel(ClusterConfig(warmup=10_000))


def versions(model: SegmentModel, dwell_ms: int = 0) -> Versions:
    return Versions(CUTPOINTS, model, SEGMENT_OF, dwell_ms)


def state(customer: str, last: int, freq: int, money: int) -> CustomerState:
    return CustomerState(customer, freq, money, 0, AS_OF - 900 * DAY_MS, last, freq)


@pytest.mark.parametrize("later_days", [0, 3, 40])
def test_scores_are_the_ranks_against_the_versions_population(later_days: int) -> None:
    at = AS_OF + later_days * DAY_MS
    due = [
        (state(f"c{i}", at - d * DAY_MS, f, m), at)
        for i, (d, f, m) in enumerate([(0, 1, 2_000), (30, 4, 40_000), (200, 8, 150)])
    ]
    changes = early_changes(due, {}, versions(not_ready()))
    assert [c.customer_id for c in changes] == ["c0", "c1", "c2"]
    for change, (s, _) in zip(changes, due, strict=True):
        assert s.last_purchase_ms is not None
        r = rank_score(LAST, s.last_purchase_ms - (at - AS_OF))  # the same age in the version's frame
        f, m = rank_score(FREQ, s.frequency), rank_score(MONEY, s.monetary_cents)
        assert change.after == Profile(r, f, m, PRESET.segment_for(r, f, m).segment, None, None)
        assert change.provisional and change.reason == "purchase" and change.before is None
        assert change.change_id == f"{s.customer_id}@{at}~provisional"
        assert (change.cutpoint_version, change.model_version) == (7, 0)


def test_no_change_when_the_profile_stays_and_none_without_a_purchase() -> None:
    s = state("c1", AS_OF, 3, 5_000)
    first = early_changes([(s, AS_OF)], {}, versions(not_ready()))
    assert len(first) == 1
    same = early_changes([(s, AS_OF)], {"c1": Published(first[0].after)}, versions(not_ready()))
    assert same == []
    refunds_only = CustomerState("c2", 0, -500, 1, None, None, 0)
    assert early_changes([(refunds_only, AS_OF)], {}, versions(not_ready())) == []


def fitted_model() -> SegmentModel:
    model = SegmentModel(ClusterConfig(warmup=200, publish_every=100))
    rng = np.random.default_rng(1)
    for center in (0.0, 6.0):
        for row in rng.normal(center, 0.3, (150, len(FEATURE_NAMES))).tolist():
            model.learn(dict(zip(FEATURE_NAMES, row, strict=True)))
    model.publish()
    assert model.is_ready
    return model


def test_the_cluster_moves_only_after_the_dwell_unless_retired() -> None:
    model = fitted_model()
    s = state("c1", AS_OF, 3, 5_000)
    proposed = model.assign(features(s, AS_OF))
    other = next(c for c in model.cluster_names() if c != proposed)
    names = model.cluster_names()
    before = Profile(5, 3, 3, "x", other, names[other])
    dwell = 10 * DAY_MS
    moved_long_ago = Published(before, AS_OF - 11 * DAY_MS)
    moved_lately = Published(before, AS_OF - 2 * DAY_MS)
    (after_long,) = early_changes([(s, AS_OF)], {"c1": moved_long_ago}, versions(model, dwell))
    assert (after_long.after.cluster, after_long.after.cluster_name) == (proposed, names[proposed])
    (after_late,) = early_changes([(s, AS_OF)], {"c1": moved_lately}, versions(model, dwell))
    assert (after_late.after.cluster, after_late.after.cluster_name) == (other, names[other])  # held
    retired = Published(Profile(5, 3, 3, "x", 999, "gone"), AS_OF - 2 * DAY_MS)
    (after_retired,) = early_changes([(s, AS_OF)], {"c1": retired}, versions(model, dwell))
    assert after_retired.after.cluster == proposed
    never_moved = Published(before, NO_TIME)
    (after_never,) = early_changes([(s, AS_OF)], {"c1": never_moved}, versions(model, dwell))
    assert after_never.after.cluster == proposed

"""Online clusters: features, scaling, the streaming elbow, stable ids, names, snapshots, dwell."""

from __future__ import annotations

import itertools
import math
import pickle
from collections import Counter

import numpy as np
import pytest

from state.customer.rfm import DAY_MS, CustomerState
from state.models.cluster_rules import name_clusters
from state.models.clusters import (
    ClusterConfig,
    DwellDecision,
    DwellGate,
    ModelNotReadyError,
    SegmentModel,
    choose_k,
    match_ids,
)
from state.segments.features import FEATURE_NAMES, OnlineScaler, features

Points = list[dict[str, float]]


def blobs(k: int, per_blob: int = 300, seed: int = 0) -> tuple[Points, list[int], np.ndarray]:
    """``k`` unit-variance Gaussian blobs in the six feature dimensions, shuffled, with true labels."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(k, len(FEATURE_NAMES)))
    labels = np.repeat(np.arange(k), per_blob)
    rows = centers[labels] + rng.normal(size=(len(labels), len(FEATURE_NAMES)))
    order = rng.permutation(len(labels))
    points = [dict(zip(FEATURE_NAMES, row, strict=True)) for row in rows[order].tolist()]
    return points, labels[order].tolist(), centers


def fitted(points: Points) -> SegmentModel:
    model = SegmentModel(ClusterConfig(warmup=300, publish_every=200))
    model.learn_many(points)
    return model


def blob_ids(model: SegmentModel, centers: np.ndarray) -> list[int]:
    """The published id of each true blob centre."""
    return model.assign_many([dict(zip(FEATURE_NAMES, c, strict=True)) for c in centers.tolist()])


@pytest.fixture(scope="module")
def three() -> tuple[Points, list[int], np.ndarray, SegmentModel]:
    points, labels, centers = blobs(3)
    return points, labels, centers, fitted(points)


@pytest.fixture(scope="module")
def five() -> tuple[Points, SegmentModel]:
    points, _, _ = blobs(5, seed=3)
    return points, fitted(points)


# --------------------------------------------------------------------------- features


def test_features_of_a_one_time_buyer() -> None:
    state = CustomerState(
        "c", frequency=1, monetary_cents=2550, first_purchase_ms=DAY_MS, last_purchase_ms=DAY_MS
    )
    assert features(state, as_of_ms=11 * DAY_MS) == {
        "log_frequency": math.log1p(1),
        "log_net_spend": math.log1p(25.5),
        "recency_days": 10.0,
        "avg_order_value": 25.5,
        "tenure_days": 10.0,
        "mean_gap_days": 0.0,
    }


def test_features_of_a_repeat_buyer_use_fractional_days_and_the_mean_gap() -> None:
    state = CustomerState(
        "c", frequency=4, monetary_cents=10_000, first_purchase_ms=0, last_purchase_ms=9 * DAY_MS
    )
    f = features(state, as_of_ms=9 * DAY_MS + DAY_MS // 2)
    assert f["recency_days"] == 0.5
    assert f["tenure_days"] == 9.5
    assert f["mean_gap_days"] == 3.0  # 9 days over 3 gaps
    assert f["avg_order_value"] == 25.0
    assert f["log_frequency"] == math.log1p(4)
    assert f["log_net_spend"] == math.log1p(100.0)
    assert list(f) == list(FEATURE_NAMES)


def test_refunds_beyond_spend_count_as_zero_net_spend() -> None:
    state = CustomerState(
        "c", frequency=2, monetary_cents=-500, refunds=3, first_purchase_ms=0, last_purchase_ms=0
    )
    f = features(state, as_of_ms=0)
    assert (f["log_net_spend"], f["avg_order_value"], f["mean_gap_days"]) == (0.0, 0.0, 0.0)


def test_an_as_of_before_the_last_purchase_gives_zero_recency_not_negative() -> None:
    state = CustomerState(
        "c", frequency=1, monetary_cents=100, first_purchase_ms=5 * DAY_MS, last_purchase_ms=5 * DAY_MS
    )
    assert features(state, as_of_ms=4 * DAY_MS)["recency_days"] == 0.0


def test_a_customer_without_purchases_has_no_features() -> None:
    with pytest.raises(ValueError, match="no purchase yet"):
        features(CustomerState("c", monetary_cents=-100, refunds=1), as_of_ms=0)


def test_online_scaler_matches_numpy_and_round_trips() -> None:
    rows = np.random.default_rng(1).normal(5, 3, size=(500, 2))
    scaler = OnlineScaler(("a", "b"))
    for a, b in rows.tolist():
        scaler.learn({"a": a, "b": b})
    assert scaler.mean() == pytest.approx(dict(zip("ab", rows.mean(axis=0), strict=True)), rel=1e-12)
    assert scaler.std() == pytest.approx(dict(zip("ab", rows.std(axis=0), strict=True)), rel=1e-12)
    x = {"a": 1.0, "b": -2.0}
    assert scaler.inverse(scaler.transform(x)) == pytest.approx(x)
    assert pickle.loads(pickle.dumps(scaler)).transform(x) == scaler.transform(x)


def test_a_constant_feature_is_only_centred() -> None:
    scaler = OnlineScaler(("a",))
    for _ in range(3):
        scaler.learn({"a": 4.0})
    assert scaler.transform({"a": 5.0}) == {"a": 1.0}


# --------------------------------------------------------------------------- the streaming elbow


def test_elbow_picks_three_on_three_blobs(three: tuple[Points, list[int], np.ndarray, SegmentModel]) -> None:
    assert three[3].k == 3


def test_elbow_picks_five_on_five_blobs(five: tuple[Points, SegmentModel]) -> None:
    assert five[1].k == 5
    assert sorted(five[1].inertia()) == list(range(1, 9))


def test_clusters_recover_the_blobs(three: tuple[Points, list[int], np.ndarray, SegmentModel]) -> None:
    points, labels, centers, model = three
    pairs = Counter(zip(labels, model.assign_many(points), strict=True))
    assert len(pairs) == 3  # every blob maps to exactly one cluster and back
    assert sorted(model.centroids()) == sorted(blob_ids(model, centers))


def test_centroids_are_in_original_units(three: tuple[Points, list[int], np.ndarray, SegmentModel]) -> None:
    _, _, centers, model = three
    for blob, cluster_id in enumerate(blob_ids(model, centers)):
        got = [model.centroids()[cluster_id][n] for n in FEATURE_NAMES]
        assert got == pytest.approx(centers[blob].tolist(), abs=0.3)


def test_choose_k_stops_where_the_gain_flattens() -> None:
    assert choose_k({1: 10.0, 2: 5.0, 3: 1.0, 4: 0.9, 5: 0.8}, elbow_ratio=1 / 3) == 3
    assert (
        choose_k({1: 10.0, 2: 9.9, 3: 9.8}, elbow_ratio=1 / 3, min_gain=0.05) == 2
    )  # nothing pays: the smallest k
    assert choose_k({1: 10.0, 2: 5.0, 3: 2.5}, elbow_ratio=1 / 3) == 3  # never flattens: the largest k


def test_k_changes_only_after_k_patience_publications() -> None:
    model = SegmentModel(ClusterConfig(feature_names=("a",), k_max=3, warmup=10, k_patience=3))
    model.learn_many({"a": float(v)} for v in [0, 0, 0, 0, 0, 10, 10, 10, 10, 10])
    assert model.k == 2
    model._inertia = {1: 10.0, 2: 5.0, 3: 2.5}  # the elbow now says 3
    for n in range(1, 4):
        model.learn({"a": 0.0})
        model.publish()
        assert model.k == (3 if n == 3 else 2)


# --------------------------------------------------------------------------- stable ids


def test_match_ids_follows_centres_not_row_order() -> None:
    old = {10: np.array([0.0, 0.0]), 11: np.array([5.0, 5.0]), 12: np.array([-5.0, 5.0])}
    moved = np.array([[-4.8, 5.1], [0.1, -0.2], [5.2, 4.9]])
    assert match_ids(old, moved, next_id=13) == ([12, 10, 11], 13)


def test_match_ids_gives_new_clusters_fresh_ids_and_never_reuses_retired_ones() -> None:
    old = {0: np.array([0.0]), 1: np.array([10.0])}
    ids, next_id = match_ids(old, np.array([[0.0], [20.0], [10.0]]), next_id=2)
    assert (ids, next_id) == ([0, 2, 1], 3)
    fewer, next_id = match_ids(
        dict(zip(ids, [np.array([0.0]), np.array([20.0]), np.array([10.0])], strict=True)),
        np.array([[19.0], [1.0]]),
        next_id,
    )
    assert (fewer, next_id) == ([2, 0], 3)
    again, _ = match_ids(
        {2: np.array([19.0]), 0: np.array([1.0])}, np.array([[0.0], [10.0], [20.0]]), next_id
    )
    assert again == [0, 3, 2]  # id 1 was retired: the cluster back at 10 gets a new id


def test_ids_survive_republications(three: tuple[Points, list[int], np.ndarray, SegmentModel]) -> None:
    points, _, centers, _ = three
    model = fitted(points)
    before, version = blob_ids(model, centers), model.version
    model.learn_many(points[::-1])  # more data, another order: many republications
    assert model.version > version
    assert blob_ids(model, centers) == before


def test_ids_survive_river_relabeling_its_centres(
    three: tuple[Points, list[int], np.ndarray, SegmentModel],
) -> None:
    points, _, centers, _ = three
    model = fitted(points)
    before = blob_ids(model, centers)
    river_kmeans = model._models[model.k]
    river_kmeans.centers = {i: river_kmeans.centers[j] for i, j in enumerate([2, 0, 1])}
    model = SegmentModel.restore(model.snapshot())  # the centres' array is rebuilt from River's, relabelled
    model.learn(points[0])
    model.publish()
    assert blob_ids(model, centers) == before


def test_snapshot_restore_keeps_ids_and_goes_on_learning_identically(
    three: tuple[Points, list[int], np.ndarray, SegmentModel],
) -> None:
    points, _, centers, _ = three
    model = fitted(points)
    copy = SegmentModel.restore(model.snapshot())
    assert (copy.version, copy.k, copy.cluster_names()) == (model.version, model.k, model.cluster_names())
    assert copy.assign_many(points) == model.assign_many(points)
    for m in (model, copy):
        m.learn_many(points[:500])
    assert copy.centroids() == model.centroids()
    assert blob_ids(copy, centers) == blob_ids(model, centers)


class RiverStep(SegmentModel):
    """The step as River's k-means takes it, one model at a time (``KMeans.learn_predict_one``)."""

    def _step(self, point: list[float]) -> list[list[float]]:
        z = dict(zip(FEATURE_NAMES, point, strict=True))
        moved = [km.centers[km.learn_predict_one(z)] for km in self._models.values()]
        return [[center[n] for n in FEATURE_NAMES] for center in moved]


def test_the_vector_step_moves_the_centres_exactly_as_river_does() -> None:
    """Every k's centres, inertia and publications equal River's own step, bit for bit, also after
    a snapshot in the middle (the array of centres is rebuilt from River's models, never saved)."""
    points, _, _ = blobs(4, per_blob=1_500, seed=5)
    config = ClusterConfig(warmup=300, publish_every=200)
    ours, river = SegmentModel(config), RiverStep(config)
    for model in (ours, river):
        model.learn_many(points[:3_000])
    ours = SegmentModel.restore(ours.snapshot())
    for model in (ours, river):
        model.learn_many(points[3_000:])
    assert ours.inertia() == river.inertia() and ours.version == river.version > 1
    assert ours.centroids() == river.centroids()
    for k in range(config.k_min, config.k_max + 1):
        assert ours._centers(k).tolist() == river._centers(k).tolist()
    assert b"_arrays" not in ours.snapshot() and b"_arrays" not in pickle.dumps(ours)


def test_restore_rejects_other_bytes_and_other_versions() -> None:
    with pytest.raises(ValueError, match="not a SegmentModel snapshot"):
        SegmentModel.restore(pickle.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="version 99 is not supported"):
        SegmentModel.restore(pickle.dumps({"format": "segstream.SegmentModel", "snapshot_version": 99}))


def test_same_order_same_seed_gives_the_same_model(
    three: tuple[Points, list[int], np.ndarray, SegmentModel],
) -> None:
    points, _, _, model = three
    again = fitted(points)
    assert again.centroids() == model.centroids()
    assert again.assign_many(points) == model.assign_many(points)
    assert again.inertia() == model.inertia()
    assert again.cluster_names() == model.cluster_names()


def test_assign_before_the_warm_up_ends_says_what_to_do() -> None:
    model = SegmentModel(ClusterConfig(warmup=300))
    model.learn(dict.fromkeys(FEATURE_NAMES, 1.0))
    assert not model.is_ready and model.version == 0 and model.cluster_names() == {}
    with pytest.raises(ModelNotReadyError, match="learned 1 of its warmup=300"):
        model.assign(dict.fromkeys(FEATURE_NAMES, 1.0))


# --------------------------------------------------------------------------- names


def test_names_are_unique_readable_and_deterministic(five: tuple[Points, SegmentModel]) -> None:
    model = five[1]
    first = model.cluster_names()
    assert SegmentModel.restore(model.snapshot()).cluster_names() == first
    model.publish()  # nothing learned since: same publication, same names
    assert model.cluster_names() == first
    assert len(set(first.values())) == len(first) == 5
    assert all(name[0].isupper() and " " in name for name in first.values())


def test_colliding_names_get_a_qualifier_then_a_number() -> None:
    alike = {"recency_days": 1.0, "log_net_spend": -1.0, "log_frequency": -1.0, "avg_order_value": 0.0}
    scaled = {
        3: {**alike, "tenure_days": -1.2, "mean_gap_days": 0.0},
        1: {**alike, "tenure_days": 1.0, "mean_gap_days": 0.0},
        2: {**alike, "tenure_days": 1.1, "mean_gap_days": 0.0},
    }
    raw = {i: {"log_frequency": 0.5} for i in scaled}
    assert name_clusters(scaled, raw) == {
        1: "Lapsed low-value one-timers (long-standing) #1",
        2: "Lapsed low-value one-timers (long-standing) #2",
        3: "Lapsed low-value one-timers (new)",
    }


def test_clusters_without_the_named_features_are_numbered() -> None:
    assert name_clusters({4: {"a": 0.0}, 2: {"a": 1.0}}, {4: {"a": 0.0}, 2: {"a": 1.0}}) == {
        2: "Cluster 2",
        4: "Cluster 4",
    }


# --------------------------------------------------------------------------- dwell


def test_a_customer_without_a_cluster_joins_at_once() -> None:
    assert DwellGate(1000).decide(None, None, proposed=4, at_ms=50) == DwellDecision(4, 50, True)


def test_staying_in_the_same_cluster_keeps_the_since_time() -> None:
    assert DwellGate(1000).decide(4, 50, proposed=4, at_ms=5000) == DwellDecision(4, 50, False)


def test_a_customer_flapping_at_a_boundary_stays_put_until_the_dwell_is_over() -> None:
    gate, current, since = DwellGate(min_dwell_ms=10 * DAY_MS), 1, 0
    moves = []
    for day, proposed in zip(range(1, 31), itertools.cycle([2, 1]), strict=False):
        current, since, switched = gate.decide(current, since, proposed, day * DAY_MS)
        moves.append(switched)
    assert moves.count(True) == 2  # not 29 times
    assert [d for d, m in enumerate(moves, start=1) if m] == [11, 22]


def test_a_late_event_never_moves_a_customer() -> None:
    assert DwellGate(0).decide(1, 5000, proposed=2, at_ms=4000) == DwellDecision(1, 5000, False)


def test_a_retired_cluster_releases_its_customers_at_once() -> None:
    decision = DwellGate(1000).decide(1, 900, proposed=2, at_ms=1000, current_exists=False)
    assert decision == DwellDecision(2, 1000, True)


def test_zero_dwell_follows_every_proposal_and_a_negative_dwell_is_refused() -> None:
    assert DwellGate(0).decide(1, 10, proposed=2, at_ms=10).switched
    with pytest.raises(ValueError, match="min_dwell_ms"):
        DwellGate(-1)

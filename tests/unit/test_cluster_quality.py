"""Cluster quality per model version: the indices against scikit-learn, the business figures against
pandas, the reservoir sample's determinism and uniformity, and the evaluator keeping one entry per version."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare
from sklearn.metrics import davies_bouldin_score, silhouette_score

from agents.web import segments_document
from state.campaigns.campaign_book import Exposure
from state.customer.rfm import DAY_MS, CustomerState
from state.evaluator.cluster_quality import (
    QualityConfig,
    assess_version,
    davies_bouldin,
    dispersion,
    silhouette,
)
from state.evaluator.config import NEVER
from state.evaluator.evaluate import Evaluator
from state.evaluator.read_model import summary_record
from state.models.alerts import HIGH, NO_BAND
from state.models.clusters import ClusterConfig, SegmentModel
from state.models.reservoir import reservoir_sample
from state.segments.features import FEATURE_NAMES
from state.segments.population import Population, feature_matrix
from tests.schema_helpers import validate
from tests.unit.test_evaluate import CONFIG, campaign_events, synthetic_logs

TOLERANCE = 1e-9


def blobs(seed: int, sizes: tuple[int, ...] = (300, 200, 150)) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs in 6 dimensions, a third of the points rounded (ties) and 20 exact duplicates."""
    rng = np.random.default_rng(seed)
    z = np.vstack([rng.normal(3.0 * i, 1.0 + i / 2, (n, 6)) for i, n in enumerate(sizes)])
    z[: len(z) // 3] = np.round(z[: len(z) // 3], 1)
    z[40:60] = z[40]
    labels = np.repeat(np.arange(len(sizes)), sizes)
    flip = rng.integers(0, len(z), len(z) // 10)  # some points in the "wrong" cluster
    labels[flip] = rng.integers(0, len(sizes), flip.size)
    return z, labels.astype(np.int64)


@pytest.mark.parametrize("seed", range(5))
def test_silhouette_and_davies_bouldin_equal_scikit_learn(seed: int) -> None:
    z, labels = blobs(seed)
    assert silhouette(z, labels) == pytest.approx(silhouette_score(z, labels), abs=TOLERANCE)
    assert davies_bouldin(z, labels) == pytest.approx(davies_bouldin_score(z, labels), abs=TOLERANCE)


def test_a_cluster_of_one_point() -> None:
    """Silhouette 0 for it, as scikit-learn; Davies-Bouldin with its spread exactly 0. scikit-learn
    measures that spread with its dot-product distance, which rounds 0 up to about 1e-8, so its
    index differs by about that much; here it is checked against the definition written out."""
    z, labels = blobs(1)
    labels[7] = 9
    assert silhouette(z, labels) == pytest.approx(silhouette_score(z, labels), abs=TOLERANCE)
    assert davies_bouldin(z, labels) == pytest.approx(davies_bouldin_score(z, labels), abs=1e-6)
    ids = sorted(set(labels.tolist()))
    centroid = {i: z[labels == i].mean(axis=0) for i in ids}
    spread = {i: np.linalg.norm(z[labels == i] - centroid[i], axis=1).mean() for i in ids}
    worst = [
        max((spread[i] + spread[j]) / np.linalg.norm(centroid[i] - centroid[j]) for j in ids if j != i)
        for i in ids
    ]
    assert davies_bouldin(z, labels) == pytest.approx(np.mean(worst), abs=1e-12)


def test_indices_are_undefined_for_one_cluster_or_one_point_each() -> None:
    z, _ = blobs(2)
    one = np.zeros(len(z), dtype=np.int64)
    assert silhouette(z, one) is None and davies_bouldin(z, one) is None
    each = np.arange(len(z), dtype=np.int64)
    assert silhouette(z, each) is None and davies_bouldin(z, each) is None


def test_dispersion_is_the_clusters_summed_feature_variance() -> None:
    z, labels = blobs(3)
    per, within = dispersion(z, labels)
    frame = pd.DataFrame(z).assign(label=labels)
    variance = frame.groupby("label").var(ddof=0).sum(axis=1)
    assert per == pytest.approx(variance.to_dict(), abs=1e-12)
    sizes = frame.groupby("label").size()
    total = pd.DataFrame(z).var(ddof=0).sum() * len(z)
    assert within == pytest.approx((variance * sizes).sum() / total, abs=1e-12)


# ---------------------------------------------------------------------------------- reservoir


def test_reservoir_is_deterministic_under_a_seed_and_follows_the_stream() -> None:
    assert reservoir_sample(10_000, 50, 3).tolist() == reservoir_sample(10_000, 50, 3).tolist()
    assert reservoir_sample(10_000, 50, 3).tolist() != reservoir_sample(10_000, 50, 4).tolist()
    before = set(reservoir_sample(20, 20, 9).tolist())
    for n in range(21, 400):  # one more item: the sample a stream holds then (it kept or took item n - 1)
        now = set(reservoir_sample(n, 20, 9).tolist())
        assert now == before or (
            len(now - before) == 1 and now - before == {n - 1} and len(before - now) == 1
        )
        before = now


def test_reservoir_is_uniform_over_items_and_subsets() -> None:
    draws = 20_000
    counts = Counter(i for seed in range(draws) for i in reservoir_sample(40, 8, seed).tolist())
    expected, sd = draws * 8 / 40, (draws * 0.2 * 0.8) ** 0.5
    assert set(counts) == set(range(40))
    assert all(abs(c - expected) < 6 * sd for c in counts.values()), counts  # a generous bound
    subsets = Counter(tuple(reservoir_sample(6, 2, seed).tolist()) for seed in range(draws))
    assert set(subsets) == set(itertools.combinations(range(6), 2))
    assert chisquare(list(subsets.values())).pvalue > 1e-4


# ---------------------------------------------------------------------------------- one version


def population_and_model(seed: int) -> tuple[Population, SegmentModel, int]:
    rng = random.Random(seed)
    pop = Population()
    at_ms = 1000 * DAY_MS
    for i in range(400):
        kind = i % 3  # three kinds of customer, so the clusters have something to find
        first = at_ms - rng.randrange(200, 400) * DAY_MS
        last = at_ms - (rng.randrange(1, 30) if kind == 0 else rng.randrange(100, 190)) * DAY_MS
        frequency = rng.randrange(5, 20) if kind == 0 else rng.randrange(1, 3)
        money = rng.randrange(1000, 90_000) * (3 if kind == 2 else 1) - (500 if i % 17 == 0 else 0)
        pop.upsert(CustomerState(f"c{i:03}", frequency, money, 0, first, last, purchase_days=frequency))
    pop.upsert(CustomerState("refunds-only", 0, -500, 1, None, None))  # not a buyer
    bands = np.asarray([rng.choice([NO_BAND, 1, 2, HIGH]) for _ in range(len(pop))], dtype=np.int64)
    pop.column("band")[:] = bands
    model = SegmentModel(ClusterConfig(k_max=4, warmup=200, publish_every=NEVER))
    for row in feature_matrix(pop, pop.buyers(), at_ms).tolist():
        model.learn(dict(zip(FEATURE_NAMES, row, strict=True)))
    model.publish()
    return pop, model, at_ms


def test_one_versions_figures_equal_scikit_learn_and_pandas() -> None:
    pop, model, at_ms = population_and_model(4)
    rng = random.Random(4)
    exposures = [
        Exposure("A", f"c{i:03}", rng.choice(["treatment", "control"]), 0, "x", rng.random() < 0.4)
        for i in range(0, 400, 2)
    ] + [Exposure("A", "nobody", "treatment", 0, "x", True)]
    config = QualityConfig(sample_size=150, seed=11)
    found = assess_version(at_ms, pop, model, exposures, config)

    buyers = pop.buyers()
    points = [dict(zip(FEATURE_NAMES, r, strict=True)) for r in feature_matrix(pop, buyers, at_ms).tolist()]
    labels = np.asarray(model.assign_many(points))
    sample = reservoir_sample(len(buyers), 150, 11)
    z = model.scale_many([points[i] for i in sample])
    assert (found["model_version"], found["k"], found["buyers"], found["sample"]) == (
        model.version,
        model.k,
        400,
        150,
    )
    assert found["silhouette"] == pytest.approx(silhouette_score(z, labels[sample]), abs=TOLERANCE)
    assert found["davies_bouldin"] == pytest.approx(davies_bouldin_score(z, labels[sample]), abs=TOLERANCE)

    people = pd.DataFrame(
        {
            "customer_id": [pop.ids[r] for r in buyers],
            "cluster": labels,
            "value": np.maximum(pop.column("monetary_cents")[buyers], 0),
            "band": pop.column("band")[buyers],
        }
    )
    banded = people[people["band"] != NO_BAND]
    shown = pd.DataFrame(
        [{"customer_id": e.customer_id, "variant": e.variant, "y": e.responded} for e in exposures]
    )
    treated = shown[shown["variant"] != "control"].merge(people, on="customer_id")
    expected = pd.DataFrame(
        {
            "customers": people.groupby("cluster").size(),
            "value_share": people.groupby("cluster")["value"].sum() / people["value"].sum(),
            "churn_share": banded.groupby("cluster")["band"].apply(lambda b: (b == HIGH).mean()),
            "response_rate": treated.groupby("cluster")["y"].mean(),
            "exposures": treated.groupby("cluster").size(),
        }
    )
    rows = pd.DataFrame(found["clusters"]).set_index("cluster")
    assert sorted(rows.index) == sorted(model.cluster_names()) and len(rows) == model.k >= 2
    assert rows[["churn_share", "response_rate"]].notna().all().all()
    for column in expected.columns:
        want = expected[column].reindex(rows.index)
        assert rows[column].astype(float).fillna(-1).tolist() == pytest.approx(
            want.fillna(-1).tolist(), abs=1e-12
        )
    for name in ("value_share", "churn_share", "response_rate"):
        assert found["spread"][name] == pytest.approx(expected[name].max() - expected[name].min(), abs=1e-12)


def test_the_evaluator_assesses_each_new_version_once_and_keeps_it() -> None:
    day0 = 28 * 400 * DAY_MS
    config = dataclasses.replace(
        CONFIG,
        cluster=ClusterConfig(k_max=4, warmup=100, publish_every=NEVER),
        publish_every_ms=28 * DAY_MS,
        quality=QualityConfig(sample_size=80, versions_kept=4),
    )
    evaluator = Evaluator(config)
    end = day0 + 300 * DAY_MS
    evaluator.advance(end, synthetic_logs(day0), campaign_events(day0))
    kept = evaluator.cluster_quality
    assert evaluator.model.version >= 6
    assert [q["model_version"] for q in kept] == list(
        range(evaluator.model.version - 3, evaluator.model.version + 1)
    )
    assert all(q["at_ms"] % (28 * DAY_MS) == 0 and q["sample"] == 80 for q in kept)
    assert any(c["exposures"] for c in kept[-1]["clusters"])  # the campaigns' treated exposures count
    assert all(q["silhouette"] is not None and q["davies_bouldin"] is not None for q in kept)
    summary = evaluator.summary()
    assert summary_record(summary)["cluster_quality"] == kept
    validate("http-segments", segments_document(summary))
    restored = Evaluator.restore(
        config,
        evaluator.clock_ms,
        evaluator.cutpoints.to_json() if evaluator.cutpoints else None,
        evaluator.snapshot(),
        [evaluator.record(r) for r in range(len(evaluator.population))],
    )
    assert restored.cluster_quality == kept
    restored.advance(end + 5 * DAY_MS, {})  # no new version: nothing is assessed again
    assert restored.cluster_quality == kept

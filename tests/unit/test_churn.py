"""The churn model's pieces: prequential AUC from score histograms, features, test-then-train."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from state.models.churn import ChurnModel
from state.models.online_logistic import PendingBatch
from state.models.prequential import _BINS, Prequential


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_histogram_auc_is_sklearns_within_its_stated_bound(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.random(5000) < 0.3
    scores = np.clip(rng.normal(0.45 + 0.2 * labels, 0.2), 0, 1)
    p = Prequential()
    for y, s in zip(labels.tolist(), scores.tolist(), strict=True):
        p.update(y, s)
    bins = np.minimum((scores * _BINS).astype(int), _BINS - 1)
    same_bin_pairs = sum(
        int(((bins == b) & labels).sum()) * int(((bins == b) & ~labels).sum()) for b in np.unique(bins)
    )
    bound = 0.5 * same_bin_pairs / (labels.sum() * (~labels).sum())
    value = p.value()
    assert value is not None and 0.7 < value < 0.85
    assert abs(value - roc_auc_score(labels, scores)) <= bound + 1e-12
    assert (p.examples, p.positives) == (5000, int(labels.sum()))


def test_auc_is_undefined_until_both_labels_were_seen() -> None:
    p = Prequential()
    p.update(True, 0.9)
    assert p.value() is None
    p.update(False, 0.1)
    assert p.value() == 1.0


def test_resolve_counts_stored_scores_then_learns_the_sample() -> None:
    model = ChurnModel(names=("recency_days",), segments=("Lost", "Champions"))
    x = np.array([[80.0], [3.0], [60.0]])
    before = model.scores(x)
    assert np.allclose(before, 0.5)  # nothing learned yet
    batch = PendingBatch.make(0, np.array([0, 1, 2]), before, np.array([0, 1, 0]), x, learn=2)
    assert batch.sample.tolist() == [0, 2] and batch.features.tolist() == [[80.0], [60.0]]
    model.resolve(batch, np.array([True, False, True]))
    assert model.report()["by_segment"] == {
        "Champions": {"auc": None, "examples": 1, "positives": 0},
        "Lost": {"auc": None, "examples": 2, "positives": 2},
    }
    assert (model.examples, model.positives, model.version) == (3, 2, 1)
    assert model.scorer()["intercept"] > 0  # it learned from the sample: both examples churned


def test_numpy_scorer_is_rivers_arithmetic() -> None:
    rng = np.random.default_rng(4)
    names = ("a", "b", "constant")
    model = ChurnModel(names=names)
    for t in range(30):
        x = np.column_stack([rng.normal(3, 2, 40), rng.exponential(5, 40), np.ones(40)])
        churned = x[:, 0] + rng.normal(0, 1, 40) > 3
        model.resolve(
            PendingBatch.make(t, np.arange(40), model.scores(x), np.zeros(40, np.int64), x, 40), churned
        )
    probe = np.column_stack([rng.normal(3, 2, 25), rng.exponential(5, 25), np.ones(25)])
    river = [
        model._model.predict_proba_one(dict(zip(names, row, strict=True)))[True] for row in probe.tolist()
    ]
    assert np.allclose(model.raw_scores(probe), river, atol=1e-12)  # served = raw through the Platt map
    assert json.loads(json.dumps(model.scorer()))["names"] == list(names)  # JSON-safe for every scorer


def test_a_pending_batch_pickles_its_integers_narrow_and_loads_them_back_as_int64() -> None:
    """Open batches are most of the evaluator's saved snapshot: their row numbers, segment and band
    indices are pickled in 1-4 bytes each, and come back equal, as int64."""

    rng = np.random.default_rng(7)
    n = 5_000
    rows = np.sort(rng.choice(60_000, n, replace=False)).astype(np.int64)
    batch = PendingBatch.make(
        86_400_000,
        rows,
        rng.random(n),
        rng.integers(0, 11, n),
        rng.random((n, 4)),
        learn=500,
        served=rng.random(n),
        bands=rng.integers(0, 3, n),
    )
    wide = len(pickle.dumps(dict(batch.__dict__)))  # the same fields, every integer array int64
    loaded = pickle.loads(pickle.dumps(batch))
    for name in ("rows", "segments", "sample", "bands"):
        assert getattr(loaded, name).dtype == np.int64
        assert np.array_equal(getattr(loaded, name), getattr(batch, name))
    for name in ("scores", "features", "served"):
        assert np.array_equal(getattr(loaded, name), getattr(batch, name))
    assert loaded.made_at_ms == batch.made_at_ms
    assert len(pickle.dumps(batch)) < wide - n * (4 + 7 + 7)  # rows 8 -> 4 bytes, segments and bands 8 -> 1

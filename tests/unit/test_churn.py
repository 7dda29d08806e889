"""The churn model's pieces: prequential AUC from score histograms, features, test-then-train."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from state.churn import _BINS, ChurnModel, Pending, _Prequential


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_histogram_auc_is_sklearns_within_its_stated_bound(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.random(5000) < 0.3
    scores = np.clip(rng.normal(0.45 + 0.2 * labels, 0.2), 0, 1)
    p = _Prequential()
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
    p = _Prequential()
    p.update(True, 0.9)
    assert p.value() is None
    p.update(False, 0.1)
    assert p.value() == 1.0


def test_resolve_scores_first_then_learns() -> None:
    model = ChurnModel()
    x = {"recency_days": 3.0}
    before = model.score(x)
    model.resolve(Pending(x, before, "Lost", 0), churned=True)
    report = model.report()
    assert report["by_segment"] == {"Lost": {"auc": None, "examples": 1, "positives": 1}}
    assert model.score(x) > before  # it learned that x churned

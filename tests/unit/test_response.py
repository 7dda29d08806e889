"""The response model: River's arithmetic, test-then-train, labels at the window's end, features."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from state.campaigns.descriptors import DESCRIPTOR_FEATURES, descriptor_features
from state.campaigns.prior_features import PRIOR_FEATURES, prior_features
from state.campaigns.response import (
    RESPONSE_BASE_FEATURES,
    ResponseModel,
    response_feature_names,
    response_features,
)
from state.customer.rfm import DAY_MS
from state.models.churn_features import churn_matrix
from streams.campaign_contract import CampaignDescriptor, PriorPurchases

NAMES = ("spend", "gap", "treated")


def exposures(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic exposures: treated, high spenders respond more often."""
    x = np.column_stack([rng.normal(50, 20, n), rng.exponential(10, n), rng.random(n) < 0.5])
    logit = 0.05 * (x[:, 0] - 50) + 1.5 * x[:, 2] - 0.8
    return x, rng.random(n) < 1 / (1 + np.exp(-logit))


def test_numpy_scorer_is_rivers_arithmetic() -> None:
    rng = np.random.default_rng(4)
    model = ResponseModel(names=NAMES, window_ms=10)
    for t in range(30):
        x, responded = exposures(rng, 40)
        model.score(t * 10, np.arange(40), x, np.zeros(40, np.int64))
        (due,) = model.take_due(t * 10 + 10)
        model.resolve(due, responded)
    probe, _ = exposures(rng, 25)
    probe[0, 0] = 1e4  # far beyond the clip at 5 standard deviations: both must clip the same way
    river = [
        model._model.predict_proba_one(dict(zip(NAMES, row, strict=True)))[True] for row in probe.tolist()
    ]
    assert np.allclose(model.scores(probe), river, atol=1e-12)
    assert json.loads(json.dumps(model.scorer()))["names"] == list(NAMES)  # JSON-safe for every scorer
    restored = pickle.loads(pickle.dumps(model))  # the evaluator's snapshot pickles its models
    assert restored.scorer() == model.scorer()


def test_stored_scores_are_counted_before_the_model_learns_them() -> None:
    rng = np.random.default_rng(1)
    model = ResponseModel(names=NAMES, window_ms=10)
    x, responded = exposures(rng, 400)
    stored = model.score(0, np.arange(400), x, np.zeros(400, np.int64))
    assert np.allclose(stored, 0.5)  # nothing learned yet
    (due,) = model.take_due(10)
    model.resolve(due, responded)
    # the AUC counted the stored (constant) scores: every pair ties, 0.5, though the model has now learned
    assert model.auc() == 0.5
    assert roc_auc_score(responded, model.scores(x)) > 0.7
    assert (model.examples, model.positives, model.version) == (400, int(responded.sum()), 1)

    x2, responded2 = exposures(rng, 400)
    second = model.score(20, np.arange(400), x2, np.zeros(400, np.int64))
    (due,) = model.take_due(30)
    np.testing.assert_array_equal(due.batch.scores, second)
    model.resolve(due, responded2)
    both = np.concatenate([stored, second]), np.concatenate([responded, responded2])
    value = model.auc()
    assert value is not None and abs(value - roc_auc_score(both[1], both[0])) < 0.01
    report = model.report()
    assert report["by_variant"]["treatment"]["examples"] == int(x[:, 2].sum() + x2[:, 2].sum())
    assert report["pending"] == 0


def test_labels_resolve_at_the_end_of_each_window() -> None:
    model = ResponseModel(names=NAMES, window_ms=50)
    x = np.array([[10.0, 1.0, 1.0], [20.0, 2.0, 0.0]])
    model.score(100, np.array([7, 8]), x, np.array([0, -1]))  # default window: due at 150
    model.score(110, np.array([9, 3]), x, np.array([0, 0]), window_ms=20)  # its own window: due at 130
    assert model.take_due(129) == []
    (first,) = model.take_due(130)
    assert first.batch.rows.tolist() == [9, 3] and first.batch.made_at_ms == 110
    assert model.take_due(149) == [] and model.report()["pending"] == 2
    (second,) = model.take_due(150)
    assert second.batch.rows.tolist() == [7, 8] and second.treated.tolist() == [True, False]
    assert model.pending == [] and model.version == 0  # taking is not learning
    model.resolve(second, np.array([True, False]))
    assert model.version == 1 and model.report()["by_segment"].keys() == {"unknown"}


def test_bad_input_says_what_is_wrong() -> None:
    model = ResponseModel(names=NAMES)
    with pytest.raises(ValueError, match=r"expected \(2, 3\)"):
        model.score(0, np.arange(2), np.zeros((2, 2)), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="window must be positive"):
        model.score(0, np.arange(1), np.zeros((1, 3)), np.zeros(1, np.int64), window_ms=0)
    model.score(0, np.arange(2), np.zeros((2, 3)), np.zeros(2, np.int64))
    (due,) = model.take_due(model.window_ms)
    with pytest.raises(ValueError, match="1 labels for 2 exposures"):
        model.resolve(due, np.array([True]))
    with pytest.raises(ValueError, match="must include 'treated'"):
        ResponseModel(names=("spend",))


def test_features_are_the_churn_columns_plus_churn_known_and_variant() -> None:
    day = DAY_MS
    cols = {
        "frequency": np.array([4, 1, 0]),
        "monetary_cents": np.array([12_000, 500, 0]),
        "first_ms": np.array([0, 5 * day, np.iinfo(np.int64).min]),  # the population's NO_TIME
        "last_ms": np.array([6 * day, 5 * day, np.iinfo(np.int64).min]),
        "r": np.array([5, 3, 0]),
        "f": np.array([4, 1, 0]),
        "m": np.array([5, 1, 0]),
    }
    alive, expected = np.array([0.9, 0.6, np.nan]), np.array([2.0, np.nan, np.nan])
    churn, segment = np.array([0.1, 0.4, 0.5]), np.array([0, 2, -1])
    treated = np.array([True, False, True])
    x = response_features(cols, 10 * day, alive, expected, churn, segment, 3, treated)
    names = response_feature_names(("A", "B", "C"))
    assert x.shape == (3, len(names)) and names[: len(RESPONSE_BASE_FEATURES)] == RESPONSE_BASE_FEATURES
    known = churn_matrix(
        {k: v[:2] for k, v in cols.items()}, 10 * day, alive[:2], expected[:2], segment[:2], 3
    )
    column = {n: j for j, n in enumerate(names)}
    base = [
        j
        for n, j in column.items()
        if n not in ("churn_probability", "known", "treated")
        and n not in (*DESCRIPTOR_FEATURES, *PRIOR_FEATURES)
    ]
    np.testing.assert_array_equal(x[:2, base], known)
    assert x[:, column["churn_probability"]].tolist() == [0.1, 0.4, 0.0]
    assert x[:, column["known"]].tolist() == [1.0, 1.0, 0.0]
    assert x[:, column["treated"]].tolist() == [1.0, 0.0, 1.0]
    campaign = len(DESCRIPTOR_FEATURES) + len(PRIOR_FEATURES)  # descriptor and prior-purchase columns
    undescribed = [0.0] * campaign
    assert x[2].tolist() == [0.0] * column["treated"] + [1.0] + [0.0] * 3 + undescribed  # only the variant
    assert x[:, len(names) - campaign :].sum() == 0  # no descriptors nor prior purchases given: zeros
    d = descriptor_features([CampaignDescriptor("Type C", 33, 1, 18, 0.33)] * 3)
    prior = prior_features([PriorPurchases(56, 2, 5.0), PriorPurchases(56, 0, 0.0), None])
    described = response_features(cols, 10 * day, alive, expected, churn, segment, 3, treated, d, prior)
    np.testing.assert_array_equal(described[:, : len(names) - campaign], x[:, : len(names) - campaign])
    assert (
        described[0, column["campaign_type=Type C"]] == 1.0 and described[2, column["campaign_days"]] == 33.0
    )
    assert described[:, column["prior_known"]].tolist() == [1.0, 1.0, 0.0]
    assert described[:, column["bought_covered_before"]].tolist() == [1.0, 0.0, 0.0]
    assert np.isfinite(x).all()

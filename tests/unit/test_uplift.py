"""Uplift: the arm models recover a known effect by segment, propensity weighting, Qini by hand, descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from state.campaigns.descriptors import DESCRIPTOR_FEATURES, descriptor_features
from state.campaigns.prior_features import PRIOR_FEATURES
from state.campaigns.qini import bootstrap_qini, qini_coefficient, qini_curve, suggested_target, uplift_at
from state.campaigns.uplift import UpliftModel, stabilised_weights
from streams.campaign_contract import CampaignDescriptor

NAMES = ("spend", "segment=a", "segment=b", "treated")
EFFECT = {"a": 0.30, "b": -0.15}  # the true uplift by segment
BASE = {"a": 0.20, "b": 0.50}


def exposures(rng: np.random.Generator, n: int, targeted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Two segments with a known uplift each; with ``targeted`` big spenders are treated far more
    often (non-random assignment) and respond more regardless of treatment."""
    in_a = rng.random(n) < 0.5
    spend = rng.normal(0, 1, n)
    chance = 1 / (1 + np.exp(-2.5 * spend)) if targeted else np.full(n, 0.5)
    treated = rng.random(n) < chance
    base = np.where(in_a, BASE["a"], BASE["b"]) + 0.1 * np.tanh(spend)
    p = base + treated * np.where(in_a, EFFECT["a"], EFFECT["b"])
    x = np.column_stack([spend, in_a, ~in_a, treated]).astype(float)
    return x, rng.random(n) < p


def learned(targeted: bool, clip: float = 0.05) -> UpliftModel:
    rng = np.random.default_rng(11)
    model = UpliftModel(names=NAMES, learning_rate=0.02, clip=clip)
    for t in range(60):
        x, responded = exposures(rng, 300, targeted)
        model.score(t, np.arange(300), x, np.zeros(300, np.int64), window_ms=2)
        for due in model.take_due(t + 2):
            model.resolve(due, responded)
    return model


@pytest.mark.parametrize("targeted", [False, True], ids=["randomised", "targeted on spend"])
def test_the_uplift_model_recovers_sign_and_size_by_segment(targeted: bool) -> None:
    model = learned(targeted)
    probe_rng = np.random.default_rng(3)
    for segment, effect in EFFECT.items():
        spend = probe_rng.normal(0, 1, 500)
        x = np.column_stack(
            [spend, np.full(500, segment == "a"), np.full(500, segment == "b"), np.zeros(500)]
        )
        estimate = float(model.uplift(x).mean())
        assert np.sign(estimate) == np.sign(effect)
        assert abs(estimate - effect) < 0.08, (segment, estimate)
    report = model.report()
    assert (
        report["version"] > 50 and report["treatment"]["examples"] + report["control"]["examples"] == 60 * 300
    )
    if targeted:  # the propensity model sees the targeting on spend
        assert report["propensity"]["auc"] > 0.75


def test_propensity_weights_reweight_each_arm_to_the_whole_population() -> None:
    rng = np.random.default_rng(5)
    e = rng.uniform(0.1, 0.9, 200_000)
    treated = rng.random(e.size) < e
    w = stabilised_weights(e, treated, float(treated.mean()), 0.05)
    # weighted, each arm has the whole population's mean propensity (here: of a covariate, e itself)
    for arm in (treated, ~treated):
        assert np.average(e[arm], weights=w[arm]) == pytest.approx(e.mean(), abs=0.005)
    assert np.average(e[treated]) > e.mean() + 0.05  # unweighted, the treated arm is skewed
    clipped = stabilised_weights(np.array([0.0, 1.0]), np.array([True, False]), 0.5, 0.05)
    assert clipped.tolist() == pytest.approx([10.0, 10.0])  # e clipped to [0.05, 0.95]


def test_qini_against_a_hand_computed_example() -> None:
    # ranked: T+ , C- , T- , C+ , T+ , C-
    uplift = np.array([0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    treated = np.array([True, False, True, False, True, False])
    responded = np.array([True, False, False, True, True, False])
    # Q(k) = r_t - r_c * n_t / n_c: k=1: 1 (no control yet); 2: 1 - 0; 3: 1 - 0*2/1; 4: 1 - 1*2/2 = 0;
    # 5: 2 - 1*3/2 = 0.5; 6: 2 - 1*3/3 = 1
    assert qini_curve(uplift, treated, responded).tolist() == [0, 1, 1, 1, 0, 0.5, 1]
    # random line k * Q(6)/6; area = sum (Q(k) - k/6) / 36 = (5/6 + 4/6 + 3/6 - 4/6 - 2/6 + 0) / 36
    assert qini_coefficient(uplift, treated, responded) == pytest.approx((5 + 4 + 3 - 4 - 2) / 6 / 36)
    assert qini_coefficient(-uplift, treated, responded) < 0  # the reversed ranking is worse than random
    assert uplift_at(uplift, treated, responded, 0.5) == pytest.approx(1 / 2 - 0 / 1)  # top 3: T+, C-, T-
    assert uplift_at(uplift, treated, responded, 1.0) == pytest.approx(2 / 3 - 1 / 3)
    low, high = bootstrap_qini(uplift, treated, responded, resamples=50, seed=1)
    assert low <= high and (low, high) == bootstrap_qini(uplift, treated, responded, resamples=50, seed=1)
    assert suggested_target(np.array([0.2, -0.1, 0.05])) == (2, pytest.approx(2 / 3), pytest.approx(0.25))


def test_descriptor_features() -> None:
    x = descriptor_features(
        [CampaignDescriptor("Type C", 33, 1, 18, 0.33), CampaignDescriptor("Type Z"), None]
    )
    named = [dict(zip(DESCRIPTOR_FEATURES, row, strict=True)) for row in x.tolist()]
    assert named[0] == {
        "described": 1.0,
        "campaign_type=Type A": 0.0,
        "campaign_type=Type B": 0.0,
        "campaign_type=Type C": 1.0,
        "campaign_days": 33.0,
        "log_coupons": pytest.approx(np.log(2)),
        "log_covered_products": pytest.approx(np.log(19)),
        "discount_depth": 0.33,
    }
    assert named[1]["described"] == 1.0 and sum(named[1].values()) == 1.0  # an unknown type sets no indicator
    assert sum(named[2].values()) == 0.0  # undescribed: zeros


def test_a_campaign_book_saved_before_descriptors_restores_with_new_models() -> None:
    import pickle

    from state.campaigns.campaign_book import CampaignBook
    from state.campaigns.response import RESPONSE_BASE_FEATURES, ResponseModel

    book = CampaignBook(ResponseModel(names=RESPONSE_BASE_FEATURES))
    state = dict(book.__dict__)
    for key in ("uplift", "reference", "population_uplift"):  # what an older snapshot lacks
        del state[key]
    old = CampaignBook.__new__(CampaignBook)
    old.__setstate__(state)
    restored = pickle.loads(pickle.dumps(old))
    assert restored.response.names == (*RESPONSE_BASE_FEATURES, *DESCRIPTOR_FEATURES, *PRIOR_FEATURES)
    assert restored.uplift is not None and restored.uplift.names == restored.response.names


def test_a_campaign_book_saved_before_prior_purchases_restores_with_new_models() -> None:
    import pickle

    from state.campaigns.campaign_book import CampaignBook
    from state.campaigns.response import RESPONSE_BASE_FEATURES, ResponseModel

    described = (*RESPONSE_BASE_FEATURES, *DESCRIPTOR_FEATURES)  # a snapshot from before prior purchases
    old = pickle.loads(pickle.dumps(CampaignBook(ResponseModel(names=described))))
    assert old.response.names == (*described, *PRIOR_FEATURES)
    assert old.uplift is not None and old.uplift.names == old.response.names

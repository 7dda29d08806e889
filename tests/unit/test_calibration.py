"""Calibration kept online in O(bins): the same figures as a direct computation; Platt keeps the ranking."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import brier_score_loss, roc_auc_score

from state.models.calibration import ECE_BINS, Platt, Reliability, calibration_figures
from state.models.churn import ChurnModel
from state.models.model_health import ModelHealth, RecentWindow, gate_open
from state.models.online_logistic import PendingBatch


def direct_ece(labels: np.ndarray, scores: np.ndarray) -> float:  # type: ignore[type-arg]
    bins = np.minimum((scores * ECE_BINS).astype(int), ECE_BINS - 1)
    return sum(
        (bins == b).mean() * abs(scores[bins == b].mean() - labels[bins == b].mean()) for b in np.unique(bins)
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_streamed_figures_equal_the_direct_ones(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.beta(2, 2, 10_000)
    labels = rng.random(10_000) < scores**1.5  # miscalibrated on purpose
    streamed = Reliability()
    for chunk in np.array_split(np.arange(10_000), 7):
        streamed.update_many(labels[chunk], scores[chunk])
    assert streamed.brier() == pytest.approx(brier_score_loss(labels, scores))
    assert streamed.ece() == pytest.approx(direct_ece(labels, scores))
    assert calibration_figures(labels, scores).ece == pytest.approx(streamed.ece())
    assert sum(row.predictions for row in streamed.rows()) == 10_000


def test_platt_calibrates_without_changing_the_ranking() -> None:
    rng = np.random.default_rng(3)
    raw = rng.uniform(0.02, 0.98, 30_000)
    labels = rng.random(raw.size) < expit(2.0 * np.log(raw / (1 - raw)) + 0.5)  # under-confident raw model
    platt = Platt()
    platt.learn(labels[:15_000], raw[:15_000])
    served = platt.apply(raw[15_000:])
    test = labels[15_000:]
    assert roc_auc_score(test, served) == pytest.approx(roc_auc_score(test, raw[15_000:]))
    before, after = calibration_figures(test, raw[15_000:]), calibration_figures(test, served)
    assert after.ece is not None and before.ece is not None and after.ece < 0.02 < before.ece


def test_the_recent_window_forgets_old_batches() -> None:
    window = RecentWindow(half_life_ms=1)
    good, bad = np.array([0.9, 0.1]), np.array([0.1, 0.9])
    window.update(0, np.array([True, False]), good, good)
    window.update(20, np.array([True, False]), bad, bad)  # 20 half-lives later
    health = window.health(2)
    assert health.auc is not None and health.auc < 0.01 and not gate_open(health, 0.65, 0.1)
    assert gate_open(ModelHealth(2, 0.7, 0.05, 10.0), 0.65, 0.1)
    assert not gate_open(ModelHealth(2, 0.7, None, 10.0), 0.65, 0.1)  # undefined: shut


def test_band_outcomes_count_the_band_at_prediction() -> None:
    model = ChurnModel(names=("recency_days",))
    x = np.array([[80.0], [3.0], [60.0], [5.0]])
    batch = PendingBatch.make(
        0, np.arange(4), model.raw_scores(x), np.zeros(4, np.int64), x, 4, bands=np.array([3, 1, 3, 2])
    )
    model.resolve(batch, np.array([True, False, False, True]))
    outcomes = model.band_outcomes()
    assert outcomes["High"] == {"predictions": 2, "churned": 1, "observed_churn_rate": 0.5}
    assert outcomes["Low"]["observed_churn_rate"] == 0.0 and outcomes["Medium"]["churned"] == 1

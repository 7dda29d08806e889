"""The lifetime model on the evaluator's own columns: the paper's summary and estimates, closed forms."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from segstream.btyd_data import calibration_summary
from segstream.sources import load_cdnow, wire_events
from state.customer.memory_store import MemoryStore
from state.customer.store import Delivery
from state.evaluator.predict import (
    LifetimeModel,
    btyd_inputs,
    fit_lifetime,
    lifetime_scores,
    one_time_p_alive,
)
from state.models.btyd import BgNbdParams, expected_purchases, p_alive
from state.segments.population import Population
from streams.contract import decode_purchase

CALIBRATION_END = pd.Timestamp("1997-09-30", tz="UTC")
AS_OF_MS = CALIBRATION_END.value // 1_000_000
PUBLISHED = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


@pytest.fixture(scope="module")
def calibration() -> tuple[list[str], dict[str, np.ndarray]]:
    """The CDNOW sample's calibration period folded by the store, in the evaluator's columns."""
    history = load_cdnow(sample=True)
    history = history[history["occurred_at"] <= CALIBRATION_END]
    store = MemoryStore()
    deliveries = [
        Delivery(decode_purchase(v), "purchases", 0, i) for i, (_, v) in enumerate(wire_events(history))
    ]
    asyncio.run(store.apply_batch(deliveries))
    population = Population()
    for state in asyncio.run(store.all_customers()):
        population.upsert(state)
    rows = population.buyers()
    return [population.ids[r] for r in rows], population.columns(rows)


def test_evaluator_inputs_equal_the_batch_calibration_summary(
    calibration: tuple[list[str], dict[str, np.ndarray]],
) -> None:
    ids, cols = calibration
    x, t_x, T = btyd_inputs(cols, AS_OF_MS)
    live = pd.DataFrame({"x": x, "t_x": t_x, "T": T}, index=pd.Index(ids, name="customer_id")).sort_index()
    batch = calibration_summary(load_cdnow(sample=True), calibration_end=CALIBRATION_END).sort_index()
    assert list(live.index) == list(batch.index) and len(live) == 2357
    for column in ("x", "t_x", "T"):
        assert np.allclose(live[column].to_numpy(), batch[column].to_numpy()), column
    assert int((live["x"] == 0).sum()) == 1411  # Fader, Hardie & Lee (2005)


def test_fit_on_the_evaluators_columns_reproduces_the_published_estimates(
    calibration: tuple[list[str], dict[str, np.ndarray]],
) -> None:
    model = fit_lifetime(calibration[1], AS_OF_MS, None, version=1)
    assert model is not None
    p = model.bgnbd
    assert (round(p.r, 3), round(p.alpha, 3), round(p.a, 3), round(p.b, 3)) == (0.243, 4.414, 0.793, 2.426)
    assert round(p.log_likelihood, 1) == -9582.4
    assert model.spend is not None and model.spend.q > 1  # Gamma-Gamma fitted on the repeat buyers
    assert LifetimeModel.from_json(model.to_json()) == model
    # a warm refit from the previous version lands on the same optimum
    warm = fit_lifetime(calibration[1], AS_OF_MS, model, version=2)
    assert warm is not None and warm.version == 2
    assert np.allclose(
        [warm.bgnbd.r, warm.bgnbd.alpha, warm.bgnbd.a, warm.bgnbd.b], [p.r, p.alpha, p.a, p.b], rtol=1e-3
    )


def test_one_time_buyers_fade_with_silence_instead_of_staying_alive_forever() -> None:
    T = np.array([0.0, 4.0, 39.0, 78.0])
    alive = one_time_p_alive(PUBLISHED, T)
    assert np.all(np.diff(alive) < 0) and np.all((alive > 0) & (alive < 1))
    expected = 1 / (1 + (0.793 / 2.426) * ((4.414 + T) / 4.414) ** 0.243)
    assert np.allclose(alive, expected)
    assert p_alive(PUBLISHED, 0, 0, 78.0)[()] == 1.0  # what plain BG/NBD would have said


def test_scores_use_the_model_for_repeat_buyers_and_the_rule_for_one_time_buyers(
    calibration: tuple[list[str], dict[str, np.ndarray]],
) -> None:
    cols = calibration[1]
    model = fit_lifetime(cols, AS_OF_MS, None, version=1)
    assert model is not None
    scored = lifetime_scores(model, cols, AS_OF_MS)
    x, t_x, T = btyd_inputs(cols, AS_OF_MS)
    repeat = x > 0
    assert np.allclose(scored["p_alive"][repeat], p_alive(model.bgnbd, x[repeat], t_x[repeat], T[repeat]))
    assert np.allclose(scored["p_alive"][~repeat], one_time_p_alive(model.bgnbd, T[~repeat]))
    assert np.allclose(
        scored["expected_purchases_90d"][repeat],
        expected_purchases(model.bgnbd, 90 / 7, x[repeat], t_x[repeat], T[repeat]),
    )
    assert np.isnan(scored["expected_next_order_ms"][~repeat]).all()
    assert np.nanmin(scored["expected_next_order_ms"][repeat]) > AS_OF_MS
    assert (scored["clv"] >= 0).all() and scored["clv"][repeat].mean() > scored["clv"][~repeat].mean()

"""BG/NBD over the live state: the store's state gives the paper's summary and estimates."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from segstream.btyd_data import calibration_summary
from segstream.lifetime import (
    btyd_summary,
    fit_states,
    one_time_p_alive,
    params_from_json,
    params_to_json,
    predictions,
    with_predictions,
)
from segstream.sources import load_cdnow, wire_events
from state.btyd import BgNbdParams, p_alive
from state.rfm import CustomerState
from state.store import Delivery, MemoryStore
from streams.contract import decode_purchase

CALIBRATION_END = pd.Timestamp("1997-09-30", tz="UTC")
AS_OF_MS = CALIBRATION_END.value // 1_000_000
PUBLISHED = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


@pytest.fixture(scope="module")
def calibration_states() -> list[CustomerState]:
    """The CDNOW sample's calibration period folded by the store, as the worker would."""
    history = load_cdnow(sample=True)
    history = history[history["occurred_at"] <= CALIBRATION_END]
    store = MemoryStore()
    deliveries = [
        Delivery(decode_purchase(v), "purchases", 0, i) for i, (_, v) in enumerate(wire_events(history))
    ]
    asyncio.run(store.apply_batch(deliveries))
    return asyncio.run(store.all_customers())


def test_live_summary_equals_the_batch_calibration_summary(calibration_states: list[CustomerState]) -> None:
    live = btyd_summary(calibration_states, AS_OF_MS).sort_index()
    batch = calibration_summary(load_cdnow(sample=True), calibration_end=CALIBRATION_END).sort_index()
    assert list(live.index) == list(batch.index) and len(live) == 2357
    for column in ("x", "t_x", "T"):
        assert np.allclose(live[column].to_numpy(), batch[column].to_numpy()), column
    assert int((live["x"] == 0).sum()) == 1411  # Fader, Hardie & Lee (2005)


def test_fit_on_live_state_reproduces_the_published_estimates(
    calibration_states: list[CustomerState],
) -> None:
    params = fit_states(calibration_states, AS_OF_MS)
    assert (round(params.r, 3), round(params.alpha, 3), round(params.a, 3), round(params.b, 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert round(params.log_likelihood, 1) == -9582.4
    assert params_from_json(params_to_json(params, AS_OF_MS, 2357)) == params


def test_one_time_buyers_fade_with_silence_instead_of_staying_alive_forever() -> None:
    T = np.array([0.0, 4.0, 39.0, 78.0])
    alive = one_time_p_alive(PUBLISHED, T)
    assert np.all(np.diff(alive) < 0) and np.all((alive > 0) & (alive < 1))
    expected = 1 / (1 + (0.793 / 2.426) * ((4.414 + T) / 4.414) ** 0.243)
    assert np.allclose(alive, expected)
    assert p_alive(PUBLISHED, 0, 0, 78.0)[()] == 1.0  # what plain BG/NBD would have said


def test_predictions_use_the_model_for_repeat_buyers(calibration_states: list[CustomerState]) -> None:
    summary = btyd_summary(calibration_states, AS_OF_MS)
    scored = predictions(summary, PUBLISHED, AS_OF_MS)
    repeat = summary["x"] > 0
    assert np.allclose(
        scored.loc[repeat, "p_alive"],
        p_alive(PUBLISHED, *(summary.loc[repeat, c] for c in ("x", "t_x", "T"))),
    )
    assert scored.loc[~repeat, "expected_next_order_at"].isna().all()
    assert (scored["expected_purchases_90d"] >= 0).all()
    assert scored.loc[repeat, "expected_next_order_at"].dropna().min() > CALIBRATION_END


def test_without_a_model_the_columns_exist_and_are_empty(calibration_states: list[CustomerState]) -> None:
    frame = pd.DataFrame({"customer_id": [s.customer_id for s in calibration_states]})
    empty = with_predictions(frame, calibration_states, None, AS_OF_MS)
    assert list(empty.columns) == [
        "customer_id",
        "p_alive",
        "expected_purchases_90d",
        "expected_next_order_at",
    ]
    assert empty.drop(columns="customer_id").isna().all().all()

"""Versioned cut-points reproduce the exact scores and decay R with time, on real CDNOW data."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from segstream.batch import rfm_table
from segstream.sources import load_cdnow
from state.segments.cutpoints import CutPoints, compute_cutpoints, next_decay_ms, scores_at
from state.customer.rfm import DAY_MS
from state.segments.segments import rfm_scores


@pytest.fixture(scope="module")
def cdnow() -> tuple[pd.DataFrame, int]:
    history = load_cdnow()
    table = rfm_table(history)
    table["last_ms"] = table["last_purchase_at"].astype("datetime64[ms, UTC]").astype("int64")
    as_of_ms = int(history["occurred_at"].max().value // 1_000_000)
    return table, as_of_ms


def cutpoints_of(table: pd.DataFrame, as_of_ms: int) -> CutPoints:
    return compute_cutpoints(
        table["last_ms"].tolist(),
        table["frequency"].tolist(),
        table["monetary_cents"].tolist(),
        as_of_ms=as_of_ms,
        version=1,
    )


def test_at_version_time_the_thresholds_give_the_exact_rank_scores(cdnow: tuple[pd.DataFrame, int]) -> None:
    table, as_of_ms = cdnow
    cp = cutpoints_of(table, as_of_ms)
    exact = rfm_scores(
        table["last_ms"].to_numpy(), table["frequency"].to_numpy(), table["monetary_cents"].to_numpy()
    )
    frozen = [
        scores_at(cp, last, f, m, as_of_ms)
        for last, f, m in zip(table["last_ms"], table["frequency"], table["monetary_cents"], strict=True)
    ]
    assert frozen == exact
    assert cp.population == 23_570


def test_r_only_falls_with_time_and_exactly_at_the_announced_instant(cdnow: tuple[pd.DataFrame, int]) -> None:
    table, as_of_ms = cdnow
    cp = cutpoints_of(table, as_of_ms)
    rng = random.Random(3)
    for last in rng.sample(table["last_ms"].tolist(), 300):
        at, r = as_of_ms, scores_at(cp, last, 1, 0, as_of_ms)[0]
        while (due := next_decay_ms(cp, last, at)) is not None:
            assert scores_at(cp, last, 1, 0, due - 1)[0] == r, "no change before the due instant"
            lower = scores_at(cp, last, 1, 0, due)[0]
            assert lower < r, "R falls exactly at the due instant"
            at, r = due, lower
        assert r == 1


def test_a_year_of_silence_moves_everyone_down(cdnow: tuple[pd.DataFrame, int]) -> None:
    table, as_of_ms = cdnow
    cp = cutpoints_of(table, as_of_ms)
    later = as_of_ms + 365 * DAY_MS
    before = np.array([scores_at(cp, t, 1, 0, as_of_ms)[0] for t in table["last_ms"]])
    after = np.array([scores_at(cp, t, 1, 0, later)[0] for t in table["last_ms"]])
    assert (after <= before).all()
    assert (before == 5).sum() > 4000 and (after == 5).sum() == 0
    assert after.mean() < before.mean() - 1


def test_ties_share_a_score_and_unreached_scores_have_unreachable_thresholds() -> None:
    cp = compute_cutpoints([5, 5, 5], [2, 2, 2], [100, 100, 100], as_of_ms=10, version=7)
    assert {scores_at(cp, 5, 2, 100, 10)} == {(1, 1, 1)}
    assert min(cp.min_frequency) > 2 and min(cp.min_monetary_cents) > 100


def test_json_round_trip_and_validation() -> None:
    cp = compute_cutpoints(
        [1, 2, 3, 4, 5, 6], [1, 1, 2, 3, 5, 8], [0, 10, 20, 30, 40, 50], as_of_ms=9, version=3
    )
    assert CutPoints.from_json(cp.to_json()) == cp
    with pytest.raises(ValueError, match="at least one customer"):
        compute_cutpoints([], [], [], as_of_ms=0, version=1)
    with pytest.raises(ValueError, match="one entry per customer"):
        compute_cutpoints([1], [1, 2], [1], as_of_ms=0, version=1)

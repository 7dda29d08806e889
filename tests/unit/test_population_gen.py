"""The scale benchmark's generated population: held to BG/NBD's closed form, seeded, replayable."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segstream.population_gen import (
    DAY_MS,
    DENSE,
    SPARSE,
    PopulationParams,
    expected_events_per_customer,
    generate_population,
    write_population,
)
from segstream.sources import load_table


def _events_per_customer(frame: pd.DataFrame, customers: int) -> np.ndarray:
    counts = frame.groupby("customer_id").size()
    assert len(counts) == customers  # every customer has at least the first purchase
    return counts.to_numpy(dtype=float)


@pytest.mark.parametrize(("params", "customers"), [(SPARSE, 20_000), (DENSE, 4_000)])
def test_mean_events_per_customer_matches_the_bgnbd_closed_form(
    params: PopulationParams, customers: int
) -> None:
    counts = _events_per_customer(generate_population(customers, seed=7, params=params), customers)
    standard_error = counts.std(ddof=1) / math.sqrt(customers)
    assert abs(counts.mean() - expected_events_per_customer(params)) < 4 * standard_error


def test_presets_give_about_4_and_about_40_events_per_customer() -> None:
    assert 3.5 < expected_events_per_customer(SPARSE) < 4.5
    assert 36 < expected_events_per_customer(DENSE) < 44


def test_no_dropout_and_a_fixed_rate_gives_poisson_counts() -> None:
    """Nearly fixed λ and p ≈ 0 (Gamma and Beta concentrated): repeats ~ Poisson(λ · window)."""
    params = PopulationParams(r=40_000.0, alpha=400_000.0, a=1.001, b=1e7, acquisition_days=1e-6)
    counts = _events_per_customer(generate_population(5_000, seed=3, params=params), 5_000) - 1
    expected = 0.1 * params.span_days  # λ = r / alpha = 0.1 a day, the whole span observed
    assert abs(counts.mean() - expected) < 4 * math.sqrt(expected / 5_000)
    assert abs(counts.var(ddof=1) / expected - 1) < 0.1  # Poisson: variance = mean


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    first = generate_population(2_000, seed=11)
    pd.testing.assert_frame_equal(first, generate_population(2_000, seed=11))
    assert not first.equals(generate_population(2_000, seed=12))


def test_events_lie_in_the_span_in_time_order_with_unique_ids() -> None:
    params = replace(SPARSE, span_days=100.0, acquisition_days=30.0)
    frame = generate_population(3_000, seed=5, params=params)
    start = pd.Timestamp(params.start)
    assert frame["occurred_at"].is_monotonic_increasing
    assert frame["occurred_at"].min() >= start
    assert frame["occurred_at"].max() < start + pd.Timedelta(days=100)
    firsts = frame.groupby("customer_id")["occurred_at"].min()
    assert (firsts < start + pd.Timedelta(days=30)).all()
    assert frame["event_id"].is_unique
    assert (frame["amount"] > 0).all()
    assert (frame["type"] == "purchase").all()
    assert (frame["amount"].round(2) == frame["amount"]).all()  # whole cents


def test_amounts_are_log_normal_around_the_median() -> None:
    """log(cents) ~ N(log median, customer_spread² + purchase_spread²) over a customer's first purchases."""
    frame = generate_population(20_000, seed=9)
    firsts = frame.sort_values("occurred_at").groupby("customer_id").head(1)
    logs = np.log(firsts["amount"].to_numpy() * 100)
    sigma = math.hypot(SPARSE.customer_spread, SPARSE.purchase_spread)
    assert abs(np.median(logs) - math.log(SPARSE.median_cents)) < 4 * sigma * 1.25 / math.sqrt(len(logs))
    assert abs(logs.std(ddof=1) / sigma - 1) < 0.05


def test_written_file_is_what_the_streamed_replay_reads(tmp_path: Path) -> None:
    path = tmp_path / "population.parquet"
    rows = write_population(path, 500, seed=2)
    read = load_table(path)
    frame = generate_population(500, seed=2)
    assert rows == len(frame) == len(read)
    assert read["event_id"].tolist() == frame["event_id"].tolist()
    assert read["customer_id"].tolist() == frame["customer_id"].tolist()
    assert (read["amount"].to_numpy() == frame["amount"].to_numpy()).all()
    got = read["occurred_at"].astype("datetime64[ms, UTC]").astype("int64")
    want = frame["occurred_at"].astype("datetime64[ms, UTC]").astype("int64")
    assert (got.to_numpy() == want.to_numpy()).all()
    assert (want.diff().dropna() >= 0).all() and want.iloc[-1] - want.iloc[0] < 730 * DAY_MS


@pytest.mark.parametrize(
    "bad",
    [{"r": 0.0}, {"alpha": -1.0}, {"acquisition_days": 0.0}, {"acquisition_days": 800.0}],
)
def test_bad_parameters_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        PopulationParams(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        generate_population(0, seed=1)

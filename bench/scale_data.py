"""The data ``bench/scale.py`` feeds the workers: the generated populations (cached), the quiet
grid days after the history, and the live purchases of an instant with new events."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from segstream.population_gen import DAY_MS, PRESETS, write_population
from segstream.sources import table_rows

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "scale"
REFIT_EVERY_MS = (
    28 * DAY_MS
)  # the evaluator's refit/churn/publish grid (state.evaluator.config.EvaluatorConfig)


def quiet_days_after(last_ms: int, days: int) -> int:
    """A UTC midnight after ``last_ms`` whose next ``days`` days are plain grid days (no refit/churn)."""
    day = (last_ms // DAY_MS + 1) * DAY_MS
    while any((day + k * DAY_MS) % REFIT_EVERY_MS == 0 for k in range(1, days + 1)):
        day += DAY_MS
    return day


def new_purchases(
    customers: list[str], count: int, day_ms: int, seed: int, span_ms: int = DAY_MS - 3_600_000
) -> pd.DataFrame:
    """``count`` purchases of distinct existing customers in ``[day_ms, day_ms + span_ms)``."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(customers), size=min(count, len(customers)), replace=False)
    at = day_ms + rng.integers(0, span_ms, chosen.size)
    return pd.DataFrame(
        {
            "event_id": [f"live:{day_ms}:{i}" for i in range(chosen.size)],
            "customer_id": [customers[i] for i in chosen.tolist()],
            "occurred_at": pd.to_datetime(at, unit="ms", utc=True),
            "amount": np.round(rng.lognormal(np.log(30.0), 0.6, chosen.size), 2),
            "type": "purchase",
        }
    )


def population(preset: str, customers: int, seed: int) -> tuple[Path, int, float | None]:
    """The cached Parquet file (written if missing), its rows and the seconds to generate it
    (None: it was cached)."""
    path = CACHE / f"{preset}-{customers}-seed{seed}.parquet"
    if path.exists():
        return path, int(table_rows(path) or 0), None
    started = time.perf_counter()
    rows = write_population(path, customers, seed, PRESETS[preset])
    return path, rows, time.perf_counter() - started

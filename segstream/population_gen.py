"""A seeded, BG/NBD-like purchase population for scale benchmarks (``bench/scale.py``).

Per customer, as in the BG/NBD model (Fader, Hardie and Lee 2005):

- a purchase rate ``λ ~ Gamma(shape=r, rate=alpha)`` per day, purchases a Poisson process while
  the customer is alive;
- a dropout probability ``p ~ Beta(a, b)``: after each *repeat* purchase the customer leaves for
  good with probability ``p`` (the first purchase never ends it, as in BG/NBD);
- the first purchase uniform over the first ``acquisition_days`` of the span; events after
  ``span_days`` are not observed;
- amounts log-normal in cents: a customer's typical basket ``exp(N(log(median), spread))``,
  each purchase log-normal around it.

The simulation walks purchase by purchase, vectorised over the customers still alive, so a
million customers take seconds. :func:`expected_events_per_customer` is the model's closed form
(the BG/NBD population expectation, averaged over the acquisition time): the tests hold the
simulation to it. Two presets: :data:`SPARSE` (about 4 events per customer over two years, like
the retail histories segstream replays) and :data:`DENSE` (about 40), to measure memory per
customer against events per customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DENSE",
    "PRESETS",
    "SPARSE",
    "PopulationParams",
    "expected_events_per_customer",
    "generate_population",
    "write_population",
]

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class PopulationParams:
    """The model's parameters; rates are per day, times in days from ``start``."""

    r: float = 0.5  # Gamma shape of λ
    alpha: float = 25.0  # Gamma rate of λ (days): mean λ = r / alpha
    a: float = 2.0  # Beta(a, b) dropout probability; a > 1 keeps E[1/p] finite
    b: float = 6.0
    span_days: float = 730.0  # two years of event time
    acquisition_days: float = 365.0  # first purchases fall uniformly in [0, acquisition_days)
    median_cents: float = 3000.0  # a typical basket
    customer_spread: float = 0.6  # sigma of log(typical basket) across customers
    purchase_spread: float = 0.4  # sigma of log(amount) around the customer's typical basket
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)

    def __post_init__(self) -> None:
        if min(self.r, self.alpha, self.a, self.b, self.median_cents) <= 0:
            raise ValueError("r, alpha, a, b and median_cents must be positive")
        if not 0 < self.acquisition_days <= self.span_days:
            raise ValueError("acquisition_days must lie in (0, span_days]")


SPARSE = PopulationParams()
"""About 4 events per customer over two years (see :func:`expected_events_per_customer`)."""
DENSE = PopulationParams(r=4.0, alpha=25.0, a=2.0, b=80.0)
"""About 40 events per customer over two years."""
PRESETS = {"sparse": SPARSE, "dense": DENSE}


def generate_population(customers: int, seed: int, params: PopulationParams = SPARSE) -> pd.DataFrame:
    """A history frame (``event_id, customer_id, occurred_at, amount, type``) sorted by time.

    The same ``customers``, ``seed`` and ``params`` give the same frame, row for row. Customer
    ids are ``c<index>``, event ids ``g<seed>:<index>:<n>`` (the customer's n-th purchase).
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    rng = np.random.default_rng(seed)
    rate = rng.gamma(params.r, 1.0 / params.alpha, customers)
    dropout = rng.beta(params.a, params.b, customers)
    first = rng.uniform(0.0, params.acquisition_days, customers)
    typical = np.log(params.median_cents) + rng.normal(0.0, params.customer_spread, customers)

    who: list[np.ndarray] = [np.arange(customers)]
    when: list[np.ndarray] = [first]
    alive = np.arange(customers)
    at = first.copy()
    while alive.size:
        at = at + rng.exponential(1.0, alive.size) / rate[alive]
        seen = at < params.span_days
        alive, at = alive[seen], at[seen]
        who.append(alive)
        when.append(at)
        stays = rng.uniform(size=alive.size) >= dropout[alive]
        alive, at = alive[stays], at[stays]

    index = np.concatenate(who)
    days = np.concatenate(when)
    order = np.lexsort((days, index))  # by customer, then time: the n-th purchase of each
    index, days = index[order], days[order]
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    nth = np.arange(index.size) - np.repeat(starts, np.diff(np.r_[starts, index.size]))
    cents = np.maximum(
        1, np.rint(np.exp(typical[index] + rng.normal(0.0, params.purchase_spread, index.size)))
    ).astype(np.int64)
    start_ms = int(params.start.timestamp() * 1000)
    occurred_ms = start_ms + np.floor(days * DAY_MS).astype(np.int64)
    frame = pd.DataFrame(
        {
            "event_id": [f"g{seed}:{c}:{n}" for c, n in zip(index.tolist(), nth.tolist(), strict=True)],
            "customer_id": [f"c{c}" for c in index.tolist()],
            "occurred_at": pd.to_datetime(occurred_ms, unit="ms", utc=True),
            "amount": cents / 100.0,
            "type": "purchase",
        }
    )
    return frame.sort_values(["occurred_at", "event_id"], kind="stable", ignore_index=True)


def expected_events_per_customer(params: PopulationParams = SPARSE) -> float:
    """The model's mean number of observed purchases per customer, first purchase included.

    BG/NBD's closed form for the expected repeat purchases in ``t`` days after the first,
    ``E[X(t)] = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t))^r * 2F1(r, b; a + b - 1; t / (alpha + t)))``,
    averaged over ``t = span - first`` with ``first`` uniform on ``[0, acquisition_days)``.
    """
    from scipy import integrate, special

    def repeats(t: float) -> float:
        z = t / (params.alpha + t)
        tail = (params.alpha / (params.alpha + t)) ** params.r * special.hyp2f1(
            params.r, params.b, params.a + params.b - 1.0, z
        )
        return float((params.a + params.b - 1.0) / (params.a - 1.0) * (1.0 - tail))

    low = params.span_days - params.acquisition_days
    total, _error = integrate.quad(repeats, low, params.span_days)
    return 1.0 + float(total) / params.acquisition_days


def write_population(path: Path, customers: int, seed: int, params: PopulationParams = SPARSE) -> int:
    """Generate and write a Parquet file ``segstream replay`` streams; return its row count."""
    frame = generate_population(customers, seed, params)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return len(frame)

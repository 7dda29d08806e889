"""Cohorts and best time read from the live stores: what the CLI and the HTTP pages show.

Both are computed when asked from every customer's counters (every state hash, then one
``HGETALL`` per customer and table, pipelined), so a query costs O(customers): seconds for tens
of thousands of customers (the README gives measured figures). The worker's HTTP pages keep a
result for ``SEGSTREAM_ANALYTICS_CACHE_S``.
"""

from __future__ import annotations

from dataclasses import dataclass

from state.analytics.best_time import (
    HOW_TABLE,
    Window,
    add_counts,
    block_counts,
    customer_shares,
    shrink,
    top_windows,
    uniform,
)
from state.analytics.cohorts import (
    CENTS_TABLE,
    ORDERS_TABLE,
    SPLIT_TABLES,
    CohortRow,
    Split,
    acquisition_groups,
    cohort_rows,
)
from state.customer.profile_store import ProfileStore
from state.customer.profiles import Profile
from state.customer.store import CustomerStore

__all__ = [
    "CustomerBestTime",
    "SegmentHours",
    "customer_best_time",
    "live_cohorts",
    "segment_hours",
    "segment_windows",
]


async def live_cohorts(store: CustomerStore, by: Split | None = None) -> list[CohortRow]:
    """The cohort table of everyone the store holds (split by ``by`` when given)."""
    buyers = [s.customer_id for s in await store.all_customers() if s.frequency > 0]
    orders = await store.tallies(ORDERS_TABLE, buyers)
    cents = await store.tallies(CENTS_TABLE, buyers)
    groups = acquisition_groups(orders, await store.tallies(SPLIT_TABLES[by], buyers)) if by else None
    return cohort_rows(orders, cents, groups)


@dataclass(frozen=True, slots=True)
class SegmentHours:
    """Block counts (56 a week) of the whole population and of each named segment's current members.

    ``segment_of`` maps each customer the segment evaluator has profiled to their named segment;
    customers it has not profiled yet count in the population only.
    """

    population: list[int]
    buyers: int
    segments: dict[str, list[int]]
    members: dict[str, int]
    segment_of: dict[str, str]


async def segment_hours(store: CustomerStore, profiles: ProfileStore) -> SegmentHours:
    """Sum every buyer's hour-of-week counters, overall and per current named segment."""
    saved = await profiles.load()
    segment_of = {
        str(r["customer_id"]): Profile(*r["profile"]).rfm_segment
        for r in (saved.records if saved else [])
        if r.get("profile") is not None
    }
    buyers = [s.customer_id for s in await store.all_customers() if s.frequency > 0]
    blocks = {c: block_counts(hours) for c, hours in (await store.tallies(HOW_TABLE, buyers)).items()}
    members: dict[str, list[list[int]]] = {}
    for customer, counts in blocks.items():
        segment = segment_of.get(customer)
        if segment is not None:
            members.setdefault(segment, []).append(counts)
    return SegmentHours(
        population=add_counts(blocks.values()),
        buyers=len(blocks),
        segments={s: add_counts(m) for s, m in sorted(members.items())},
        members={s: len(m) for s, m in sorted(members.items())},
        segment_of=segment_of,
    )


def segment_windows(hours: SegmentHours, n: int = 3) -> tuple[list[Window], dict[str, list[Window]]]:
    """Everyone's ``n`` best windows and each named segment's (by their own shares of purchases).

    Nobody bought yet: uniform shares; a segment without purchases: everyone's.
    """
    everyone = shrink(hours.population, uniform(), 0)
    segments = {s: top_windows(shrink(c, everyone, 0), everyone, n) for s, c in hours.segments.items()}
    return top_windows(everyone, everyone, n), segments


@dataclass(frozen=True, slots=True)
class CustomerBestTime:
    """A customer's best windows (blended shares) and the three profiles behind them."""

    customer_id: str
    segment: str | None
    purchases: int
    windows: list[Window]
    own: list[float]
    segment_shares: list[float]
    population: list[float]


async def customer_best_time(
    store: CustomerStore, hours: SegmentHours, customer_id: str, weight: float, n: int = 3
) -> CustomerBestTime | None:
    """The customer's ``n`` best windows, or None for a customer the store has never seen.

    ``own``, ``segment_shares`` and ``population`` are the unblended shares of the customer
    (zeros without a purchase), their segment (the population's while it has no purchase) and
    the population (uniform while nobody bought).
    """
    if await store.get(customer_id) is None:
        return None
    counts = block_counts(await store.tally(HOW_TABLE, customer_id))
    segment = hours.segment_of.get(customer_id)
    seg_counts = hours.segments.get(segment, [0] * len(counts)) if segment is not None else [0] * len(counts)
    blended = customer_shares(counts, seg_counts, hours.population, weight)
    population = customer_shares([0] * len(counts), [0] * len(counts), hours.population, 0)
    segment_shares = customer_shares([0] * len(counts), seg_counts, hours.population, 0)
    own = [c / sum(counts) for c in counts] if sum(counts) else [0.0] * len(counts)
    return CustomerBestTime(
        customer_id=customer_id,
        segment=segment,
        purchases=sum(counts),
        windows=top_windows(blended, population, n),
        own=own,
        segment_shares=segment_shares,
        population=population,
    )

"""``segstream cohorts`` and ``segstream best-time``: the live analytics read from Redis.

Both read every customer's counters from Redis (O(customers)); neither needs Kafka nor a
running worker.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from agents.settings import Settings
from segstream.export import write_frame
from state.analytics.analytics_reads import (
    CustomerBestTime,
    SegmentHours,
    customer_best_time,
    live_cohorts,
    segment_hours,
    segment_windows,
)
from state.analytics.best_time import Window
from state.analytics.cohorts import CohortRow, Split

__all__ = ["best_time_command", "best_time_lines", "cohort_frame", "cohorts_command", "segment_lines"]

COHORT_COLUMNS = ["cohort", "period", "customers", "active", "retention", "revenue"]


def cohort_frame(rows: Sequence[CohortRow], by: str | None = None) -> pd.DataFrame:
    """The cohort table as the CLI writes it: ``[by,] cohort, period, customers, active, retention, revenue``.

    >>> cohort_frame([CohortRow(None, "1997-01", 1, 4, 1, 1999)]).to_csv(index=False).splitlines()
    ['cohort,period,customers,active,retention,revenue', '1997-01,1,4,1,0.25,19.99']
    """
    frame = pd.DataFrame(
        {
            "cohort": pd.Series([r.cohort for r in rows], dtype=str),
            "period": pd.Series([r.period for r in rows], dtype="int64"),
            "customers": pd.Series([r.customers for r in rows], dtype="int64"),
            "active": pd.Series([r.active for r in rows], dtype="int64"),
            "retention": pd.Series([r.retention for r in rows], dtype="float64"),
            "revenue": pd.Series([r.revenue_cents / 100 for r in rows], dtype="float64"),
        }
    )
    if by:
        frame.insert(0, by, pd.Series([r.group for r in rows], dtype=str))
    return frame


async def cohorts_command(settings: Settings, by: Split | None, fmt: str, output: str) -> int:
    """Write the live cohort table (split by ``by``) as CSV or Parquet to ``output`` (``-``: stdout)."""
    from state.adapters.redis_store import RedisStore

    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        rows = await live_cohorts(store, by)
    finally:
        await store.close()
    write_frame(cohort_frame(rows, by), "parquet" if fmt == "parquet" else "csv", output)
    return 0


def _window_text(w: Window) -> str:
    return f"{w.name} ({w.share:.1%})"


def segment_lines(hours: SegmentHours, n: int = 3) -> list[str]:
    """The population's and each named segment's best windows, one line each."""
    everyone, segments = segment_windows(hours, n)
    lines = [
        f"everyone ({hours.buyers:,} buyers, {sum(hours.population):,} purchases): "
        + ", ".join(_window_text(w) for w in everyone)
    ]
    for segment, counts in hours.segments.items():
        lines.append(
            f"{segment} ({hours.members[segment]:,} customers, {sum(counts):,} purchases): "
            + ", ".join(_window_text(w) for w in segments[segment])
        )
    return lines


def best_time_lines(found: CustomerBestTime, weight: float) -> list[str]:
    """A customer's best windows with the shares behind each."""
    segment = found.segment or "no segment yet: shrunk toward everyone"
    lines = [
        f"customer {found.customer_id} ({segment}; {found.purchases:,} purchases, blended with the "
        f"segment's profile at a weight of {weight:g} purchases)"
    ]
    for i, w in enumerate(found.windows, 1):
        lines.append(
            f"  {i}. {w.name}: {w.share:.1%} (own {found.own[w.block]:.1%}, segment "
            f"{found.segment_shares[w.block]:.1%}, everyone {found.population[w.block]:.1%})"
        )
    return lines


async def best_time_command(settings: Settings, customer_id: str | None, windows: int) -> str | None:
    """Print a customer's best windows, or (no customer) every segment's; the error for an unknown customer."""
    from state.adapters.redis_profiles import RedisProfileStore
    from state.adapters.redis_store import RedisStore

    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        hours = await segment_hours(store, profiles)
        found = (
            await customer_best_time(store, hours, customer_id, settings.best_time_prior, windows)
            if customer_id is not None
            else None
        )
    finally:
        await store.close()
        await profiles.close()
    if customer_id is None:
        print("\n".join(segment_lines(hours, windows)))
        return None
    if found is None:
        return f"unknown customer {customer_id!r}"
    print("\n".join(best_time_lines(found, settings.best_time_prior)))
    return None

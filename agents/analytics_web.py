"""The worker's HTTP pages for cohorts and best time (Faust web), and their JSON documents.

- ``GET /cohorts[?by=channel|category]``: the cohort table (``schemas/http-cohorts.schema.json``);
- ``GET /best-time``: each named segment's and the population's best windows;
- ``GET /customers/{customer_id}/best-time``: the customer's best windows, their own profile
  shrunk toward their segment's (``schemas/http-best-time.schema.json``); 404 for a customer the
  store has never seen.

Each reads every customer's counters (O(customers)), so a result is kept for
``SEGSTREAM_ANALYTICS_CACHE_S`` seconds; a customer's page reads their own counters fresh and
only the segment profiles from the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast, get_args

import faust

from agents.settings import Settings
from state.analytics.analytics_reads import (
    CustomerBestTime,
    SegmentHours,
    customer_best_time,
    live_cohorts,
    segment_hours,
    segment_windows,
)
from state.analytics.best_time import BLOCK_HOURS, Window
from state.analytics.cohorts import CohortRow, Split
from state.customer.profile_store import ProfileStore
from state.customer.store import CustomerStore
from streams.outputs import SCHEMA_VERSION, rfc3339

__all__ = [
    "TtlCache",
    "best_time_document",
    "cohorts_document",
    "register_analytics_pages",
    "segments_best_time_document",
]

T = TypeVar("T")
SPLITS: tuple[str, ...] = get_args(Split)


class TtlCache:
    """Results by key, each kept ``ttl_s`` seconds; one computation per key at a time (no stampede)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s, self._clock = ttl_s, clock
        self._kept: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str, compute: Callable[[], Awaitable[T]]) -> T:
        async with self._locks.setdefault(key, asyncio.Lock()):
            kept = self._kept.get(key)
            if kept is not None and self._clock() - kept[0] < self._ttl_s:
                return cast(T, kept[1])
            value = await compute()
            self._kept[key] = (self._clock(), value)
            return value


def cohorts_document(rows: Sequence[CohortRow], by: str | None, watermark_ms: int | None) -> dict[str, Any]:
    """The JSON of ``GET /cohorts``: one row per (group,) cohort and period, revenue in money."""
    return {
        "schema_version": SCHEMA_VERSION,
        "as_of": rfc3339(watermark_ms) if watermark_ms is not None else None,
        "by": by,
        "rows": [
            {
                **({by: r.group} if by else {}),
                "cohort": r.cohort,
                "period": r.period,
                "customers": r.customers,
                "active": r.active,
                "retention": r.retention,
                "revenue": r.revenue_cents / 100,
            }
            for r in rows
        ],
    }


def _window(w: Window, *profiles: tuple[str, Sequence[float]]) -> dict[str, Any]:
    start = w.start_hour
    return {
        "window": w.name,
        "day": w.day,
        "start_hour": start,
        "end_hour": start + BLOCK_HOURS,
        "share": w.share,
        **{name: shares[w.block] for name, shares in profiles},
    }


def best_time_document(found: CustomerBestTime, weight: float) -> dict[str, Any]:
    """The JSON of ``GET /customers/{id}/best-time``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "customer_id": found.customer_id,
        "segment": found.segment,
        "purchases": found.purchases,
        "prior_weight": weight,
        "windows": [
            _window(
                w,
                ("customer_share", found.own),
                ("segment_share", found.segment_shares),
                ("population_share", found.population),
            )
            for w in found.windows
        ],
    }


def segments_best_time_document(hours: SegmentHours, n: int = 3) -> dict[str, Any]:
    """The JSON of ``GET /best-time``: the population's and each named segment's ``n`` best windows."""
    everyone, segments = segment_windows(hours, n)

    def entry(counts: Sequence[int], customers: int, windows: list[Window]) -> dict[str, Any]:
        return {"customers": customers, "purchases": sum(counts), "windows": [_window(w) for w in windows]}

    return {
        "schema_version": SCHEMA_VERSION,
        "population": entry(hours.population, hours.buyers, everyone),
        "segments": {s: entry(c, hours.members[s], segments[s]) for s, c in hours.segments.items()},
    }


def register_analytics_pages(
    app: faust.App, store: CustomerStore, profiles: ProfileStore, settings: Settings
) -> None:
    cache = TtlCache(settings.analytics_cache_s)

    async def hours() -> SegmentHours:
        return await cache.get("segment-hours", lambda: segment_hours(store, profiles))

    @app.page("/cohorts")
    async def cohorts(web: Any, request: Any) -> Any:
        by = request.query.get("by") or None
        if by is not None and by not in SPLITS:
            return web.json({"error": f"unknown split {by!r}: use by=channel or by=category"}, status=400)
        rows = await cache.get(f"cohorts:{by}", lambda: live_cohorts(store, cast(Split | None, by)))
        return web.json(cohorts_document(rows, by, await store.watermark()))

    @app.page("/best-time")
    async def segments_best_time(web: Any, request: Any) -> Any:
        return web.json(segments_best_time_document(await hours()))

    @app.page("/customers/{customer_id}/best-time")
    async def best_time(web: Any, request: Any, customer_id: str) -> Any:
        found = await customer_best_time(store, await hours(), customer_id, settings.best_time_prior)
        if found is None:
            return web.json({"error": f"unknown customer {customer_id!r}"}, status=404)
        return web.json(best_time_document(found, settings.best_time_prior))

"""``segstream reviews`` and ``segstream replay generated-reviews``: the review commands' I/O.

``reviews`` reads the review counters and the current profiles from Redis and prints (or writes)
:func:`segstream.reviews.reviews_table`; ``replay generated-reviews`` generates reviews
(``segstream.reviews``: the data is generated, see there why) for the customers in the store
and publishes them to ``reviews``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import pandas as pd

from agents.settings import Settings
from segstream.reviews import generate_reviews, replay_reviews, reviews_table
from state.adapters.redis_profiles import RedisProfileStore
from state.adapters.redis_reviews import RedisReviewStore
from state.adapters.redis_store import RedisStore
from state.analytics.review_store import reviews_report
from state.segments.segments import load_preset
from streams.outputs import rfc3339

__all__ = ["GENERATED_REVIEWS", "print_reviews", "publish_generated_reviews"]

GENERATED_REVIEWS = 10_000
"""Reviews ``segstream replay generated-reviews`` publishes without ``--limit``."""


async def print_reviews(
    settings: Settings, by: Literal["region", "segment"], fmt: Literal["table", "csv"], output: str
) -> int:
    """Print (``output`` ``-``) or write the review figures per region or per current segment."""
    reviews = RedisReviewStore.connect(settings.redis_access, settings.redis_prefix)
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        report = await reviews_report(reviews, profiles, load_preset(settings.segment_preset).segments)
    finally:
        await reviews.close()
        await profiles.close()
    table = reviews_table(report, by)
    if fmt == "csv":
        table.to_csv(sys.stdout if output == "-" else Path(output), index=False)
        return 0
    if report["all"]["count"] == 0:
        text = "no reviews yet\n"
    else:
        as_of = report["as_of_ms"]
        basis = (
            f"by current segment, as of {rfc3339(as_of)} (the segment evaluator's clock)"
            if as_of is not None
            else "by current segment: no segments yet (every reviewer is 'unknown')"
        )
        head = "per region" if by == "region" else basis
        text = f"{report['all']['count']:,} reviews, {head}\n{_text(table)}\n"
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
    return 0


def _text(table: pd.DataFrame) -> str:
    return table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="n/a")


async def publish_generated_reviews(
    settings: Settings, limit: int | None, speed: float | None, progress: bool
) -> str:
    """Generate ``limit`` reviews (default :data:`GENERATED_REVIEWS`) by the store's customers, promised
    dates over the year before the event-time watermark, publish them; the line to print.

    Raises ``ValueError`` when the store has no customer yet.
    """
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        customers = sorted(state.customer_id for state in await store.all_customers())
        watermark = await store.watermark()
    finally:
        await store.close()
    if not customers or watermark is None:
        raise ValueError("no customers in the store yet: replay purchases first (segstream replay cdnow)")
    end = pd.Timestamp(watermark, unit="ms", tz="UTC") - pd.Timedelta(days=30)
    reviews = generate_reviews(customers, limit or GENERATED_REVIEWS, end - pd.Timedelta(days=365), end)
    report = replay_reviews(reviews, settings, speed=speed, progress=progress)
    return f"published {report.sent} generated reviews to reviews in {report.seconds:.1f}s"

"""The worker's ``reviews`` topic: its agent, its metrics and ``GET /reviews``.

Installed into the worker app by :func:`install_reviews` (``agents.worker``): each batch of
``reviews`` is folded into the review counters (``agents.ingest.ingest_review_batch``), bad ones
go to ``reviews.dlq``. ``GET /reviews`` (``schemas/http-reviews.schema.json``) serves
:func:`state.analytics.review_store.reviews_report`: every region's and every current named segment's
count, mean score, distribution, late share and late gap; any worker serves it (it reads Redis).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import faust
from prometheus_client import Counter, Histogram

from agents.ingest import RawMessage, ingest_review_batch
from agents.metrics import REGISTRY
from agents.pipeline import Finish, batch_agent, dead_letter_publisher
from agents.settings import Settings
from state.customer.profile_store import ProfileStore
from state.adapters.redis_retry import OnRetry
from state.adapters.redis_reviews import RedisReviewStore
from state.adapters.retry import RetryPolicy
from state.analytics.review_store import ReviewOutcome, ReviewStore, reviews_report
from state.segments.segments import Preset
from state.customer.store import CustomerStore
from streams import topics
from streams.outputs import SCHEMA_VERSION, rfc3339

__all__ = ["install_reviews", "reviews_page_document"]

REVIEW_EVENTS = Counter(
    "segstream_review_events",
    "reviews messages consumed, by outcome (applied, duplicate, redelivered, region_refused, invalid)",
    ["outcome"],
    registry=REGISTRY,
)
REVIEW_BATCH_SECONDS = Histogram(
    "segstream_review_batch_seconds",
    "Time to validate, fold and dead-letter one batch of reviews",
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def observe_review_batch(seconds: float, outcomes: Sequence[ReviewOutcome], invalid: int) -> None:
    """Count one batch's outcomes; a refused region counts under ``region_refused`` and ``invalid``."""
    REVIEW_BATCH_SECONDS.observe(seconds)
    for outcome in outcomes:
        REVIEW_EVENTS.labels(outcome.name.lower()).inc()
    refused = sum(o is ReviewOutcome.REGION_REFUSED for o in outcomes)
    REVIEW_EVENTS.labels("invalid").inc(max(invalid - refused, 0))


async def reviews_page_document(
    reviews: ReviewStore, profiles: ProfileStore, segment_order: Sequence[str]
) -> dict[str, Any]:
    """The JSON of ``GET /reviews``."""
    report = await reviews_report(reviews, profiles, segment_order)
    as_of_ms = report.pop("as_of_ms")
    return {
        "schema_version": SCHEMA_VERSION,
        "segments_as_of": rfc3339(as_of_ms) if as_of_ms is not None else None,
        **report,
    }


def install_reviews(
    app: faust.App,
    settings: Settings,
    store: CustomerStore,
    profiles: ProfileStore,
    preset: Preset,
    retry: RetryPolicy,
    on_retry: OnRetry,
    finish: Finish,
) -> str:
    """Add the ``reviews`` agent and ``GET /reviews`` to ``app``; return the topic's full name
    (the worker resumes its partitions from Redis's consumed offsets like the other inputs)."""
    source = topics.declare(app, settings, topics.REVIEWS)
    dead_letters = topics.declare(app, settings, topics.REVIEWS_DLQ)
    limits = settings.input_limits()
    reviews = RedisReviewStore.connect(
        settings.redis_access,
        settings.redis_prefix,
        max_regions=settings.review_max_regions,
        retry=retry,
        on_retry=on_retry,
    )

    publish_dead_letters = dead_letter_publisher(dead_letters)

    async def process(messages: list[RawMessage]) -> None:
        started = time.perf_counter()
        result = await ingest_review_batch(messages, store, reviews, publish_dead_letters, limits=limits)
        observe_review_batch(time.perf_counter() - started, result.outcomes, len(result.invalid_reasons))

    batch_agent(app, source, "reviews", settings, process, finish)

    @app.page("/reviews")
    async def page(web: Any, request: Any) -> Any:
        return web.json(await reviews_page_document(reviews, profiles, preset.segments))

    return settings.topic(topics.REVIEWS)

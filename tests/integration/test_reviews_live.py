"""Reviews on real services: the Redis counters against the in-memory reference, and a worker.

The reviews are generated (``segstream.reviews``; no public review data is reachable here), so
the answer is known: pandas group-bys of the generated frame. The worker test publishes the
purchases of 60 CDNOW-sample customers (so the evaluator gives them current segments), then
reviews by them and by 20 customers without purchases, 10% of them sent twice, and 3 invalid
messages; ``GET /reviews`` and ``segstream reviews`` must equal pandas, ``reviews.dlq`` must
hold the invalid ones with their reasons.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import time
from collections.abc import AsyncIterator

import pandas as pd
import pytest

from agents.settings import Settings
from segstream.kafka_io import Publisher, end_offsets, read_topic
from segstream.replay import replay_history
from segstream.reviews import generate_reviews, review_wire_events
from segstream.sources import load_cdnow, occurred_at_ms
from state.adapters.redis_profiles import RedisProfileStore
from state.adapters.redis_reviews import RedisReviewStore
from state.adapters.redis_store import RedisStore
from state.analytics.review_store import MemoryReviewStore, ReviewDelivery, ReviewOutcome, ReviewStore
from state.analytics.reviews import UNKNOWN_SEGMENT, combine
from state.segments.segments import load_preset
from streams.review_contract import Review
from streams.topics import REVIEWS, REVIEWS_DLQ
from tests.conftest import WorkerFactory
from tests.integration.test_pipeline import run_cli
from tests.integration.test_segments_live import get, wait_for_clock
from tests.schema_helpers import validate, validate_json
from tests.unit.test_reviews import assert_rows_equal, pandas_figures

pytestmark = pytest.mark.integration

START, END = pd.Timestamp("1997-03-01", tz="UTC"), pd.Timestamp("1998-03-01", tz="UTC")
SEGMENTS = load_preset("rfm11").segments


@pytest.fixture(params=["memory", "redis"])
async def reviews(request: pytest.FixtureRequest) -> AsyncIterator[ReviewStore]:
    if request.param == "memory":
        yield MemoryReviewStore(max_regions=2)
        return
    settings: Settings = request.getfixturevalue("settings")
    store = RedisReviewStore.connect(settings.redis_access, settings.redis_prefix, max_regions=2)
    yield store
    await store.close()


def review(
    event_id: str, customer: str, score: int, region: str, dates: tuple[int, int] | None = None
) -> Review:
    delivered, promised = dates or (None, None)
    return Review(event_id, f"o-{event_id}", customer, score, region, 10, delivered, promised)


async def test_store_contract_fences_dedupe_and_region_limit(reviews: ReviewStore) -> None:
    first = [
        ReviewDelivery(review("r1", "c:1", 5, "north", (5, 9)), "reviews", 0, 0),  # on time
        ReviewDelivery(review("r2", "c:1", 1, "north", (9, 5)), "reviews", 0, 1),  # late
        ReviewDelivery(review("r1", "c:1", 5, "north", (5, 9)), "reviews", 0, 2),  # resent
        ReviewDelivery(review("r3", "c{2}", 3, "south:x|y"), "reviews", 1, 0),  # undated, odd ids
        ReviewDelivery(review("r4", "c{2}", 2, "east"), "reviews", 1, 1),  # a third region
    ]
    assert await reviews.apply_reviews(first, {}) == [
        ReviewOutcome.APPLIED,
        ReviewOutcome.APPLIED,
        ReviewOutcome.DUPLICATE,
        ReviewOutcome.APPLIED,
        ReviewOutcome.REGION_REFUSED,
    ]
    assert await reviews.apply_reviews(first, {}) == [  # Kafka redelivers the batch
        ReviewOutcome.REDELIVERED,
        ReviewOutcome.REDELIVERED,
        ReviewOutcome.REDELIVERED,
        ReviewOutcome.REDELIVERED,
        ReviewOutcome.REGION_REFUSED,
    ]
    # a recreated topic starts a new fence epoch: offset 0 again, new events count, resends still do not
    again = [
        ReviewDelivery(review("r5", "c:1", 4, "north"), "reviews", 0, 0),
        ReviewDelivery(review("r2", "c:1", 1, "north", (9, 5)), "reviews", 0, 1),
    ]
    assert await reviews.apply_reviews(again, {"reviews": 1}) == [
        ReviewOutcome.APPLIED,
        ReviewOutcome.DUPLICATE,
    ]
    north = combine([{"n": 3, "sum": 10, "s1": 1, "s4": 1, "s5": 1, "late": 1, "late_sum": 1, "on_time": 1}])
    north |= {"on_time_sum": 5, "undated": 1}
    south = combine([{"n": 1, "sum": 3, "s3": 1, "undated": 1}])
    assert await reviews.regions() == {"north": north, "south:x|y": south}
    assert await reviews.customers() == {"c:1": north, "c{2}": south}


def consumed_all(settings: Settings, topic: str) -> bool:
    async def go() -> dict[int, int]:
        store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
        try:
            return await store.consumed(topic)
        finally:
            await store.close()

    ends = {p: o for p, o in end_offsets(settings, topic).items() if o > 0}
    consumed = asyncio.run(go())
    return all(consumed.get(p, 0) >= o for p, o in ends.items())


def current_segments(settings: Settings) -> dict[str, str]:
    async def go() -> dict[str, str]:
        profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
        try:
            saved = await profiles.load()
        finally:
            await profiles.close()
        assert saved is not None
        return {str(r["customer_id"]): r["profile"][3] for r in saved.records if r["profile"] is not None}

    return asyncio.run(go())


def test_worker_counts_generated_reviews_as_pandas_does(
    settings: Settings, start_worker: WorkerFactory
) -> None:
    history = load_cdnow(sample=True)
    buyers = sorted(history["customer_id"].unique())[:60]
    history = history[history["customer_id"].isin(buyers)]
    web = settings.model_copy(update={"web_enabled": True})
    worker = start_worker(web)
    replay_history(history, settings, progress=False)  # ticks after its last event
    frame = generate_reviews([*buyers, *(f"no-purchase-{i}" for i in range(20))], 600, START, END, seed=11)
    rng = random.Random(11)
    wire = list(review_wire_events(frame))
    wire += rng.sample(wire, len(wire) // 10)  # producer resends: same event_id
    rng.shuffle(wire)
    bad = {
        b'{"event_id":"b1","order_id":"o","customer_id":"c","score":7,"region":"north","occurred_at":0}': "score:",
        b"\xff{": "payload: not UTF-8",
        json.dumps({**json.loads(wire[0][1]), "region": "r" * 300}).encode(): "region:",
    }
    publisher = Publisher(settings)
    try:
        for key, value in wire:
            publisher.send(settings.topic(REVIEWS), key, value)
        for value in bad:
            publisher.send(settings.topic(REVIEWS), "bad", value)
        publisher.flush()
    finally:
        publisher.close()
    wait_for_clock(settings, max(occurred_at_ms(history)) + 1, worker)
    deadline = time.monotonic() + 60
    while not consumed_all(settings, settings.topic(REVIEWS)):
        assert worker.poll() is None and time.monotonic() < deadline, "reviews not consumed"
        time.sleep(0.25)

    status, body = get(f"http://127.0.0.1:{web.web_port}/reviews")
    assert status == 200
    validate("http-reviews", body)
    segment_of = current_segments(settings)
    assert set(segment_of) == set(buyers)
    with_segment = frame.assign(segment=frame["customer_id"].map(segment_of).fillna(UNKNOWN_SEGMENT))
    assert_rows_equal(body["regions"], "region", pandas_figures(frame, "region"))
    assert_rows_equal(body["segments"], "segment", pandas_figures(with_segment, "segment"))
    assert body["all"]["count"] == len(frame) and body["segments_as_of"] is not None

    printed = run_cli(settings, "reviews", "--by", "segment", "--format", "csv")
    table = pd.read_csv(io.StringIO(printed)).set_index("segment")
    expected = pandas_figures(with_segment, "segment")
    assert table.loc[[s for s in table.index if s != "all"], "reviews"].to_dict() == {
        s: f["count"] for s, f in expected.items()
    }
    assert table.loc["all", "late_gap"] == pytest.approx(
        pandas_figures(frame.assign(a=1), "a")["1"]["late_gap"]
    )
    assert "reviews, per region" in run_cli(settings, "reviews")

    letters = [
        validate_json("purchase-dlq", m.value) for m in read_topic(settings, settings.topic(REVIEWS_DLQ))
    ]
    assert {letter["source"]["topic"] for letter in letters} == {settings.topic(REVIEWS)}
    reasons = [letter["reason"] for letter in letters]
    assert len(reasons) == len(bad) and all(any(r.startswith(s) for r in reasons) for s in bad.values()), (
        reasons
    )

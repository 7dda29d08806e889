"""Provisional changes on real services: a live purchase answered before the clock evaluates it.

A plain kafka-python producer (no segstream code on the sending side) publishes a generated
history dated the last three weeks (generated: the test needs event times near now, which no real
data set has), the default watermark clock evaluates it, then live purchases arrive (event time
now) for customers with a profile and for new ones. Each gets a ``provisional: true`` change from
the worker that folded it, scored against the versions the evaluator had saved; later the clock
passes them and the evaluated changes follow. ``customer-segments`` holds evaluated profiles only,
and the non-provisional changes still fold to them.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from agents.settings import Settings
from state.adapters.redis_profiles import RedisProfileStore
from state.customer.profiles import fold_changes
from state.segments.cutpoints import CutPoints, scores_at
from tests.conftest import WorkerFactory, wait_for_stats
from tests.integration.test_segments_live import (
    as_changes,
    changes_of,
    latest_profiles,
    profile,
    wait_for_clock,
)
from tests.plain_producer import publish_plain

pytestmark = pytest.mark.integration
DAY_MS = 86_400_000


def saved_cutpoints(settings: Settings) -> CutPoints:
    async def go() -> CutPoints:
        store = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
        try:
            saved = await store.versions()
        finally:
            await store.close()
        assert saved.cutpoints_json is not None
        return CutPoints.from_json(saved.cutpoints_json)

    return asyncio.run(go())


def event(event_id: str, customer: str, at_ms: int, amount: float) -> tuple[str, bytes]:
    value = {"event_id": event_id, "customer_id": customer, "occurred_at": at_ms, "amount": amount}
    return customer, json.dumps(value).encode()


def test_live_purchases_get_provisional_changes_then_evaluated_ones(
    settings: Settings, start_worker: WorkerFactory
) -> None:
    live = settings.model_copy(
        update={"clock": "watermark", "clock_idle_timeout_s": 2.0, "web_enabled": True}
    )
    worker = start_worker(live)
    rng = np.random.default_rng(3)
    now = int(time.time() * 1000)
    history = [
        event(
            f"h{i}",
            f"c{i % 80}",
            now - 3_600_000 - int(rng.integers(0, 21 * DAY_MS)),
            float(rng.integers(5, 200)),
        )
        for i in range(300)
    ]
    publish_plain(live, history)
    wait_for_stats(live, lambda s: s.applied >= len(history), [worker])
    newest = max(json.loads(v)["occurred_at"] for _, v in history)
    wait_for_clock(live, newest + 1, worker, timeout_s=120)  # partitions idle: caught up
    assert not [c for c in changes_of(live) if c["provisional"]]  # an hour old: not live, none
    cutpoints = saved_cutpoints(live)
    before = latest_profiles(live)

    sent_at = int(time.time() * 1000)
    purchases = [
        event(f"live{i}", c, sent_at + i, 42.0 + i)
        for i, c in enumerate(["c1", "c2", "c3", "n1", "n2", "n3"])
    ]
    publish_plain(live, purchases)
    buyers = {key for key, _ in purchases}
    deadline = time.monotonic() + 60
    early: dict[str, dict[str, Any]] = {}
    while set(early) != buyers:
        assert worker.poll() is None and time.monotonic() < deadline, (
            f"provisional changes so far: {sorted(early)}"
        )
        time.sleep(0.2)
        early = {c["customer_id"]: c for c in changes_of(live) if c["provisional"]}
    for key, value in purchases:
        doc, sent = early[key], json.loads(value)
        assert doc["reason"] == "purchase" and doc["change_id"] == f"{key}@{sent['occurred_at']}~provisional"
        assert doc["cutpoint_version"] == cutpoints.version
        assert profile(doc["before"]) == profile(before.get(key))  # the last evaluated profile (None: new)
        if key.startswith("n"):  # one purchase: the scores follow from the saved cut-points alone
            cents = round(sent["amount"] * 100)
            assert (doc["after"]["r_score"], doc["after"]["f_score"], doc["after"]["m_score"]) == scores_at(
                cutpoints, sent["occurred_at"], 1, cents, sent["occurred_at"]
            )

    newest_live = max(json.loads(v)["occurred_at"] for _, v in purchases)
    wait_for_clock(live, newest_live + 1, worker, timeout_s=120)
    final = [c for c in changes_of(live) if not c["provisional"]]
    evaluated = defaultdict(list)
    for c in final:
        evaluated[c["customer_id"]].append(c)
    latest = latest_profiles(live)
    folded = fold_changes(as_changes(final))  # the chain holds without the provisional changes
    assert folded == {c: profile(doc) for c, doc in latest.items()}
    for key in buyers:  # the evaluated change for the live purchase came after the provisional one
        assert any(c["occurred_at"] > early[key]["occurred_at"] for c in evaluated[key])

    # the latencies start at each message's arrival in the worker (Faust's monitor stamps it)
    metrics = scrape(live)
    assert metrics["segstream_receipt_to_provisional_change_seconds_count"] >= len(purchases)
    assert metrics["segstream_batch_wait_seconds_count"] >= 1  # arrivals were known, not the batch start


def scrape(settings: Settings) -> dict[str, float]:
    """The worker's ``/metrics`` samples without labels, by name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=10) as page:
        text = page.read().decode()
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in text.splitlines() if line and line[0] != "#")
        if "{" not in name
    }

"""Cohorts and best time through a real worker, Kafka and Redis: equal to pandas, never counted twice.

The CDNOW sample (6,919 purchases) plus a customer who shops on Saturday mornings in Tokyo
(``+09:00``) is published shuffled with 10% producer resends; then ``segstream cohorts`` (CSV)
and ``GET /cohorts`` must equal the pandas oracle cell for cell, and the Tokyo customer's best
window must be their local Saturday 09-12. Then every message is **redelivered**: the worker is
stopped, Redis's record of consumed offsets is deleted, and a new worker reads the whole topic
again from offset 0; every counter, and so every table, must stay the same.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pandas as pd
import pytest
import redis

from agents.settings import Settings
from segstream.analytics_cli import cohort_frame
from segstream.cli import main
from segstream.cohort_oracle import cohort_mismatches, oracle_cohorts
from segstream.demo import stop_worker
from segstream.kafka_io import Publisher
from segstream.sources import load_cdnow, wire_events
from state.analytics.analytics_reads import live_cohorts
from state.analytics.best_time import HOW_TABLE
from state.analytics.cohorts import CENTS_TABLE, ORDERS_TABLE
from state.adapters.redis_store import RedisStore
from streams.contract import encode_purchase
from streams.topics import PURCHASES
from tests.conftest import WorkerFactory, wait_for_stats
from tests.integration.test_segments_live import get
from tests.schema_helpers import validate

pytestmark = pytest.mark.integration

TOKYO = [f"1998-0{m}-{d:02d}T10:30:00+09:00" for m, d in ((3, 7), (3, 14), (4, 4), (5, 2))]  # Saturdays


def tokyo_history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": [f"tokyo-{i}" for i in range(len(TOKYO))],
            "customer_id": "tokyo",
            "occurred_at": pd.to_datetime(TOKYO, utc=True),
            "amount": 12.34,
            "type": "purchase",
        }
    )


def counters(settings: Settings, customers: list[str]) -> dict[str, dict[str, dict[str, int]]]:
    async def go() -> dict[str, dict[str, dict[str, int]]]:
        store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
        try:
            return {t: await store.tallies(t, customers) for t in (ORDERS_TABLE, CENTS_TABLE, HOW_TABLE)}
        finally:
            await store.close()

    return asyncio.run(go())


def live_table(settings: Settings) -> pd.DataFrame:
    """The table the CLI writes, computed in-process (saves starting a Python for the same code)."""

    async def go() -> pd.DataFrame:
        store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
        try:
            return cohort_frame(await live_cohorts(store))
        finally:
            await store.close()

    return asyncio.run(go())


def cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> str:
    """``segstream ARGV`` run in-process (the CLI's own code, configured by the environment); its stdout."""
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_cohorts_and_best_time_equal_pandas_through_resends_and_a_full_redelivery(
    settings: Settings,
    start_worker: WorkerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    history = pd.concat([load_cdnow(sample=True), tokyo_history()], ignore_index=True)
    messages = list(wire_events(history.iloc[: -len(TOKYO)]))
    messages += [
        ("tokyo", encode_purchase(event_id=f"tokyo-{i}", customer_id="tokyo", occurred_at=at, amount=12.34))
        for i, at in enumerate(TOKYO)
    ]
    rng = random.Random(12)
    stream = messages + rng.sample(messages, len(messages) // 10)  # producer resends: same event_id
    rng.shuffle(stream)

    web = settings.model_copy(update={"web_enabled": True})
    worker = start_worker(web)
    publisher = Publisher(settings)
    try:
        for key, value in stream:
            publisher.send(settings.topic(PURCHASES), key, value)
        publisher.flush()
    finally:
        publisher.close()
    stats = wait_for_stats(settings, lambda s: s.applied + s.duplicates >= len(stream), [worker])
    assert (stats.applied, stats.duplicates) == (len(messages), len(stream) - len(messages))

    expected = oracle_cohorts(history)
    assert len(expected) > 50  # the sample's buyers all came in Q1 1997: 3 cohorts x 18 months, and Tokyo
    written = tmp_path / "cohorts.csv"
    cli(settings, monkeypatch, capsys, "cohorts", "--format", "csv", "--output", str(written))
    assert cohort_mismatches(pd.read_csv(written, dtype={"cohort": str}), expected) == []
    status, body = get(f"http://127.0.0.1:{web.web_port}/cohorts")
    assert status == 200
    validate("http-cohorts", body)
    assert cohort_mismatches(pd.DataFrame(body["rows"]), expected) == []
    assert get(f"http://127.0.0.1:{web.web_port}/cohorts?by=region")[0] == 400

    status, best = get(f"http://127.0.0.1:{web.web_port}/customers/tokyo/best-time")
    assert status == 200
    validate("http-best-time", best)
    assert best["windows"][0]["window"] == "Saturday 09-12" and best["windows"][0]["customer_share"] == 1.0
    assert best["purchases"] == len(TOKYO)  # no clock tick, no segment yet: shrunk toward everyone
    assert get(f"http://127.0.0.1:{web.web_port}/customers/nobody/best-time")[0] == 404
    status, segments = get(f"http://127.0.0.1:{web.web_port}/best-time")
    assert status == 200
    validate("http-best-time-segments", segments)
    # no segment yet: (own + k x everyone's share) / (purchases + k), k = 5; CDNOW's times are midnights
    share = (len(TOKYO) + 5 * len(TOKYO) / len(history)) / (len(TOKYO) + 5)
    assert f"1. Saturday 09-12: {share:.1%}" in cli(settings, monkeypatch, capsys, "best-time", "tokyo")

    customers = sorted(history["customer_id"].unique())
    before = counters(settings, customers)
    stop_worker(worker, timeout_s=20)
    redis.Redis.from_url(settings.redis_url).delete(f"{settings.redis_prefix}seg:consumed")
    again = start_worker(settings, name="again")  # resumes every partition at offset 0
    wait_for_stats(settings, lambda s: s.redelivered >= len(stream), [again])
    assert counters(settings, customers) == before
    assert cohort_mismatches(live_table(settings), expected) == []

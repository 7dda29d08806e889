"""The whole path on real services: replay through Kafka, a worker process, Redis, export.

Checks the README's "How exactly-once works": exactly-once effect over at-least-once delivery,
order-insensitivity, and bad input dead-lettered without stopping the worker.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agents.settings import Settings
from segstream.batch import rfm_table
from segstream.kafka_io import Publisher, read_topic
from segstream.replay import replay_history
from segstream.sources import load_cdnow, occurred_at_ms, wire_events
from state.adapters.redis_profiles import RedisProfileStore
from streams.topics import PURCHASES, PURCHASES_DLQ
from tests.conftest import WorkerFactory, purchase, wait_for_stats
from tests.schema_helpers import validate_json

pytestmark = pytest.mark.integration

CDNOW_EVENTS, CDNOW_CUSTOMERS = 69_659, 23_570


def run_cli(settings: Settings, *args: str) -> str:
    """Run ``segstream ARGS`` as a user would, configured by ``settings``; return its stdout."""
    env = settings.to_env()
    result = subprocess.run(
        [sys.executable, "-m", "segstream", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def export_customers(settings: Settings, path: Path) -> pd.DataFrame:
    """``segstream export customers`` to Parquet, read back."""
    run_cli(settings, "export", "customers", "--format", "parquet", "--output", str(path))
    return pd.read_parquet(path)


def assert_same_table(live: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Every customer, every column, cents exact."""
    assert list(live["customer_id"]) == list(expected["customer_id"])
    for column in ("frequency", "purchase_days", "monetary_cents", "refunds", "recency_days"):
        mismatched = (live[column].astype("int64") != expected[column].astype("int64")).sum()
        assert mismatched == 0, f"{mismatched} customers differ in {column}"
    for column in ("first_purchase_at", "last_purchase_at"):
        assert (live[column] == expected[column]).all(), f"customers differ in {column}"


def test_cdnow_master_replay_equals_pandas(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    history = load_cdnow()
    worker = start_worker(settings)
    report = replay_history(history, settings, progress=False)
    assert report.sent == CDNOW_EVENTS

    stats = wait_for_stats(settings, lambda s: s.applied >= CDNOW_EVENTS, [worker])
    assert (stats.applied, stats.customers, stats.invalid) == (CDNOW_EVENTS, CDNOW_CUSTOMERS, 0)

    live = export_customers(settings, tmp_path / "customers.parquet")
    assert len(live) == CDNOW_CUSTOMERS
    expected = rfm_table(history)
    assert_same_table(live, expected)
    assert_scores_and_segments(live, expected)

    table = run_cli(settings, "segments")
    assert table.splitlines()[0] == f"{CDNOW_CUSTOMERS:,} customers, preset rfm11"
    for name, size in live["rfm_segment"].value_counts().items():
        row = next(line for line in table.splitlines() if line.startswith(str(name)))
        assert row[len(str(name)) :].split()[0] == str(size), row

    # the live path: the replay's last clock tick evaluates the whole history; a subscriber that
    # bootstraps from customer-segments then holds exactly the exported scores, segments, clusters
    from tests.integration.test_segments_live import (
        assert_profiles_equal_export,
        latest_profiles,
        wait_for_clock,
    )

    last = max(occurred_at_ms(history))
    wait_for_clock(settings, last + 1, worker, timeout_s=600)
    clustered = export_customers(settings, tmp_path / "clustered.parquet")
    assert clustered["cluster"].notna().all()
    assert_profiles_equal_export(latest_profiles(settings), clustered)

    # predictions: the scheduled lifetime model, then one refitted on command, both in closed form
    scheduled = assert_p_alive_is_the_closed_form(settings, clustered)
    assert clustered["churn_probability"].between(0, 1).all()
    assert set(clustered["churn_band"]) <= {"Low", "Medium", "High"} and clustered["clv"].notna().all()
    fitted = run_cli(settings, "fit")
    assert fitted.startswith(f"BG/NBD v{scheduled + 1}: r="), fitted
    assert assert_p_alive_is_the_closed_form(
        settings, export_customers(settings, tmp_path / "fit.parquet")
    ) == (scheduled + 1)


def assert_p_alive_is_the_closed_form(settings: Settings, live: pd.DataFrame) -> int:
    """Every exported p_alive equals the formula on (x, t_x, T) and the parameters saved in Redis.

    Returns the lifetime model version the export used.
    """

    async def saved() -> dict[str, Any] | None:
        profiles = RedisProfileStore.from_url(settings.redis_url, settings.redis_prefix)
        try:
            return await profiles.summary()
        finally:
            await profiles.close()

    summary = asyncio.run(saved())
    assert summary is not None and summary["lifetime"] is not None
    p, as_of = summary["lifetime"]["bgnbd"], int(summary["as_of_ms"])
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    week, day = 7 * 86_400_000, 86_400_000
    first = live["first_purchase_at"].astype("datetime64[ms, UTC]").astype("int64") // day * day
    last = live["last_purchase_at"].astype("datetime64[ms, UTC]").astype("int64") // day * day
    x = (live["purchase_days"] - 1).to_numpy(dtype=float)
    t_x, T = ((last - first) / week).to_numpy(), ((as_of - first) / week).to_numpy()
    repeat = 1 / (1 + (a / (b + np.maximum(x, 1) - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x))
    one_time = 1 / (1 + (a / b) * ((alpha + T) / alpha) ** r)
    expected = np.where(x > 0, repeat, one_time)
    assert np.allclose(live["p_alive"].to_numpy(dtype=float), expected, rtol=1e-9, atol=1e-12)
    assert live["expected_purchases_90d"].notna().all()
    return int(summary["lifetime"]["version"])


def assert_scores_and_segments(live: pd.DataFrame, table: pd.DataFrame) -> None:
    """Scores by the issue's formula with pandas ranks; segments by reading the rule table directly."""
    n = len(table)
    for column, value in (
        ("r_score", "last_purchase_at"),
        ("f_score", "frequency"),
        ("m_score", "monetary_cents"),
    ):
        worse = table[value].rank(method="min").astype("int64") - 1
        expected = (1 + (5 * worse) // n).clip(upper=5)
        assert (live[column].astype("int64") == expected).all(), f"{column} differs from the pandas ranks"
    rules = json.loads((Path(__file__).parents[2] / "state" / "presets" / "rfm11.json").read_text())["rules"]

    def segment(r: int, f: int, m: int) -> str:
        return next(
            rule["segment"]
            for rule in rules
            if rule["r"][0] <= r <= rule["r"][1]
            and rule["f"][0] <= f <= rule["f"][1]
            and rule["m"][0] <= m <= rule["m"][1]
        )

    expected_segments = [
        segment(*t) for t in zip(live["r_score"], live["f_score"], live["m_score"], strict=True)
    ]
    assert list(live["rfm_segment"]) == expected_segments


def malformed_payloads(rng: random.Random, count: int) -> list[tuple[bytes, str]]:
    """``count`` bad messages of every kind the contract rejects, with the field the reason must name."""
    kinds: list[tuple[bytes, str]] = [
        (b"{not json", "JSON"),
        (json.dumps(purchase(occurred_at=None)).encode(), "occurred_at"),
        (json.dumps(purchase(customer_id=None)).encode(), "customer_id"),
        (json.dumps(purchase(amount="12.00")).encode(), "amount"),
        (json.dumps(purchase(amount=-5.0)).encode(), "amount"),
        (json.dumps(purchase(type="gift")).encode(), "type"),
        (json.dumps(purchase(occurred_at="2024-01-01T10:00:00")).encode(), "occurred_at"),
        (b"\xff\xfe binary", "UTF-8"),
    ]
    return [kinds[i % len(kinds)] for i in rng.sample(range(count * 10), count)]


def test_duplicates_shuffle_and_malformed_still_equal_pandas(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    rng = random.Random(20261126)
    history = load_cdnow(sample=True)  # the mechanics of master's replay above, on a tenth of the events
    good = list(wire_events(history))
    resent = rng.sample(good, len(good) // 10)  # 10% resent later with the same event_id
    bad = malformed_payloads(rng, len(good) // 100)  # 1% malformed
    stream: list[tuple[str | None, bytes]] = [*good, *resent, *[("bad-key", raw) for raw, _ in bad]]
    rng.shuffle(stream)  # out of event-time order; resends land anywhere

    worker = start_worker(settings)
    publisher = Publisher(settings)
    for key, value in stream:
        publisher.send(settings.topic(PURCHASES), key, value)
    publisher.flush()
    publisher.close()

    stats = wait_for_stats(
        settings, lambda s: s.applied + s.duplicates + s.invalid >= len(stream), [worker], timeout_s=300
    )
    assert stats.applied == len(good)
    assert stats.duplicates == len(resent)
    assert stats.invalid == len(bad)
    assert worker.poll() is None, "the worker must keep running after bad input"

    assert_same_table(export_customers(settings, tmp_path / "c.parquet"), rfm_table(history))

    letters = list(read_topic(settings, settings.topic(PURCHASES_DLQ)))
    assert len(letters) == len(bad)
    sources = set()
    for letter in letters:
        validate_json("purchase-dlq", letter.value)
        body = json.loads(letter.value)
        assert body["reason"] and body["source"]["topic"] == settings.topic(PURCHASES)
        assert body["source"]["key"] == "bad-key" and letter.key == b"bad-key"
        sources.add((body["source"]["partition"], body["source"]["offset"]))
    assert len(sources) == len(bad), "each dead letter names its own source offset"
    field_of = dict(bad)
    for letter in letters:
        body = json.loads(letter.value)
        raw = (
            base64.b64decode(body["payload"])
            if body["payload_encoding"] == "base64"
            else body["payload"].encode()
        )
        assert field_of[raw] in body["reason"], f"reason {body['reason']!r} should name {field_of[raw]}"


def test_worker_killed_mid_replay_and_rebalances_lose_and_double_nothing(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    """Two workers share the partitions; one is SIGKILLed mid-replay, a third joins later."""
    history = load_cdnow()
    rng = random.Random(11)
    bad = malformed_payloads(rng, 300)
    stream = [*wire_events(history), *[(f"bad-{i}", raw) for i, (raw, _) in enumerate(bad)]]
    rng.shuffle(stream)
    victim = start_worker(settings, "victim")
    survivor = start_worker(settings, "survivor")
    publisher = Publisher(settings)
    for key, value in stream:
        publisher.send(settings.topic(PURCHASES), key, value)
    publisher.flush()
    publisher.close()
    wait_for_stats(settings, lambda s: s.applied >= 15_000, [victim, survivor])
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = wait_for_stats(settings, lambda s: True)
    assert killed_at.applied < CDNOW_EVENTS, "the kill must land in the middle of the replay"

    joiner = start_worker(settings, "joiner")
    stats = wait_for_stats(
        settings, lambda s: s.applied >= CDNOW_EVENTS and s.invalid >= len(bad), [survivor, joiner]
    )
    assert stats.applied == CDNOW_EVENTS and stats.customers == CDNOW_CUSTOMERS
    assert stats.duplicates == 0
    assert_same_table(export_customers(settings, tmp_path / "c.parquet"), rfm_table(history))
    assert survivor.poll() is None and joiner.poll() is None

    letters = list(read_topic(settings, settings.topic(PURCHASES_DLQ)))
    sources = {
        (json.loads(m.value)["source"]["partition"], json.loads(m.value)["source"]["offset"]) for m in letters
    }
    assert len(sources) == len(bad), "every bad message dead-lettered"
    # The dead-letter fence keeps redelivered bad messages out (tests/unit/test_ingest.py shows
    # it exactly); only a kill in the instant between Kafka's ack and the fence write could
    # repeat some, so the end-to-end bound allows that window and nothing else.
    assert len(bad) <= stats.invalid <= len(letters)

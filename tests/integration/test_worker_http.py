"""The worker's HTTP edge: Prometheus metrics and health, against a real worker process."""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest

from agents.settings import Settings
from segstream.kafka_io import Publisher
from streams.topics import PURCHASES
from tests.conftest import WorkerFactory, purchase, wait_for_stats

pytestmark = pytest.mark.integration


def fetch(url: str, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def metric(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, flags=re.M)
    assert match, f"{name}{{{labels}}} not in /metrics"
    return float(match.group(1))


def test_metrics_count_outcomes_and_dead_letters(settings: Settings, start_worker: WorkerFactory) -> None:
    settings = settings.model_copy(update={"web_enabled": True})
    worker = start_worker(settings)
    publisher = Publisher(settings)
    topic = settings.topic(PURCHASES)
    for i in range(5):
        publisher.send(topic, "c1", json.dumps(purchase(event_id=f"e{i}", customer_id="c1")).encode())
    publisher.send(topic, "c1", json.dumps(purchase(event_id="e0", customer_id="c1")).encode())  # resend
    publisher.send(topic, "c2", b"{broken")
    publisher.send(topic, "c2", json.dumps(purchase(amount=-1)).encode())
    publisher.flush()
    publisher.close()
    wait_for_stats(settings, lambda s: s.applied + s.duplicates + s.invalid >= 8, [worker])

    base = f"http://127.0.0.1:{settings.web_port}"
    # the ingest process writes Redis first and reports the batch to the worker's metrics after
    outcomes = [
        f'segstream_purchase_events_total{{outcome="{o}"}} ' for o in ("applied", "duplicate", "invalid")
    ]
    deadline = time.monotonic() + 30

    def counted(text: str) -> float:
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(tuple(outcomes)))

    while counted(text := fetch(f"{base}/metrics")) < 8:
        assert time.monotonic() < deadline, "the batches' outcomes never all reached /metrics"
        time.sleep(0.1)
    assert metric(text, "segstream_purchase_events_total", 'outcome="applied"') == 5
    assert metric(text, "segstream_purchase_events_total", 'outcome="duplicate"') == 1
    assert metric(text, "segstream_purchase_events_total", 'outcome="invalid"') == 2
    assert metric(text, "segstream_dead_letters_total", 'reason="payload"') == 1
    assert metric(text, "segstream_dead_letters_total", 'reason="amount"') == 1
    health = json.loads(fetch(f"{base}/healthz"))
    assert health["status"] == "ok" and health["watermark_ms"] == 1_714_557_600_000

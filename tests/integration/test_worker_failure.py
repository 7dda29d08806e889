"""A batch that cannot reach Redis within the retry budget crashes the worker loudly and is not lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.settings import Settings
from agents.worker import EXIT_BATCH_FAILED
from segstream.kafka_io import Publisher
from segstream.stack_processes import free_ports
from streams.topics import PURCHASES
from tests.conftest import WorkerFactory, purchase, wait_for_stats

pytestmark = pytest.mark.integration


def test_redis_down_exits_without_commit_and_a_restart_applies_the_batch(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    publisher = Publisher(settings)
    for i in range(20):
        publisher.send(
            settings.topic(PURCHASES), "c1", json.dumps(purchase(event_id=f"e{i}", customer_id="c1")).encode()
        )
    publisher.flush()
    publisher.close()

    nowhere = settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{free_ports(1)[0]}/0", "redis_retry_s": 2.0}
    )
    doomed = start_worker(nowhere, "doomed")
    assert doomed.wait(120) == EXIT_BATCH_FAILED
    log = (tmp_path / "doomed.log").read_text()
    assert "retry 1 in" in log, "each retry is logged"
    assert "failed for" in log and "SEGSTREAM_REDIS_RETRY_S" in log, (
        "the last line says what failed and for how long"
    )

    healthy = start_worker(settings, "healthy")
    stats = wait_for_stats(settings, lambda s: s.applied >= 20, [healthy])
    assert (stats.applied, stats.duplicates, stats.customers) == (20, 0, 1)

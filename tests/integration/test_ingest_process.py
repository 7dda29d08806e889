"""Purchases folded in a process of their own (the default) on real services.

- Folded in the ingest process or in the worker's own (``SEGSTREAM_INGEST_PROCESS=false``): the same
  counts, dead letters, changes, alerts and profiles (``test_evaluation_process``, both processes at once).
- The ingest process killed mid-replay (a slice of CDNOW master, real data): the worker exits with it
  (``EXIT_BATCH_FAILED``) although Faust had acknowledged the batches it handed over; its successor
  resumes from the offsets Redis recorded as consumed, and every customer ends exactly as pandas
  says, nothing lost and nothing doubled.
- A worker killed with SIGKILL takes its ingest process with it: no orphan folds beside its successor.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from agents.settings import Settings
from agents.worker import EXIT_BATCH_FAILED
from segstream.batch import rfm_table
from segstream.kafka_io import Publisher, ensure_topics
from segstream.sources import load_cdnow, wire_events
from streams.topics import PURCHASES
from tests.conftest import WorkerFactory, children_named, wait_for_stats
from tests.integration.test_pipeline import assert_same_table, export_customers

pytestmark = pytest.mark.integration


def _child_named(pid: int, name: str, timeout_s: float = 30.0) -> int:
    """The pid of ``pid``'s child process named ``name`` (``agents.child_process``), once it exists."""
    deadline = time.monotonic() + timeout_s
    while not (found := children_named(pid, name)):
        assert time.monotonic() < deadline, f"worker {pid} has no child process named {name!r}"
        time.sleep(0.1)
    return found[0]


def _publish(settings: Settings, stream: list[tuple[str, bytes]]) -> None:
    ensure_topics(settings)
    publisher = Publisher(settings)
    for key, value in stream:
        publisher.send(settings.topic(PURCHASES), key, value)
    publisher.flush()
    publisher.close()


def test_the_ingest_process_killed_mid_replay_loses_and_doubles_nothing(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    history = load_cdnow().head(30_000)
    _publish(settings, list(wire_events(history)))
    worker = start_worker(settings, "victim")
    ingest = _child_named(worker.pid, "seg-ingest")
    wait_for_stats(settings, lambda s: s.applied >= 3_000, [worker])
    os.kill(ingest, signal.SIGKILL)
    assert worker.wait(30) == EXIT_BATCH_FAILED, "the worker must exit with its ingest process"
    killed_at = wait_for_stats(settings, lambda s: True)
    assert killed_at.applied < len(history), "the kill must land in the middle of the replay"

    successor = start_worker(settings, "successor")
    stats = wait_for_stats(settings, lambda s: s.applied >= len(history), [successor])
    assert stats.applied == len(history) and stats.duplicates == 0
    assert_same_table(export_customers(settings, tmp_path / "c.parquet"), rfm_table(history))

    orphan = _child_named(successor.pid, "seg-ingest")
    successor.send_signal(signal.SIGKILL)
    successor.wait(10)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{orphan}").exists():
        assert time.monotonic() < deadline, f"ingest process {orphan} outlived its worker"
        time.sleep(0.1)

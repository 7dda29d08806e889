"""Purchases folded in a process of their own (the default) on real services.

- Folded in the ingest process or in the worker's own (``SEGSTREAM_INGEST_PROCESS=false``): the same
  customers, counts and dead letters, on the same messages (a slice of CDNOW master, real data,
  with generated malformed messages among them).
- The ingest process killed mid-replay: the worker exits with it (``EXIT_BATCH_FAILED``) although Faust
  had acknowledged the batches it handed over; its successor resumes from the offsets Redis recorded
  as consumed, and every customer ends exactly as pandas says, nothing lost and nothing doubled.
- A worker killed with SIGKILL takes its ingest process with it: no orphan folds beside its successor.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from agents.settings import Settings
from agents.worker import EXIT_BATCH_FAILED
from segstream.batch import rfm_table
from segstream.kafka_io import Publisher, ensure_topics, read_topic
from segstream.sources import load_cdnow, wire_events
from streams.topics import PURCHASES, PURCHASES_DLQ
from tests.conftest import WorkerFactory, children_named, wait_for_stats
from tests.integration.test_pipeline import assert_same_table, export_customers, malformed_payloads

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


def _dead_letter_sources(settings: Settings) -> set[tuple[int, int]]:
    letters = read_topic(settings, settings.topic(PURCHASES_DLQ))
    return {
        (json.loads(m.value)["source"]["partition"], json.loads(m.value)["source"]["offset"]) for m in letters
    }


def test_in_the_ingest_process_or_the_workers_the_same_state_and_dead_letters(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    history = load_cdnow().head(3_000)
    rng = random.Random(5)
    bad = malformed_payloads(rng, 40)
    stream = [*wire_events(history), *[(f"bad-{i}", raw) for i, (raw, _) in enumerate(bad)]]
    rng.shuffle(stream)
    within = settings.model_copy(update={"namespace": settings.namespace + "w", "ingest_process": False})
    for run in (settings, within):
        _publish(run, stream)
        worker = start_worker(run, run.namespace)
        wait_for_stats(run, lambda s: s.applied >= len(history) and s.invalid >= len(bad), [worker])
    apart = wait_for_stats(settings, lambda s: True)
    inside = wait_for_stats(within, lambda s: True)
    assert (apart.applied, apart.invalid, apart.customers) == (
        inside.applied,
        inside.invalid,
        inside.customers,
    )
    assert apart.applied == len(history) and apart.invalid == len(bad)
    table = export_customers(settings, tmp_path / "apart.parquet")
    assert_same_table(table, rfm_table(history))
    assert_same_table(export_customers(within, tmp_path / "within.parquet"), rfm_table(history))
    assert len(_dead_letter_sources(settings)) == len(bad)
    assert _dead_letter_sources(settings) == _dead_letter_sources(within)  # same messages, same partitions


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

"""The evaluator and the ingest in processes of their own (the default) on real services.

- The clock's owner runs it as a child process, and the changes, alerts and profiles it publishes
  are the same as those of a worker evaluating in its own process (``SEGSTREAM_EVALUATOR_PROCESS
  =false``), on the same generated history and ticks (generated: a small history with repeat
  buyers and several instants is all this needs; ``test_segments_live`` holds the default worker
  to the pure evaluator and pandas on CDNOW).
- The same holds with the purchases folded in the worker's own process too
  (``SEGSTREAM_INGEST_PROCESS=false``): the same counts and dead letters (malformed messages among
  the purchases), changes, alerts and profiles.
- The process starts once the worker owns the clock, before the first tick needs it.
- A worker killed with SIGKILL takes its evaluation process with it: no orphan keeps evaluating
  beside the worker that takes the clock over.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from agents.settings import Settings
from segstream.kafka_io import ensure_topics, read_topic, send_tick
from streams.topics import PURCHASES_DLQ
from tests.conftest import WorkerFactory, children_named, read_stats, wait_for_stats
from tests.integration.test_segments_live import alerts_of, changes_of, latest_profiles, wait_for_clock
from tests.plain_producer import publish_plain

pytestmark = pytest.mark.integration
DAY_MS = 86_400_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS


def _history() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(11)
    events = []
    for i in range(400):
        customer = f"c{int(rng.integers(0, 90))}"
        at_ms = START_MS + int(rng.integers(0, 60 * DAY_MS))
        value = {
            "event_id": f"e{i}",
            "customer_id": customer,
            "occurred_at": at_ms,
            "amount": float(rng.integers(3, 300)),
        }
        events.append((customer, json.dumps(value).encode()))
    return events


def _dead_letters(settings: Settings) -> list[tuple[int, int, str]]:
    """(source partition, source offset, reason) of every purchase dead letter, sorted."""
    letters = [json.loads(m.value) for m in read_topic(settings, settings.topic(PURCHASES_DLQ))]
    return sorted((d["source"]["partition"], d["source"]["offset"], d["reason"]) for d in letters)


def _children(pid: int) -> list[int]:
    """The evaluation processes whose parent is ``pid`` (named by ``agents.child_process``)."""
    return children_named(pid, "seg-evaluate")


BAD = [(f"bad{i}", payload) for i, payload in enumerate([b"{", b"[]", b'{"event_id": "x"}', b"\xff\xfe"] * 3)]
"""Malformed messages among the purchases: dead-lettered the same way in or out of the ingest process."""


def _run(settings: Settings, start_worker: WorkerFactory, name: str) -> subprocess.Popen[bytes]:
    ensure_topics(settings)
    worker = start_worker(settings, name)
    history = _history()
    publish_plain(settings, [*history, *BAD])
    wait_for_stats(settings, lambda s: s.applied >= len(history) and s.invalid >= len(BAD), [worker])
    if settings.evaluator_process:  # started once the worker owns the clock, before a tick asks for it
        deadline = time.monotonic() + 30
        while not _children(worker.pid):
            assert time.monotonic() < deadline, "no evaluation process before the first tick"
            time.sleep(0.2)
    for day in (20, 41, 75):  # three ticks, the last after the newest event
        send_tick(settings, START_MS + day * DAY_MS, "test")
        wait_for_clock(settings, START_MS + day * DAY_MS, worker, timeout_s=120)
    return worker


def test_in_their_own_processes_or_the_workers_the_same_output_and_no_orphan(
    settings: Settings, start_worker: WorkerFactory
) -> None:
    """Evaluation and ingest in processes of their own (the default) or both in the worker's."""
    apart = _run(settings, start_worker, "apart")  # the default
    children = _children(apart.pid)
    assert children, "the clock's owner runs no evaluation process"
    assert children_named(apart.pid, "seg-ingest"), "the worker folds in no ingest process"
    within = settings.model_copy(
        update={"namespace": settings.namespace + "w", "evaluator_process": False, "ingest_process": False}
    )
    inside = _run(within, start_worker, "within")
    assert not _children(inside.pid) and not children_named(inside.pid, "seg-ingest")
    counts = [(s.applied, s.duplicates, s.invalid, s.customers) for s in map(read_stats, (settings, within))]
    assert counts[0] == counts[1] and counts[0][2] == len(BAD)
    assert _dead_letters(settings) == _dead_letters(within) and len(_dead_letters(settings)) == len(BAD)

    changes, alerts = changes_of(settings), alerts_of(settings)
    assert len(changes) > 90 and changes == changes_of(within)  # same content, same order per partition
    assert alerts == alerts_of(within)
    assert latest_profiles(settings) == latest_profiles(within)

    os.kill(apart.pid, signal.SIGKILL)
    apart.wait(10)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children):
        assert time.monotonic() < deadline, f"evaluation process {children} outlived its worker"
        time.sleep(0.1)


async def test_a_request_under_way_when_a_rebalance_begins_is_abandoned_and_the_process_serves_on(
    settings: Settings,
) -> None:
    """A tick that waits for purchases nobody consumes (as one does while a rebalance stops the
    workers) is abandoned once ``abort_when`` turns true, instead of holding the rebalance until
    the stall timeout refuses it; one asked while it is true is abandoned before it begins; the
    process then evaluates the next tick."""
    from agents.evaluation_process import EvaluationAborted, EvaluationProcess
    from agents.evaluator import EvaluatorObserver, TickReport
    from streams.outputs import Tick

    rebalancing = False

    async def ends(topic: str, partitions: list[int]) -> dict[int, int]:
        return dict.fromkeys(partitions, 10)  # ten purchases on each partition, never consumed

    process = EvaluationProcess(
        settings.model_copy(update={"tick_wait_timeout_s": 60.0}),
        partition_count=lambda topic: settings.partitions,
        end_offsets=ends,
        observe=EvaluatorObserver(lambda *a: None, lambda *a: None, lambda *a: None),
        counted=lambda counts: None,
        abort_when=lambda: rebalancing,
    )
    try:
        waiting = asyncio.ensure_future(process.on_tick(Tick(START_MS, {0: 10}, "test")))
        await asyncio.sleep(2.0)
        assert not waiting.done()  # waiting for the purchases
        rebalancing = True
        with pytest.raises(EvaluationAborted, match="a rebalance began"):
            await waiting  # not TickRefused after the 60 s stall timeout
        with pytest.raises(EvaluationAborted, match="not sent"):
            await process.on_tick(Tick(START_MS, {}, "test"))
        rebalancing = False
        report = await process.on_tick(Tick(START_MS + DAY_MS, {}, "test"))
        assert report is None or isinstance(report, TickReport)
        assert process._process.is_alive()
    finally:
        process.close()

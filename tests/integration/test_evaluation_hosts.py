"""Evaluation hosts in the workers (``SEGSTREAM_EVALUATION_HOSTS``) on the real broker and Redis.

Each worker evaluates the customers of the ``purchases`` partitions it is assigned (a partition
host each, ``agents.host_pool``) and the clock's owner runs the model owner in its evaluation
process; they talk over ``eval-versions`` / ``eval-deltas``. The oracle is the pure one evaluator
over the same CDNOW sample (``test_segments_live.pure_run``, no Kafka, no Redis): one worker and
two give its changes, alerts and saved models, and so do two workers when the clock's owner is
killed mid-replay and its partitions and the clock move to the survivor.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import SecretStr

from agents.evaluation_setup import evaluator_config, redis_stores, split_rows
from agents.host_pool import HostPool
from agents.settings import Settings
from segstream.kafka_io import end_offsets, ensure_topics, send_tick
from segstream.replay import replay_history
from segstream.sources import load_cdnow
from segstream.stack_processes import free_ports
from state.customer.profiles import Change, fold_changes
from state.models.alerts import Alert
from streams.topics import EVAL_DELTAS
from tests.conftest import WorkerFactory, wait_for_stats
from tests.integration.test_segments_live import (
    SAMPLE_EVENTS,
    alerts_of,
    as_changes,
    changes_of,
    evaluator_clock,
    latest_profiles,
    metric,
    profile,
    pure_run,
    stored_summary,
    wait_for_clock,
    watermark,
)

pytestmark = pytest.mark.integration
DAY_MS = 86_400_000


def hosted(settings: Settings) -> Settings:
    """``settings`` with evaluation hosts (every worker of the namespace the same key)."""
    made = settings.model_copy(
        update={
            "evaluation_split": True,
            "evaluation_hosts": True,
            "evaluation_key": SecretStr("the test namespace's evaluation key"),
            "evaluation_wait_s": 5.0,
            "log_level": "info",
        }
    )
    Settings.model_validate(made.model_dump())  # the worker's checks pass
    ensure_topics(made)  # with the evaluation topics
    return made


def assert_the_pure_evaluators(settings: Settings, end: int) -> list[dict[str, Any]]:
    """Each of the pure run's changes and alerts published (copies identical), its churn and
    lifetime models saved, and customer-segments the changes folded; the changes, unique."""
    hosts_wrote = end_offsets(settings, settings.topic(EVAL_DELTAS))
    assert sorted(hosts_wrote) == [0, 1, 2, 3] and min(hosts_wrote.values()) > 0  # every partition's host
    changes = changes_of(settings)
    unique = {c["change_id"]: c for c in changes}
    assert all(c == unique[c["change_id"]] for c in changes)  # a republished change is an identical copy
    pure, pure_summary, pure_alerts = pure_run(load_cdnow(sample=True), end)
    assert Counter(json.dumps(c, sort_keys=True) for c in unique.values()) == Counter(
        json.dumps(c, sort_keys=True) for c in pure
    )
    assert len(unique) > 10_000
    alerts = {a["alert_id"]: a for a in alerts_of(settings)}
    assert sorted(alerts) == sorted(a["alert_id"] for a in pure_alerts) and alerts
    saved = stored_summary(settings)
    assert saved is not None and saved["churn"] == json.loads(json.dumps(pure_summary["churn"]))
    assert saved["lifetime"] == json.loads(json.dumps(pure_summary["lifetime"]))
    latest = latest_profiles(settings)
    assert {c: profile(doc) for c, doc in latest.items()} == fold_changes(
        as_changes(sorted(unique.values(), key=lambda c: (c["customer_id"], c["occurred_at"])))
    )
    return list(unique.values())


def test_one_worker_hosting_every_partition_gives_the_one_evaluators_changes_alerts_and_models(
    settings: Settings, start_worker: WorkerFactory
) -> None:
    settings = hosted(settings)
    worker = start_worker(settings, "hosts")
    replay_history(load_cdnow(sample=True), settings, progress=False, tick_every=1000)  # ticks as it goes
    wait_for_stats(settings, lambda s: s.applied >= SAMPLE_EVENTS, [worker])
    end = watermark(settings) + 1
    wait_for_clock(settings, end, worker)
    assert_the_pure_evaluators(settings, end)


def hosting(port: int) -> float:
    """How many partitions the worker serving ``port`` hosts (0 before it serves)."""
    return metric(port, "segstream_evaluation_hosts") or 0.0


def test_a_worker_joining_mid_tick_and_the_first_killed_mid_replay_move_the_evaluation_and_change_nothing(
    settings: Settings, start_worker: WorkerFactory
) -> None:
    """Worker a hosts all four partitions and owns the clock. Two thirds of the history go out,
    then one tick, which a evaluates for several seconds; b, started just before it, joins
    meanwhile (a rebalance: a's tick under way is abandoned and read again, two partitions move
    to b). Then a (the model owner and
    two hosts, or two hosts) is SIGKILLed while the last third is replayed with its ticks, and b
    takes over everything. The results are the pure run's."""
    settings = hosted(settings)
    ports = dict(zip("ab", free_ports(2), strict=True))
    workers = {
        "a": start_worker(settings.model_copy(update={"web_enabled": True, "web_port": ports["a"]}), "a")
    }
    history = load_cdnow(sample=True).sort_values("occurred_at", kind="stable")
    cut = len(history) * 2 // 3
    replay_history(history.iloc[:cut], settings, progress=False, tick_every=None)
    wait_for_stats(settings, lambda s: s.applied >= cut, [workers["a"]])
    # b starts first: its start and join (8-9 s here) then fall inside a's tick (10 s and more)
    workers["b"] = start_worker(
        settings.model_copy(update={"web_enabled": True, "web_port": ports["b"]}), "b"
    )
    time.sleep(3.0)
    send_tick(settings, watermark(settings) // DAY_MS * DAY_MS, source="test")  # a midnight, as replays tick
    deadline = time.monotonic() + 120
    while not (hosting(ports["a"]) == hosting(ports["b"]) == 2):  # the rebalance moved two partitions
        assert workers["b"].poll() is None and time.monotonic() < deadline, "b hosts no partition"
        time.sleep(0.1)
    assert metric(ports["a"], "segstream_clock_ticks_abandoned_total") == 1  # the tick under way
    replaying = threading.Thread(
        target=replay_history,
        args=(history.iloc[cut:], settings),
        kwargs={"progress": False, "tick_every": 250, "speed": 150.0},  # about 15 s of purchases
    )
    replaying.start()
    while (clock_at_kill := evaluator_clock(settings)) is None:  # the tick read again, evaluated in part
        assert time.monotonic() < deadline, "nothing evaluated after the rebalance"
        time.sleep(0.05)
    workers["a"].kill()
    workers["a"].wait(10)
    assert replaying.is_alive()  # mid-replay
    replaying.join()
    wait_for_stats(settings, lambda s: s.applied >= SAMPLE_EVENTS, [workers["b"]])
    end = watermark(settings) + 1
    assert clock_at_kill is not None and clock_at_kill < end
    wait_for_clock(settings, end, workers["b"])
    assert hosting(ports["b"]) == 4
    assert_the_pure_evaluators(settings, end)


async def test_hosts_refuse_a_purchases_topic_cut_other_than_the_namespaces_evaluation(
    settings: Settings,
) -> None:
    """A namespace evaluated in 4 partitions and a purchases topic of 8: hosts by topic partition
    would leave evaluation partitions unhosted (or host ones that do not exist), so the worker stops
    saying why, before it starts a host."""
    settings = hosted(settings)
    store, profiles = redis_stores(settings)
    rows = split_rows(settings)
    assert rows is not None
    pool = HostPool(settings, evaluator_config(settings), store, profiles, rows, no_publish, print)
    try:
        assert await store.eval_partitions() == 4
        with pytest.raises(
            ValueError, match="purchases topic has 8 partitions and this namespace is evaluated in 4"
        ):
            await pool.assign([0, 1], of=8)
        assert pool.partitions == []
    finally:
        await pool.close()
        await store.close()
        await profiles.close()
        await rows.close()


async def no_publish(changes: Sequence[Change], alerts: Sequence[Alert]) -> None:
    raise AssertionError("nothing is evaluated here")

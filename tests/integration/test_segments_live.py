"""Live segments on real services: change events, the compacted profile topic, the clock, HTTP.

A worker process folds purchases and evaluates segments at the clock ticks the replay (or the
``segstream clock`` command) sends; these tests read what a marketing system would read.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from agents.settings import Settings
from segstream.kafka_io import Publisher, read_topic
from segstream.replay import replay_history
from segstream.sources import history_logs, load_cdnow, occurred_at_ms, shuffled_with_resends
from state.adapters.redis_profiles import RedisProfileStore
from state.adapters.redis_store import RedisStore
from state.customer.event_log import LogFold
from state.customer.profiles import Change, Profile, fold_changes
from streams.topics import ALERTS, CUSTOMER_SEGMENTS, PURCHASES, SEGMENT_CHANGES, SEGMENT_MOVES
from tests.conftest import WorkerFactory, wait_for_stats
from tests.integration.test_pipeline import export_customers, run_cli
from tests.schema_helpers import validate
from tests.unit.test_moves import expected_move_keys, move_keys

pytestmark = pytest.mark.integration

SAMPLE_EVENTS, SAMPLE_CUSTOMERS = 6_919, 2_357
PROFILE_KEYS = ("r_score", "f_score", "m_score", "rfm_segment", "cluster", "cluster_name")


def stored_summary(settings: Settings) -> dict[str, Any] | None:
    """The segment summary the evaluator saved last (None before its first tick)."""

    async def go() -> dict[str, Any] | None:
        profiles = RedisProfileStore.from_url(settings.redis_url, settings.redis_prefix)
        try:
            return await profiles.summary()
        finally:
            await profiles.close()

    return asyncio.run(go())


def evaluator_clock(settings: Settings) -> int | None:
    summary = stored_summary(settings)
    return int(summary["as_of_ms"]) if summary else None


def watermark(settings: Settings) -> int:
    async def go() -> int | None:
        store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
        try:
            return await store.watermark()
        finally:
            await store.close()

    value = asyncio.run(go())
    assert value is not None
    return value


def logs_fold_to_the_state(settings: Settings, at_ms: int) -> int:
    """Every customer's compacted log (base + the events after it) folds, at ``at_ms``, to the state
    the store folded from every event (which the pipeline tests hold to pandas); returns how many
    events the logs still hold (the rest were compacted into the bases)."""

    async def go() -> int:
        store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
        try:
            states = {s.customer_id: s for s in await store.all_customers()}
            logs = await store.logs(sorted(states))
        finally:
            await store.close()
        for c, log in logs.items():
            assert LogFold(c, log.entries, log.base).advance(at_ms) == states[c], c
        return sum(len(log.entries) for log in logs.values())

    return asyncio.run(go())


def wait_for_clock(settings: Settings, at_ms: int, worker: Any, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while evaluator_clock(settings) != at_ms:
        assert worker.poll() is None, f"worker exited with {worker.returncode}"
        assert time.monotonic() < deadline, (
            f"evaluator clock {evaluator_clock(settings)} never reached {at_ms}"
        )
        time.sleep(0.25)


def changes_of(settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(m.value) for m in read_topic(settings, settings.topic(SEGMENT_CHANGES))]


def alerts_of(settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(m.value) for m in read_topic(settings, settings.topic(ALERTS))]


def latest_profiles(settings: Settings) -> dict[str, dict[str, Any]]:
    """What a new subscriber bootstraps from: the last customer-segments value per key."""
    latest: dict[str, dict[str, Any]] = {}
    for m in read_topic(settings, settings.topic(CUSTOMER_SEGMENTS)):
        assert m.key is not None
        latest[m.key.decode()] = json.loads(m.value)
    return latest


def profile(doc: dict[str, Any] | None) -> Profile | None:
    return None if doc is None else Profile(*(doc[k] for k in PROFILE_KEYS))


def as_changes(docs: list[dict[str, Any]]) -> list[Change]:
    return [
        Change(
            d["customer_id"],
            0,
            d["reason"],
            profile(d["before"]),
            profile(d["after"]) or Profile(0, 0, 0, "", None, None),
            d["cutpoint_version"],
            d["model_version"],
        )
        for d in docs
    ]


def assert_profiles_equal_export(latest: dict[str, dict[str, Any]], live: pd.DataFrame) -> None:
    assert set(latest) == set(live["customer_id"])
    rows = live.set_index("customer_id")
    for customer, doc in latest.items():
        row = rows.loc[customer]
        expected = (int(row["r_score"]), int(row["f_score"]), int(row["m_score"]), row["rfm_segment"])
        assert (doc["r_score"], doc["f_score"], doc["m_score"], doc["rfm_segment"]) == expected, customer
        cluster = None if pd.isna(row["cluster"]) else int(row["cluster"])
        assert (doc["cluster"], doc["cluster_name"]) == (
            cluster,
            row["cluster_name"] if cluster is not None else None,
        )


def publish_shuffled_with_resends(settings: Settings, history: pd.DataFrame, seed: int) -> None:
    messages = shuffled_with_resends(history, seed)  # 10% producer resends: same event_id
    publisher = Publisher(settings)
    try:
        for key, value in messages:
            publisher.send(settings.topic(PURCHASES), key, value)
        last = max(occurred_at_ms(history))
        publisher.tick(settings, last + 1, source="test")
    finally:
        publisher.close()


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_sorted_and_shuffled_replays_publish_the_same_changes_and_profiles(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    history = load_cdnow(sample=True)
    sorted_settings = settings.model_copy(update={"web_enabled": True})
    shuffled_settings = settings.model_copy(update={"namespace": settings.namespace + "s"})
    from segstream.kafka_io import ensure_topics

    ensure_topics(shuffled_settings)
    sorted_worker = start_worker(sorted_settings, "sorted")
    shuffled_worker = start_worker(shuffled_settings, "shuffled")

    replay_history(history, sorted_settings, progress=False, tick_every=1000)  # ticks as it goes
    publish_shuffled_with_resends(shuffled_settings, history, seed=5)  # one tick at the end
    for s, w in ((sorted_settings, sorted_worker), (shuffled_settings, shuffled_worker)):
        wait_for_stats(s, lambda st: st.applied >= SAMPLE_EVENTS, [w])
    end = watermark(sorted_settings) + 1
    for s, w in ((sorted_settings, sorted_worker), (shuffled_settings, shuffled_worker)):
        wait_for_clock(s, end, w)

    # the logs were compacted as the clock passed them, and folding them still gives every state
    assert logs_fold_to_the_state(sorted_settings, end) < SAMPLE_EVENTS // 20
    assert logs_fold_to_the_state(shuffled_settings, end) < SAMPLE_EVENTS // 20

    changes, shuffled_changes = changes_of(sorted_settings), changes_of(shuffled_settings)
    assert len(changes) > 10_000
    assert Counter(json.dumps(c, sort_keys=True) for c in changes) == Counter(
        json.dumps(c, sort_keys=True) for c in shuffled_changes
    )
    assert {c["reason"] for c in changes} == {"purchase", "recency_decay", "cutpoint_update", "model_update"}
    for doc in changes[:200] + changes[-200:]:
        validate("segment-change", doc)
    for doc in changes:
        before = doc["before"] or {}
        assert doc["changed"] == [k for k in PROFILE_KEYS if k not in before or before[k] != doc["after"][k]]

    # segment-moves: exactly the audience entries and exits the changes imply, whatever the arrival order
    moves = [json.loads(m.value) for m in read_topic(sorted_settings, sorted_settings.topic(SEGMENT_MOVES))]
    shuffled_moves = [
        json.loads(m.value) for m in read_topic(shuffled_settings, shuffled_settings.topic(SEGMENT_MOVES))
    ]
    assert move_keys(moves) == expected_move_keys(changes) == move_keys(shuffled_moves)
    assert len({m["move_id"] for m in moves}) == len(moves)
    for doc in moves[:100] + moves[-100:]:
        validate("segment-move", doc)

    latest = latest_profiles(sorted_settings)
    assert latest == latest_profiles(shuffled_settings)
    assert len(latest) == SAMPLE_CUSTOMERS
    folded = fold_changes(as_changes(changes))  # change events in topic order, per customer
    assert {c: profile(doc) for c, doc in latest.items()} == folded
    for doc in list(latest.values())[:200]:
        validate("customer-segment", doc)

    # alerts: the same in both arrival orders, typed, with their figures, no repeat without a crossing
    alerts = alerts_of(sorted_settings)
    assert Counter(json.dumps(a, sort_keys=True) for a in alerts) == Counter(
        json.dumps(a, sort_keys=True) for a in alerts_of(shuffled_settings)
    )
    kinds = {a["kind"] for a in alerts}
    assert "overdue" in kinds and kinds <= {"churn_risk", "overdue", "segment_drift"}  # no campaigns here
    for doc in alerts:
        validate("alert", doc)
    assert len({a["alert_id"] for a in alerts}) == len(alerts)
    churn_alerts = [a for a in alerts if a["kind"] == "churn_risk"]
    assert all(a["figures"]["m_score"] >= 4 and a["figures"]["silent_days"] >= 14 for a in churn_alerts)
    # a model must earn its alerts: every churn alert names a model version inside the gate
    assert all(
        a["figures"]["model_auc"] > 0.65
        and a["figures"]["model_ece"] < 0.1
        and a["figures"]["model_version"] >= 1
        for a in churn_alerts
    )
    drift = [a for a in alerts if a["kind"] == "segment_drift"]
    assert all(a["customer_id"].startswith(("segment:", "cluster:")) for a in drift)

    live = export_customers(sorted_settings, tmp_path / "customers.parquet")
    assert_profiles_equal_export(latest, live)

    # HTTP, as a person or a system asks
    base = f"http://127.0.0.1:{sorted_settings.web_port}"
    customer = live.iloc[7]
    status, doc = get(f"{base}/customers/{customer['customer_id']}")
    assert status == 200
    assert doc["profile"] == {k: latest[customer["customer_id"]][k] for k in PROFILE_KEYS}
    assert doc["state"]["frequency"] == int(customer["frequency"])
    assert doc["state"]["monetary"] == pytest.approx(float(customer["monetary"]))
    validate("http-customer", doc)
    summary = stored_summary(sorted_settings)
    assert summary is not None
    predictions = doc["predictions"]
    assert predictions["p_alive"] == pytest.approx(float(customer["p_alive"]), rel=1e-12)
    assert predictions["churn_probability"] == pytest.approx(float(customer["churn_probability"]), rel=1e-12)
    assert predictions["churn_band"] == customer["churn_band"]
    assert predictions["lifetime_model_version"] == summary["lifetime"]["version"]
    assert predictions["churn_model_version"] == summary["churn"]["version"] > 0
    models = run_cli(sorted_settings, "models")
    assert "churn (River logistic regression, horizon 90 days, version " in models, models
    assert "prequential ROC AUC 0." in models and "lifetime model: BG/NBD v" in models
    # each cluster model version's quality, assessed when it was published, saved and shown
    assert summary["cluster_quality"][-1]["model_version"] == summary["model_version"] > 0
    assert "cluster quality per model version" in models and "davies_bouldin" in models, models
    status, missing = get(f"{base}/customers/no-such-customer")
    assert (status, missing) == (404, {"error": "unknown customer 'no-such-customer'"})
    validate("http-error", missing)
    status, table = get(f"{base}/segments")
    assert status == 200 and table["customers"] == SAMPLE_CUSTOMERS
    validate("http-segments", table)
    sizes = Counter(doc["rfm_segment"] for doc in latest.values())
    assert {s["segment"]: s["customers"] for s in table["segments"]} == {
        s["segment"]: sizes.get(s["segment"], 0) for s in table["segments"]
    }
    assert sum(s["value_share"] for s in table["segments"]) == pytest.approx(1, abs=1e-3)
    assert sum(c["customers"] for c in table["clusters"]) == sum(
        1 for d in latest.values() if d["cluster"] is not None
    )

    # a year of silence: the clock moves, customers slide down, nothing else happens
    assert run_cli(sorted_settings, "clock", "advance", "--by", "365").startswith("clock tick sent")
    wait_for_clock(sorted_settings, end + 365 * 86_400_000, sorted_worker)
    seen = {c["change_id"] for c in changes}
    decayed = [c for c in changes_of(sorted_settings) if c["change_id"] not in seen]
    assert len(decayed) == len(changes_of(sorted_settings)) - len(changes)
    # no purchases and no new cut-points; the cluster model keeps learning the ageing population
    assert {c["reason"] for c in decayed} == {"recency_decay", "model_update"}
    decayed = [c for c in decayed if c["reason"] == "recency_decay"]
    assert all(c["after"]["r_score"] < c["before"]["r_score"] for c in decayed)
    landed = Counter(c["after"]["rfm_segment"] for c in decayed)
    assert landed["At Risk"] + landed["Hibernating"] + landed["Lost"] > len(decayed) / 2
    after_year = latest_profiles(sorted_settings)
    assert sum(doc["r_score"] for doc in after_year.values()) < sum(doc["r_score"] for doc in latest.values())


def test_live_mode_the_wall_clock_moves_segments_without_any_tick_sent(
    settings: Settings, start_worker: WorkerFactory
) -> None:
    live = settings.model_copy(update={"clock": "wall", "clock_interval_s": 0.5, "clock_lateness_s": 0})
    worker = start_worker(live)
    now_ms = int(time.time() * 1000)
    publisher = Publisher(live)
    try:
        for i, minutes_ago in enumerate((90, 60, 30)):
            event = {
                "event_id": f"w{i}",
                "customer_id": f"live{i}",
                "occurred_at": now_ms - minutes_ago * 60_000,
                "amount": 10 * (i + 1),
            }
            publisher.send(live.topic(PURCHASES), f"live{i}", json.dumps(event).encode())
        publisher.flush()
    finally:
        publisher.close()
    deadline = time.monotonic() + 60
    latest: dict[str, dict[str, Any]] = {}
    while len(latest) < 3:
        assert worker.poll() is None and time.monotonic() < deadline, f"profiles so far: {latest}"
        time.sleep(0.5)
        latest = latest_profiles(live)
    assert {doc["m_score"] for doc in latest.values()} == {1, 2, 4}  # 1 + floor(5 * worse / 3)
    clock = evaluator_clock(live)
    assert clock is not None and clock > now_ms - 10_000  # the wall clock, not the last event


def metric(port: int, name: str) -> float | None:
    """One unlabelled sample from a worker's /metrics page; None while it does not serve yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    line = next((line for line in text.splitlines() if line.startswith(name + " ")), None)
    return float(line.split()[1]) if line else None


def test_killing_the_evaluating_worker_mid_tick_loses_nothing_and_changes_nothing(
    settings: Settings, start_worker: WorkerFactory
) -> None:
    """The clock partition's owner is SIGKILLed while it evaluates; the other worker takes over."""
    history = load_cdnow(sample=True)
    from segstream.stack_processes import free_ports

    ports = dict(zip("ab", free_ports(2), strict=True))
    workers = {
        name: start_worker(settings.model_copy(update={"web_enabled": True, "web_port": port}), name)
        for name, port in ports.items()
    }
    replay_history(history, settings, progress=False, tick_every=None)
    wait_for_stats(settings, lambda s: s.applied >= SAMPLE_EVENTS, list(workers.values()))
    end = watermark(settings) + 1
    from segstream.kafka_io import send_tick

    send_tick(settings, end, source="test")
    deadline = time.monotonic() + 120
    owner = None
    while owner is None:  # the owner is the worker whose evaluator clock moved, half-way through
        assert time.monotonic() < deadline, "no worker started evaluating"
        for name, port in ports.items():
            clock = metric(port, "segstream_evaluator_clock_ms")
            if clock and clock < end:
                owner = name
        time.sleep(0.05)
    workers[owner].kill()
    workers[owner].wait(10)
    survivor = workers["b" if owner == "a" else "a"]
    wait_for_clock(settings, end, survivor)

    changes = changes_of(settings)
    unique = {c["change_id"]: c for c in changes}
    assert all(c == unique[c["change_id"]] for c in changes)  # a republished change is an identical copy
    pure, pure_summary, pure_alerts = pure_run(history, end)
    reference = Counter(json.dumps(c, sort_keys=True) for c in pure)
    assert Counter(json.dumps(c, sort_keys=True) for c in unique.values()) == reference
    # the learned models survived the kill: the churn model's record and scorer and the lifetime
    # model are the pure run's; the alerts, deduplicated, are the pure run's
    saved = stored_summary(settings)
    assert saved is not None and saved["churn"] == json.loads(json.dumps(pure_summary["churn"]))
    assert saved["lifetime"] == json.loads(json.dumps(pure_summary["lifetime"]))
    alerts = {a["alert_id"]: a for a in alerts_of(settings)}
    assert sorted(alerts) == sorted(a["alert_id"] for a in pure_alerts)
    # the killed worker restarts: both workers score with the same, saved model versions
    restarted = start_worker(
        settings.model_copy(update={"web_enabled": True, "web_port": ports[owner]}), "restarted"
    )
    customer = sorted(unique.values(), key=lambda c: c["customer_id"])[11]["customer_id"]
    documents = []
    for port in ports.values():
        deadline = time.monotonic() + 60
        while metric(port, "segstream_evaluator_clock_ms") is None:  # serving yet?
            assert restarted.poll() is None and time.monotonic() < deadline, (
                "the restarted worker does not serve"
            )
            time.sleep(0.5)
        status, document = get(f"http://127.0.0.1:{port}/customers/{customer}")
        assert status == 200
        documents.append(document)
    assert documents[0] == documents[1]
    assert documents[0]["predictions"]["lifetime_model_version"] == saved["lifetime"]["version"]
    assert documents[0]["predictions"]["churn_model_version"] == saved["churn"]["version"] > 0
    latest = latest_profiles(settings)
    assert {c: profile(doc) for c, doc in latest.items()} == fold_changes(
        as_changes(sorted(unique.values(), key=lambda c: (c["customer_id"], c["occurred_at"])))
    )


def pure_run(
    history: pd.DataFrame, until_ms: int
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """The change messages, summary and alert messages of the pure evaluator (no Kafka, no Redis)."""
    from state.evaluator.config import EvaluatorConfig
    from state.evaluator.evaluate import Evaluator
    from state.evaluator.messages import alert_message, change_message
    from state.evaluator.read_model import summary_record
    from state.segments.segments import load_preset

    preset = load_preset("rfm11")
    evaluator = Evaluator(EvaluatorConfig(preset))
    changes = evaluator.advance(until_ms, history_logs(history))
    alerts = [json.loads(alert_message(a)) for a in evaluator.take_alerts()]
    return (
        [json.loads(change_message(c, preset)) for c in changes],
        summary_record(evaluator.summary()),
        alerts,
    )

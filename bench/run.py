"""``make bench``: segstream's throughput next to the batch recompute it replaces.

Starts a private Kafka + Redis, then measures, all in this one run on this machine:

1. pandas: recomputing the whole CDNOW RFM table from scratch (the baseline);
2. the Redis fold alone: pipelined batches vs one awaited call per event;
3. kafka-python replay: publishing CDNOW master to the purchases topic;
4. two baselines on the same topic: a Faust worker that does nothing (``bench/noop_worker.py``)
   and a plain aiokafka consumer doing the worker's batch step (``bench/aiokafka_worker.py``);
5. the worker: CDNOW master already in Kafka, one ``segstream worker`` process
   folding it into Redis (first event applied -> last event applied), no clock ticks yet;
6. live segments: then one clock tick after the last event, and the time until the worker's
   segment evaluator has published every change for the whole history, next to the pure
   evaluator (``state.evaluator.evaluate``, no Kafka, no Redis) on the same history in this process.

Writes ``bench/results.json`` and prints a Markdown table for the README.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.settings import Settings
from segstream.batch import rfm_table
from segstream.demo import spawn_worker, stop_worker
from segstream.kafka_io import ensure_topics, send_tick
from segstream.replay import replay_history
from segstream.sources import history_logs, load_cdnow, occurred_at_ms
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from segstream.stack_processes import free_ports
from state.adapters.redis_profiles import RedisProfileStore
from state.adapters.redis_store import RedisStore
from state.customer.store import Delivery
from state.evaluator.config import EvaluatorConfig
from state.evaluator.evaluate import Evaluator
from state.evaluator.read_model import load_summary
from state.segments.segments import load_preset
from streams.contract import decode_purchase

RESULTS = Path(__file__).with_name("results.json")


def bench_pandas(history: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        rfm_table(history)  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def bench_store(settings: Settings, deliveries: list[Delivery]) -> dict[str, float]:
    store = RedisStore.connect(settings.redis_access, "bench-pipelined:")
    started = time.perf_counter()
    for i in range(0, len(deliveries), 1000):
        await store.apply_batch(deliveries[i : i + 1000])
    pipelined = len(deliveries) / (time.perf_counter() - started)
    single = RedisStore.connect(settings.redis_access, "bench-single:")
    sample = deliveries[:10_000]
    started = time.perf_counter()
    for d in sample:
        await single.apply_batch([d])
    one_by_one = len(sample) / (time.perf_counter() - started)
    await store.close()
    await single.close()
    return {"pipelined_events_per_s": pipelined, "one_call_per_event_events_per_s": one_by_one}


async def wait_segments(settings: Settings, until_ms: int) -> float:
    """Seconds until the worker's segment evaluator reaches ``until_ms``."""
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    started = time.perf_counter()
    try:
        while True:
            summary = await load_summary(profiles)
            if summary is not None and summary.as_of_ms == until_ms:
                return time.perf_counter() - started
            await asyncio.sleep(0.05)
    finally:
        await profiles.close()


def bench_pure_evaluator(history: object, until_ms: int) -> tuple[float, int, dict[str, object]]:
    """Seconds and change count of the pure evaluator over the whole history (baseline for 5),
    and what its predictions did: lifetime model versions, alerts by kind, churn model."""
    import pandas as pd

    assert isinstance(history, pd.DataFrame)
    logs = history_logs(history)
    evaluator = Evaluator(EvaluatorConfig(load_preset("rfm11")))
    started = time.perf_counter()
    changes = evaluator.advance(until_ms, logs)
    seconds = time.perf_counter() - started
    alerts: dict[str, int] = {}
    for alert in evaluator.take_alerts():
        alerts[alert.kind] = alerts.get(alert.kind, 0) + 1
    churn = evaluator.churn.report()
    predictions = {
        "lifetime_model_version": evaluator.lifetime.version if evaluator.lifetime else 0,
        "alerts": alerts,
        "churn_model_version": churn["version"],
        "churn_prequential_auc": churn["auc"],
    }
    return seconds, len(changes), predictions


async def wait_worker(settings: Settings, total: int) -> float:
    """Seconds from the first applied event to the last."""
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    first = None
    while True:
        stats = await store.stats()
        now = time.perf_counter()
        if first is None and stats.applied > 0:
            first = (now, stats.applied)
        if stats.applied >= total:
            await store.close()
            assert first is not None
            return (now - first[0]) / (total - first[1]) * total
        await asyncio.sleep(0.05)


def bench_baseline(script: str, settings: Settings, total: int, root: Path) -> float:
    """Seconds the baseline consumer ``script`` (in bench/) needs for the same ``total`` events."""
    return float(baseline_result(script, settings, total, root)["seconds"])


def baseline_result(script: str, settings: Settings, total: int, root: Path) -> dict[str, float]:
    """What the baseline consumer ``script`` (in bench/) wrote after ``total`` events (its seconds, ...)."""
    out = root / f"{script}.json"
    env = dict(os.environ)
    env.update(settings.to_env())
    subprocess.run(
        [sys.executable, str(Path(__file__).with_name(script)), str(total), str(out)],
        env=env,
        check=True,
        timeout=600,
    )
    result: dict[str, float] = json.loads(out.read_text())
    return result


LARGE_BATCHES = {"batch_size": 1000, "batch_within_s": 0.2}
"""The defaults before 2026-11-30: ingest and its two baselines are measured with these too."""


def bench_large_batches(settings: Settings, history: pd.DataFrame, root: Path) -> dict[str, float]:
    """Events/s of the worker and both baselines with ``LARGE_BATCHES``, on a topic of their own."""
    large = settings.model_copy(
        update={**LARGE_BATCHES, "namespace": settings.namespace + "1000", "data_dir": root / "worker-1000"}
    )
    ensure_topics(large)
    (root / "1000").mkdir()
    total = len(history)
    replay_history(history, large, progress=False, tick_every=None)
    noop_s = bench_baseline("noop_worker.py", large, total, root / "1000")
    aiokafka_s = bench_baseline("aiokafka_worker.py", large, total, root / "1000")
    worker = spawn_worker(large, root / "worker-1000.log")
    try:
        worker_s = asyncio.run(wait_worker(large, total))
    finally:
        stop_worker(worker)
    return {
        **LARGE_BATCHES,
        "faust_noop_events_per_s": total / noop_s,
        "aiokafka_same_work_events_per_s": total / aiokafka_s,
        "worker_events_per_s": total / worker_s,
    }


def main() -> None:
    history = load_cdnow()
    total = len(history)
    root = Path(tempfile.mkdtemp(prefix="segstream-bench-"))
    stack = start_stack(root, default_cache_dir())
    worker = None
    try:
        settings = Settings(
            kafka_url=stack.kafka_url,
            redis_url=stack.redis_url,
            namespace="bench",
            clock="ticks",  # the replay's ticks only: the same instants as the pure evaluator's run
            web_enabled=False,
            web_port=free_ports(1)[0],
            data_dir=root / "worker",
        )
        ensure_topics(settings)
        pandas_s = bench_pandas(history)

        from segstream.sources import wire_events

        deliveries = [
            Delivery(decode_purchase(value), "purchases", 0, i)
            for i, (_, value) in enumerate(wire_events(history))
        ]
        store = asyncio.run(bench_store(settings, deliveries))

        replay = replay_history(history, settings, progress=False, tick_every=None)
        noop_s = bench_baseline("noop_worker.py", settings, total, root)
        aiokafka_s = bench_baseline("aiokafka_worker.py", settings, total, root)
        worker = spawn_worker(settings, root / "worker.log")
        worker_s = asyncio.run(wait_worker(settings, total))
        until_ms = max(occurred_at_ms(history)) + 1
        send_tick(settings, until_ms, source="bench")
        segments_s = asyncio.run(wait_segments(settings, until_ms))
        pure_s, changes, predictions = bench_pure_evaluator(history, until_ms)
        stop_worker(worker)
        worker = None
        large = bench_large_batches(settings, history, root)
    finally:
        if worker is not None:
            stop_worker(worker)
        stop_stack(stack)

    worker_rate = total / worker_s
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "events": total,
        "pandas_full_recompute_s": pandas_s,
        "redis_fold": store,
        "replay_publish_events_per_s": replay.rate,
        "faust_noop_events_per_s": total / noop_s,
        "aiokafka_same_work_events_per_s": total / aiokafka_s,
        "worker_events_per_s": worker_rate,
        "worker_seconds_for_cdnow": worker_s,
        "segments_in_worker_s": segments_s,
        "segments_pure_evaluator_s": pure_s,
        "segment_changes": changes,
        "pure_evaluator_predictions": predictions,
        "batch_size": settings.batch_size,
        "batch_within_s": settings.batch_within_s,
        "large_batches": large,
        "ratios": {
            "segments_worker_vs_pure_evaluator": segments_s / pure_s,
            "pipelined_vs_one_call_per_event": store["pipelined_events_per_s"]
            / store["one_call_per_event_events_per_s"],
            "worker_event_latency_budget_vs_pandas_recompute": pandas_s / (1 / worker_rate),
            "worker_vs_faust_noop": worker_rate / (total / noop_s),
            "worker_vs_aiokafka_same_work": worker_rate / (total / aiokafka_s),
        },
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    per_event_us = 1e6 / worker_rate
    print(f"| measure (CDNOW master, {total:,} events) | figure |")
    print("|---|---|")
    print(f"| pandas: recompute the whole RFM table (baseline) | {pandas_s * 1000:.0f} ms |")
    print(
        f"| worker: Kafka -> validate -> Redis Lua fold | {worker_rate:,.0f} events/s ({per_event_us:.0f} µs/event) |"
    )
    print(f"| worker: time to fold all of CDNOW | {worker_s:.1f} s |")
    print(
        f"| baseline: Faust worker doing nothing, same batching | {total / noop_s:,.0f} events/s "
        f"(worker = {worker_rate / (total / noop_s):.0%} of it) |"
    )
    print(
        f"| baseline: plain aiokafka consumer doing the same batch step (validate, Lua fold, commit) "
        f"| {total / aiokafka_s:,.0f} events/s (worker = {worker_rate / (total / aiokafka_s):.0%} of it) |"
    )
    print(f"| replay: kafka-python publish | {replay.rate:,.0f} events/s |")
    print(
        f"| Redis fold, one Lua call per 1,000-event batch | {store['pipelined_events_per_s']:,.0f} events/s |"
    )
    print(
        f"| Redis fold, one awaited call per event | {store['one_call_per_event_events_per_s']:,.0f} events/s |"
    )
    print(
        f"| ratio: one incremental update vs one batch recompute | "
        f"1 event = {per_event_us:.0f} µs vs {pandas_s * 1000:.0f} ms "
        f"({results['ratios']['worker_event_latency_budget_vs_pandas_recompute']:,.0f}x) |"
    )
    print(
        f"| live segments: worker evaluates the whole history after one tick ({changes:,} changes published) "
        f"| {segments_s:.1f} s |"
    )
    print(
        f"| baseline: the pure evaluator on the same history, no Kafka or Redis | {pure_s:.1f} s "
        f"(worker = {segments_s / pure_s:.1f}x of it) |"
    )
    w, n, a = (
        large[k]
        for k in ("worker_events_per_s", "faust_noop_events_per_s", "aiokafka_same_work_events_per_s")
    )
    print(
        f"| the same three with batches of {large['batch_size']:,.0f} within {large['batch_within_s']:g} s "
        f"(defaults: {settings.batch_size} within {settings.batch_within_s:g} s): worker / Faust doing nothing / "
        f"plain aiokafka | {w:,.0f} / {n:,.0f} ({w / n:.0%}) / {a:,.0f} ({w / a:.0%}) events/s |"
    )
    print(f"pure evaluator's predictions: {json.dumps(predictions)}")
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()

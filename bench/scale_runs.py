"""One population through ``bench/scale.py``'s phases: ingest and instants with one worker (with
Redis memory and the worker's peak RSS), then ingest with two workers in a second namespace."""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd
import redis
from scale_data import REPO, new_purchases, population, quiet_days_after
from scale_probes import applied, children_peak_rss_mb, memory_by_kind, peak_rss_mb, used_memory, wait_page
from scale_waits import timed_tick, wait_ingest, wait_two_workers

from agents.settings import Settings
from segstream.demo import spawn_worker, stop_worker
from segstream.kafka_io import ensure_topics
from segstream.population_gen import DAY_MS, PRESETS, expected_events_per_customer
from segstream.replay import replay_history, replay_table
from segstream.sources import occurred_at_ms
from segstream.stack_processes import free_ports

HOUR_MS = 3_600_000


def one_worker(
    base: Settings, root: Path, path: Path, rows: int, customers: int, args: argparse.Namespace
) -> dict[str, Any]:
    port = free_ports(1)[0]
    settings = base.model_copy(
        update={"namespace": f"{root.name}w1", "web_port": port, "data_dir": root / "w1"}
    )
    ensure_topics(settings)
    client = redis.Redis.from_url(settings.redis_url)
    memory0 = used_memory(client)
    published = replay_table(path, settings, progress=False, tick_every=None)
    worker = spawn_worker(settings, root / "w1.log")
    try:
        wait_page(port)
        ingest_s = wait_ingest(client, settings, rows, [worker], args.timeout_s)
        memory_ingest = used_memory(client)
        history = pd.read_parquet(path, columns=["customer_id", "occurred_at"])
        repeats = args.repeats
        day = quiet_days_after(max(occurred_at_ms(history)), 1 + 3 * repeats)
        ticked = functools.partial(timed_tick, settings, port, workers=[worker], timeout_s=args.timeout_s)
        whole = ticked(day, offsets=True)
        quiet_offsets = ticked(day + DAY_MS, offsets=True)
        quiet = [ticked(day + k * DAY_MS, offsets=False) for k in range(2, 2 + repeats)]
        customers_ids = sorted(set(history["customer_id"]))
        busy = []
        for k in range(2 + repeats, 2 + 2 * repeats):  # new events during the day before each instant
            live = new_purchases(customers_ids, args.new_events, day + (k - 1) * DAY_MS, args.seed + k)
            target = applied(client, settings) + len(live)
            replay_history(live, settings, progress=False, tick_every=None)
            wait_ingest(client, settings, target, [worker], args.timeout_s)
            busy.append({**ticked(day + k * DAY_MS, offsets=False), "new_events": len(live)})
        live_busy, live_quiet = [], []
        for k in range(2 + 2 * repeats, 2 + 3 * repeats):  # off the grid, as a watermark clock's instants
            midnight = day + k * DAY_MS
            ticked(midnight, offsets=False)  # the grid instant first: the live instants measure alone
            live = new_purchases(
                customers_ids, args.new_events, midnight, args.seed + k, span_ms=11 * HOUR_MS
            )
            target = applied(client, settings) + len(live)
            replay_history(live, settings, progress=False, tick_every=None)
            wait_ingest(client, settings, target, [worker], args.timeout_s)
            live_busy.append({**ticked(midnight + 12 * HOUR_MS, offsets=False), "new_events": len(live)})
            live_quiet.append(ticked(midnight + 13 * HOUR_MS, offsets=False))
        rss, evaluation_rss = peak_rss_mb(worker.pid), children_peak_rss_mb(worker.pid)
    finally:
        stop_worker(worker)
    time.sleep(2 * base.dedupe_window_s)  # every event_id generation written so far has expired
    kinds = memory_by_kind(client, settings.redis_prefix)  # reads every key: expired ones go now
    memory_end = used_memory(client)
    client.close()
    return {
        "publish_events_per_s": published.rate,
        "ingest_s": ingest_s,
        "ingest_events_per_s": rows / ingest_s,
        "evaluate_history": whole,
        "quiet_instant_tick_with_offsets": quiet_offsets,
        "quiet_instants": quiet,
        "quiet_instant_s": statistics.median(q["tick_s"] for q in quiet),
        "instants_with_new_events": busy,
        "instant_with_new_events_s": statistics.median(b["tick_s"] for b in busy),
        "live_instants_with_new_events": live_busy,
        "live_instant_with_new_events_s": statistics.median(b["tick_s"] for b in live_busy),
        "live_quiet_instants": live_quiet,
        "live_quiet_instant_s": statistics.median(q["tick_s"] for q in live_quiet),
        "worker_peak_rss_mb": rss,
        "evaluation_process_peak_rss_mb": evaluation_rss,
        "redis_used_memory": {"before": memory0, "after_ingest": memory_ingest, "after_instants": memory_end},
        "redis_bytes_per_customer_after_ingest": (memory_ingest - memory0) / customers,
        "redis_bytes_per_customer": (memory_end - memory0) / customers,
        "memory_usage_by_kind": {
            k: {**v, "bytes_per_customer": v["bytes"] / customers} for k, v in kinds.items()
        },
    }


def two_workers(
    base: Settings, root: Path, path: Path, rows: int, args: argparse.Namespace
) -> dict[str, Any]:
    settings = base.model_copy(update={"namespace": f"{root.name}w2"})
    ensure_topics(settings)
    replay_table(path, settings, progress=False, tick_every=None)
    ports = free_ports(2)
    workers = [
        spawn_worker(
            settings.model_copy(update={"web_port": p, "data_dir": root / f"w2-{i}"}), root / f"w2-{i}.log"
        )
        for i, p in enumerate(ports)
    ]
    try:
        client = redis.Redis.from_url(settings.redis_url)
        for port in ports:
            wait_page(port)
        result = wait_two_workers(client, settings, rows, workers, ports, args.timeout_s)
        client.close()
        rss = [peak_rss_mb(w.pid) for w in workers]
    finally:
        for worker in workers:
            stop_worker(worker)
    return {**result, "worker_peak_rss_mb": rss}


def run_population(
    stack_urls: tuple[str, str], top: Path, preset: str, customers: int, args: argparse.Namespace
) -> dict[str, Any]:
    path, rows, generate_s = population(preset, customers, args.seed)
    print(f"{preset} {customers:,} customers: {rows:,} events ({path.name})", flush=True)
    root = top / f"{preset[0]}{customers}"
    base = Settings(
        kafka_url=stack_urls[0],
        redis_url=stack_urls[1],
        clock="ticks",
        web_enabled=True,
        dedupe_window_s=args.dedupe_window_s,
    )
    started = time.perf_counter()
    result: dict[str, Any] = {
        "preset": preset,
        "customers": customers,
        "events": rows,
        "events_per_customer": rows / customers,
        "model_events_per_customer": expected_events_per_customer(PRESETS[preset]),
        "file": str(path.relative_to(REPO)),
        "generate_s": generate_s,
    }
    result["one_worker"] = one_worker(base, root, path, rows, customers, args)
    print(f"  1 worker: {json.dumps(result['one_worker'], default=str)[:400]}", flush=True)
    if args.two_workers:
        result["two_workers"] = two_workers(base, root, path, rows, args)
        one_rate, two = result["one_worker"]["ingest_events_per_s"], result["two_workers"]
        result["two_vs_one_worker_ingest"] = two["ingest_events_per_s"] / one_rate
        result["two_vs_one_worker_ingest_steady"] = (
            two["steady_events_per_s"] / one_rate if two["steady_events_per_s"] else None
        )
        print(f"  2 workers: {result['two_workers']} ({result['two_vs_one_worker_ingest']:.2f}x)", flush=True)
    client = redis.Redis.from_url(stack_urls[1])
    client.flushall()
    client.close()
    result["run_s"] = time.perf_counter() - started
    return result

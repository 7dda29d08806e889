"""``make bench-scale``: today's design at 10k, 100k (and, by ARGS, 1M) generated customers.

For each population (``segstream.population_gen``: BG/NBD-like, seeded, two years; ``sparse``
about 4 events per customer, ``dense`` about 40) on one private Kafka + Redis it measures:

1. **ingest, 1 worker**: the whole history published first (``segstream``'s streamed file replay,
   no clock ticks), then one ``segstream worker`` (clock ``ticks``) folds it: events/s from the
   first applied event to the last, as ``make bench`` measures it;
2. **evaluation**: one tick just past the history (the whole two years evaluated in one go);
   then one quiet instant (one grid day, no new events) ticked as ``segstream replay`` and
   ``segstream clock`` tick (the tick names the topics' end offsets, which the evaluator checks
   against Kafka's before it evaluates), ``--repeats`` quiet instants ticked bare (no offsets:
   every event is applied already, so only the evaluation: agenda, evaluate, publish, save), and
   ``--repeats`` bare instants each after ``--new-events`` purchases of distinct existing
   customers (medians in the table); all of these are grid instants (UTC midnights), where the
   predictions cover every buyer. Then ``--repeats`` *live* instants, off the grid as a watermark
   clock's are: after each midnight is ticked, ``--new-events`` purchases during its first 11
   hours, an instant ticked at 12:00 and a quiet one at 13:00. Each instant's cost is the worker's own
   ``segstream_tick_seconds``, scraped from ``/metrics``, beside the wall time from sending the
   tick to the worker observing it and the profile changes it published;
3. **Redis**: ``INFO memory`` ``used_memory`` before the replay, after ingest and after the
   instants (measured two dedupe windows after the last event: ``--dedupe-window-s``, 60 s, so the
   event_id sets of the window have expired, as they do ``SEGSTREAM_DEDUPE_WINDOW_S`` after live
   events), over customers; and every key of the namespace by ``MEMORY USAGE`` (``SAMPLES 0``),
   grouped by kind (``seg:{id}`` state hash, ``:ev``, ``:days``, ``:log``, ``:t``, the evaluator's
   ``view`` hash, ``model``, agenda, ...);
4. **worker peak RSS**: ``VmHWM`` from ``/proc`` before the worker stops;
5. **ingest, 2 workers** on the 4 partitions: the same history in a second namespace, both
   workers started together (the rebalance is part of the figure). Evaluation is not measured
   with 2 workers: only the owner of the one-partition clock topic evaluates.

Writes ``bench/scale.json`` and prints a Markdown table. Generated files are cached under
``.cache/scale/``; the stack's Kafka and Redis data are removed at the end (the workers' logs
stay in the printed temporary directory).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
import redis
from scale_probes import (
    applied,
    changes_published,
    folded,
    memory_by_kind,
    peak_rss_mb,
    tick_metric,
    used_memory,
    wait_page,
)
from scale_table import flatness, kinds_table, main_table

from agents.settings import Settings
from segstream.demo import spawn_worker, stop_worker
from segstream.kafka_io import Publisher, ensure_topics, send_tick
from segstream.population_gen import DAY_MS, PRESETS, expected_events_per_customer, write_population
from segstream.replay import replay_history, replay_table
from segstream.sources import occurred_at_ms, table_rows
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from segstream.stack_processes import free_ports
from streams.outputs import tick_message
from streams.topics import CLOCK

REPO = Path(__file__).resolve().parents[1]
HOUR_MS = 3_600_000
CACHE = REPO / ".cache" / "scale"
REFIT_EVERY_MS = (
    28 * DAY_MS
)  # the evaluator's refit/churn/publish grid (state.evaluator.config.EvaluatorConfig)


def _alive(workers: list[Any]) -> None:
    for process in workers:
        if process.poll() is not None:
            raise RuntimeError(f"worker {process.pid} exited with code {process.returncode}")


def wait_ingest(
    client: redis.Redis, settings: Settings, total: int, workers: list[Any], timeout_s: float
) -> float:
    """Seconds to fold ``total`` events: first applied -> last applied, extrapolated to all of them."""
    deadline = time.monotonic() + timeout_s
    first: tuple[float, int] | None = None
    while time.monotonic() < deadline:
        done, now = applied(client, settings), time.perf_counter()
        if first is None and done > 0:
            first = (now, done)
        if done >= total and first is not None:
            return (now - first[0]) / max(1, total - first[1]) * total
        _alive(workers)
        time.sleep(0.05)
    raise TimeoutError(
        f"{settings.namespace}: {applied(client, settings):,} of {total:,} applied after {timeout_s:g} s"
    )


def wait_two_workers(
    client: redis.Redis,
    settings: Settings,
    total: int,
    workers: list[Any],
    ports: list[int],
    timeout_s: float,
) -> dict[str, Any]:
    """Two workers folding ``total`` events: events/s over the whole fold (first applied -> last,
    the group's rebalance included) and over the steady part (from when both have folded a batch)."""
    deadline = time.monotonic() + timeout_s
    first: tuple[float, int] | None = None
    both: tuple[float, int] | None = None
    while time.monotonic() < deadline:
        done, now = applied(client, settings), time.perf_counter()
        if first is None and done > 0:
            first = (now, done)
        if both is None and done > 0 and all(folded(p) > 0 for p in ports):
            both = (now, done)
        if done >= total and first is not None:
            whole_s = (now - first[0]) / max(1, total - first[1]) * total
            steady = None if both is None or done <= both[1] else (done - both[1]) / (now - both[0])
            return {
                "ingest_s": whole_s,
                "ingest_events_per_s": total / whole_s,
                "steady_events_per_s": steady,
                "steady_events": done - both[1] if both else 0,
                "events_per_worker": [folded(p) for p in ports],
            }
        _alive(workers)
        time.sleep(0.1)
    raise TimeoutError(
        f"{settings.namespace}: {applied(client, settings):,} of {total:,} applied after {timeout_s:g} s"
    )


def timed_tick(
    settings: Settings, port: int, as_of_ms: int, *, workers: list[Any], timeout_s: float, offsets: bool
) -> dict[str, float]:
    """Send one tick; wait until the worker observed it. Its own tick seconds and the wall time.

    ``offsets``: the tick names the topics' end offsets as ``segstream replay`` and ``segstream
    clock`` send it (the evaluator first checks them against Kafka's end offsets and waits for
    them to be processed); without, a bare tick (every event is already applied here): only
    the evaluation itself (agenda, evaluate, publish, save).
    """
    before_sum, before_count = tick_metric(port)
    before_changes = changes_published(port)
    started = time.perf_counter()
    if offsets:
        send_tick(settings, as_of_ms, source="bench-scale")
    else:
        publisher = Publisher(settings)
        try:
            publisher.send(settings.topic(CLOCK), None, tick_message(as_of_ms, {}, "bench-scale"))
            publisher.flush()
        finally:
            publisher.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        total, count = tick_metric(port)
        if count > before_count:
            wall_s = time.perf_counter() - started
            return {
                "tick_s": total - before_sum,
                "wall_s": wall_s,
                "changes": changes_published(port) - before_changes,
            }
        _alive(workers)
        time.sleep(0.1)
    raise TimeoutError(f"tick {as_of_ms} not evaluated after {timeout_s:g} s")


def quiet_days_after(last_ms: int, days: int) -> int:
    """A UTC midnight after ``last_ms`` whose next ``days`` days are plain grid days (no refit/churn)."""
    day = (last_ms // DAY_MS + 1) * DAY_MS
    while any((day + k * DAY_MS) % REFIT_EVERY_MS == 0 for k in range(1, days + 1)):
        day += DAY_MS
    return day


def new_purchases(
    customers: list[str], count: int, day_ms: int, seed: int, span_ms: int = DAY_MS - 3_600_000
) -> pd.DataFrame:
    """``count`` purchases of distinct existing customers in ``[day_ms, day_ms + span_ms)``."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(customers), size=min(count, len(customers)), replace=False)
    at = day_ms + rng.integers(0, span_ms, chosen.size)
    return pd.DataFrame(
        {
            "event_id": [f"live:{day_ms}:{i}" for i in range(chosen.size)],
            "customer_id": [customers[i] for i in chosen.tolist()],
            "occurred_at": pd.to_datetime(at, unit="ms", utc=True),
            "amount": np.round(rng.lognormal(np.log(30.0), 0.6, chosen.size), 2),
            "type": "purchase",
        }
    )


def population(preset: str, customers: int, seed: int) -> tuple[Path, int, float | None]:
    """The cached Parquet file (written if missing), its rows and the seconds to generate it
    (None: it was cached)."""
    path = CACHE / f"{preset}-{customers}-seed{seed}.parquet"
    if path.exists():
        return path, int(table_rows(path) or 0), None
    started = time.perf_counter()
    rows = write_population(path, customers, seed, PRESETS[preset])
    return path, rows, time.perf_counter() - started


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
        rss = peak_rss_mb(worker.pid)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000], help="customers, sparse preset"
    )
    parser.add_argument(
        "--dense-size", type=int, default=10_000, help="customers of the ~40 events/customer run (0: none)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--repeats", type=int, default=3, help="quiet instants, and instants with new events, each"
    )
    parser.add_argument(
        "--new-events", type=int, default=1_000, help="purchases in the measured busy instant"
    )
    parser.add_argument("--timeout-s", type=float, default=3_600.0, help="per phase")
    parser.add_argument(
        "--dedupe-window-s",
        type=int,
        default=60,
        help="the workers' SEGSTREAM_DEDUPE_WINDOW_S: the memory after the instants is measured two windows "
        "after the last event, as it stands once the window has passed (the default window is 7 days)",
    )
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("scale.json"))
    args = parser.parse_args()
    plan = [("sparse", n) for n in args.sizes] + ([("dense", args.dense_size)] if args.dense_size else [])
    top = Path(tempfile.mkdtemp(prefix="segstream-scale-"))
    started = datetime.now(UTC)
    load_at_start = os.getloadavg()[0]
    stack = start_stack(top, default_cache_dir())
    runs = []
    try:
        for preset, customers in plan:
            runs.append(run_population((stack.kafka_url, stack.redis_url), top, preset, customers, args))
    finally:
        stop_stack(stack)
        for data in ("kafka", "redis"):  # gigabytes at 100k; the workers' logs stay
            shutil.rmtree(top / data, ignore_errors=True)
        print(f"worker logs in {top}", flush=True)
    tables = [main_table(runs), flatness(runs) or "", kinds_table(runs)]
    result = {
        "command": "python bench/scale.py " + " ".join(sys.argv[1:]),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_at_start": load_at_start,
        },
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "runs": runs,
        "tables": tables,
    }
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print("\n\n".join(t for t in tables if t))
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

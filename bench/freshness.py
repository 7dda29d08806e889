"""``make bench``, freshness part: how long a live purchase takes to become a segment change.

Run after ``bench/run.py`` in the same ``make bench``: it reads the worker's ingest capacity from
``bench/results.json`` and produces at **half of it** for ``SECONDS`` with event times = now, on
a private Kafka + Redis, with the default clock (``watermark``), first to one worker, then to two.

Every generated purchase is a new customer's first (generated data: the only way to tie each
change to exactly one purchase), so each yields one evaluated ``segment-changes`` entry, and one
provisional entry before it once the evaluator has saved cut-points (the first purchases of a run
precede them), and these latencies are measured per purchase:

- **send -> change consumed** (exact, outside the workers): kafka-python producer send time to
  a consumer reading the change off ``segment-changes`` (in a process of its own, so that it
  keeps up); an upper bound of receipt -> change;
- **send -> provisional change produced**: to the change record's timestamp, which the worker's
  producer sets when it sends (same machine, same clock); what the purchase waited before the
  worker's stream had it (Kafka, the fetch) shows here and not in receipt -> published;
- **receipt -> change published** (receipt: the worker's consumer handing the message to its
  stream, Faust's ``time_in``; what waited before it in Kafka or the client's fetch buffer is in
  send -> consumed), the worker's own ``segstream_receipt_to_change_seconds``
  histogram scraped from ``/metrics`` (quantiles interpolated within its buckets);
- each worker's **event-loop lag** (``segstream_event_loop_lag_seconds``: how late a 50 ms sleep
  on its loop ended; a stall there holds every step);
- the **batch wait** (``segstream_batch_wait_seconds`` summed over the workers: how long a batch's
  first arrival waited in the worker before the batch's step started; part of receipt -> change);
- the same two for the **provisional** change (``provisional: true``, published by the worker that
  folded the purchase): send -> consumed, and ``segstream_receipt_to_provisional_change_seconds``
  summed over the workers;
- the **CPU** every process used while the producers ran, in cores, grouped by role
  (``bench.cpu_use``): whether the machine had a core to spare for the purchase's next step.

Writes ``bench/freshness.json`` and prints a Markdown table for the README. ``python
bench/freshness.py SECONDS FRACTION`` produces at another fraction of the capacity instead and
writes ``bench/freshness-FRACTION.json``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka import KafkaConsumer, KafkaProducer

from agents.settings import Settings
from bench.cpu_use import cores_by_role, read_times
from segstream.demo import spawn_worker, stop_worker
from segstream.kafka_io import ensure_topics
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from segstream.stack_processes import free_ports
from streams.topics import PURCHASES, SEGMENT_CHANGES

RESULTS = Path(__file__).with_name(
    "freshness.json" if len(sys.argv) <= 2 else f"freshness-{sys.argv[2]}.json"
)
CAPACITY = Path(__file__).with_name("results.json")
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
FRACTION = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5  # of the measured ingest capacity
DRAIN_S = 60.0
PRODUCER_LINGER_MS = 50
"""The load generator's batching. Its producer shares the machine with what it measures: with 5 ms,
kafka-python's producer took 0.37 cores at 951 messages/s and made the broker take 0.52 (one
produce request per partition every few ms); with 50 ms, 0.14 and 0.07 (a throwaway probe,
2026-12-01, ten seconds each on the stack ``make bench`` starts). Receipt -> change starts when
the worker has the purchase, after this wait; send -> consumed includes it."""
QUANTILES = (0.5, 0.95, 0.99)


def exact_quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {f"p{int(q * 100)}": ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in QUANTILES}


def histogram_quantiles(text: str, name: str) -> dict[str, float]:
    """Quantiles of a Prometheus histogram, linear within the bucket (like histogram_quantile)."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    found: dict[str, float] = {}
    for q in QUANTILES:
        rank, lower, below = q * total, 0.0, 0.0
        for upper, count in buckets:
            if count >= rank:
                share = (rank - below) / (count - below) if count > below else 1.0
                found[f"p{int(q * 100)}"] = (
                    lower + share * (upper - lower) if upper != float("inf") else lower
                )
                break
            lower, below = upper, count
    return found


def read_changes(bootstrap: str, topic: str, out: Any, stop: Any) -> None:
    """In a process of its own: each change read off ``topic`` as (key, provisional, consumed at,
    produced at), put on ``out`` in lists, until ``stop`` is set."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    parent = os.getppid()
    try:
        while not stop.is_set() and os.getppid() == parent:  # a killed bench leaves no reader behind
            batch = [
                (
                    m.key.decode(),
                    bool(json.loads(m.value).get("provisional", False)),
                    time.time(),
                    m.timestamp / 1000,
                )
                for records in consumer.poll(timeout_ms=200).values()
                for m in records
                if m.key is not None and m.value is not None
            ]
            if batch:
                out.put(batch)
    finally:
        consumer.close()


def run(settings: Settings, workers: int, rate: float, root: Path) -> dict[str, object]:
    ports = free_ports(workers)
    procs = [
        spawn_worker(settings.model_copy(update={"web_port": port}), root / f"worker-{workers}-{i}.log")
        for i, port in enumerate(ports)
    ]
    try:
        seen: dict[str, float] = {}  # the evaluated change
        early: dict[str, float] = {}  # the provisional change
        early_produced: dict[str, float] = {}  # its record's timestamp: when the worker produced it
        stop = threading.Event()
        # the consumer reading segment-changes runs in a process of its own: in a thread it shared
        # the GIL with the producer and fell seconds behind, which send -> consumed then measured
        spawn = multiprocessing.get_context("spawn")
        changes: Any = spawn.Queue()
        reader_stop = spawn.Event()
        reading = spawn.Process(
            target=read_changes,
            args=(settings.kafka_bootstrap, settings.topic(SEGMENT_CHANGES), changes, reader_stop),
            daemon=True,
        )
        reading.start()

        def read() -> None:
            while not stop.is_set():
                try:
                    batch = changes.get(timeout=0.2)
                except queue.Empty:
                    continue
                for key, provisional, consumed_at, produced_at in batch:
                    (early if provisional else seen).setdefault(key, consumed_at)
                    if provisional:
                        early_produced.setdefault(key, produced_at)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for port in ports:  # every worker up (its web page answers) before the clock starts
            _wait_for_page(f"http://127.0.0.1:{port}/healthz")
        time.sleep(10)  # partitions assigned
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=PRODUCER_LINGER_MS)
        roles = {os.getpid(): "load generator (this script)", reading.pid: "measuring consumer"}
        cpu_before = read_times(roles)
        sent: dict[str, float] = {}
        started = time.time()
        i = 0
        while (now := time.time()) - started < SECONDS:
            due = int((now - started) * rate)
            while i < due:
                customer = f"fresh-{workers}-{i}"
                at = datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds")
                value = json.dumps(
                    {
                        "event_id": f"{customer}-e",
                        "customer_id": customer,
                        "occurred_at": at.replace("+00:00", "Z"),
                        "amount": 12.5,
                    }
                ).encode()
                sent[customer] = time.time()
                producer.send(settings.topic(PURCHASES), key=customer.encode(), value=value)
                i += 1
            time.sleep(0.005)
        producer.flush()
        cpu = cores_by_role(cpu_before, read_times(roles), time.time() - started)
        deadline = time.time() + DRAIN_S
        while time.time() < deadline and len(set(sent) & set(seen)) < len(sent):
            time.sleep(0.2)
        reader_stop.set()
        reading.join(10)
        stop.set()
        reader.join(5)
        latencies = [seen[c] - t for c, t in sent.items() if c in seen]
        early_latencies = [early[c] - t for c, t in sent.items() if c in early]
        produced_latencies = [early_produced[c] - t for c, t in sent.items() if c in early_produced]
        # the backlog over the run: send -> provisional consumed of the first and the last tenth sent
        order = sorted((t, early[c] - t) for c, t in sent.items() if c in early)
        tenth = max(len(order) // 10, 1)
        scraped = [
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
            for port in ports
        ]
        return {
            "workers": workers,
            "events": len(sent),
            "rate_events_per_s": len(sent) / SECONDS,
            "changes_seen": len(latencies),
            "send_to_change_consumed_s": exact_quantiles(latencies) if latencies else {},
            "receipt_to_change_published_s": _evaluator_quantiles(scraped),
            "provisional_changes_seen": len(early_latencies),
            "send_to_provisional_change_consumed_s": exact_quantiles(early_latencies)
            if early_latencies
            else {},
            "send_to_provisional_change_produced_s": exact_quantiles(produced_latencies)
            if produced_latencies
            else {},
            "send_to_provisional_change_consumed_first_and_last_tenth_p50_s": [
                exact_quantiles([lat for _, lat in order[:tenth]])["p50"],
                exact_quantiles([lat for _, lat in order[-tenth:]])["p50"],
            ]
            if order
            else [],
            "receipt_to_provisional_change_published_s": _merged_quantiles(
                scraped, "segstream_receipt_to_provisional_change_seconds"
            ),
            "event_loop_lag_s": [  # each worker's: how late its event loop ran
                histogram_quantiles(page, "segstream_event_loop_lag_seconds") for page in scraped
            ],
            "batch_wait_s": _merged_quantiles(scraped, "segstream_batch_wait_seconds"),
            "machine_cores": os.cpu_count(),
            "cpu_cores_while_producing": cpu,
        }
    finally:
        for p in procs:
            stop_worker(p)


def _evaluator_quantiles(pages: list[str]) -> dict[str, float]:
    """Receipt -> change quantiles from the worker that evaluates (the only one with observations)."""
    name = "segstream_receipt_to_change_seconds"
    for text in pages:
        count = next(
            (float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(f"{name}_count")), 0.0
        )
        if count > 0:
            return histogram_quantiles(text, name)
    return {}


def _latencies(run: dict[str, object], kind: str, unit: str) -> str:
    """``send -> consumed | receipt -> published`` quantiles of one run, ``kind`` '' or 'provisional_'."""
    scale = 1000 if unit == "ms" else 1
    cells = []
    for name in (f"send_to_{kind}change_consumed_s", f"receipt_to_{kind}change_published_s"):
        q = run[name]
        assert isinstance(q, dict)
        cells.append(
            " / ".join(
                f"{scale * q.get(k, float('nan')):.{0 if unit == 'ms' else 2}f} {unit}"
                for k in ("p50", "p95", "p99")
            )
        )
    return " | ".join(cells)


def _merged_quantiles(pages: list[str], name: str) -> dict[str, float]:
    """Quantiles of one histogram summed over every worker's page (each folds its own partitions)."""
    totals: dict[str, float] = {}
    for text in pages:
        for line in text.splitlines():
            if line.startswith(f"{name}_bucket{{"):
                key, value = line.rsplit(" ", 1)
                totals[key] = totals.get(key, 0.0) + float(value)
    if not totals or max(totals.values()) == 0:
        return {}
    return histogram_quantiles("\n".join(f"{k} {v}" for k, v in totals.items()), name)


def _wait_for_page(url: str, timeout_s: float = 120.0) -> None:
    deadline = time.time() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def main() -> None:
    capacity = float(json.loads(CAPACITY.read_text())["worker_events_per_s"])
    rate = capacity * FRACTION
    root = Path(tempfile.mkdtemp(prefix="segstream-freshness-"))
    stack = start_stack(root, default_cache_dir())
    runs = []
    try:
        for workers in (1, 2):
            settings = Settings(
                kafka_url=stack.kafka_url,
                redis_url=stack.redis_url,
                namespace=f"fresh{workers}",
                web_enabled=True,
                data_dir=root / f"data-{workers}",
            )
            ensure_topics(settings)
            runs.append(run(settings, workers, rate, root))
    finally:
        stop_stack(stack)
    results = {
        "capacity_events_per_s": capacity,
        "fraction_of_capacity": FRACTION,
        "clock": "watermark (default)",
        "seconds": SECONDS,
        "runs": runs,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"| workers | events (at {FRACTION:g} of {capacity:,.0f}/s) | changes seen | send -> change consumed p50 / p95 / p99 | receipt -> change published p50 / p95 / p99 (histogram) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['workers']} | {r['events']:,} | {r['changes_seen']:,} | {_latencies(r, '', 's')} |")
    print()
    print(
        "| workers | provisional changes seen | send -> provisional change consumed p50 / p95 / p99 | receipt -> provisional change published p50 / p95 / p99 (histogram) | batch wait p50 / p99 (histogram) | event-loop lag p99, each worker | send -> produced p50 / p99 | send -> consumed p50, first / last tenth sent |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        lags = " / ".join(f"{lag.get('p99', float('nan')) * 1000:.0f} ms" for lag in r["event_loop_lag_s"])
        wait = r["batch_wait_s"]
        waits = (
            f"{wait.get('p50', float('nan')) * 1000:.0f} ms / {wait.get('p99', float('nan')) * 1000:.0f} ms"
        )
        produced = r["send_to_provisional_change_produced_s"]
        made = f"{produced.get('p50', float('nan')):.2f} s / {produced.get('p99', float('nan')):.2f} s"
        tenths = " / ".join(
            f"{v:.2f} s" for v in r["send_to_provisional_change_consumed_first_and_last_tenth_p50_s"]
        )
        print(
            f"| {r['workers']} | {r['provisional_changes_seen']:,} | {_latencies(r, 'provisional_', 'ms')} | {waits} | {lags} | {made} | {tenths} |"
        )
    print()
    print("| workers | CPU used while producing, cores of the machine's | by role |")
    print("|---:|---:|---|")
    for r in runs:
        cpu = r["cpu_cores_while_producing"]
        roles = ", ".join(f"{role} {cores:.2f}" for role, cores in cpu.items())
        print(f"| {r['workers']} | {sum(cpu.values()):.2f} of {r['machine_cores']} | {roles} |")
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()

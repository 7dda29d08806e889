"""Shared pieces of the long-run harnesses (``bench/chaos.py``, ``bench/fuzz.py``).

Only public behaviour of segstream is used: topics, the consumer group (``Settings.app_id``),
the Redis store API (``state.adapters.redis_store``), the ``segstream`` CLI and ``segstream.demo``'s
worker spawning. Nothing here knows how a worker handles faults inside.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import redis.asyncio as redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from agents.settings import Settings
from segstream.demo import spawn_worker, stop_worker
from state.adapters.dedupe_window import DedupeWindow
from state.adapters.redis_profiles import RedisProfileStore
from state.adapters.redis_store import RedisStore
from state.customer.rfm import CustomerState
from state.customer.store import Stats
from state.evaluator.read_model import load_summary

REPO = Path(__file__).resolve().parents[1]


def rss_kb(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB from /proc, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def consumer_lag(settings: Settings, topic: str) -> int | None:
    """Committed offsets of the workers' consumer group vs end offsets of ``topic``, summed.

    None if Kafka cannot be asked right now (e.g. while it restarts).
    """
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000)
    except (KafkaError, OSError):
        return None
    try:
        if hasattr(admin, "list_group_offsets"):  # kafka-python 3: {group: {partition: offset}}
            committed = admin.list_group_offsets(settings.app_id).get(settings.app_id, {})
        else:  # kafka-python 2
            committed = admin.list_consumer_group_offsets(settings.app_id)
        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
        try:
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            ends = consumer.end_offsets(partitions)
        finally:
            consumer.close()
    except (KafkaError, OSError):
        return None
    finally:
        admin.close()
    lag = 0
    for tp in partitions:
        done = committed.get(tp)
        at = done.offset if done is not None and done.offset >= 0 else 0
        lag += max(0, int(ends[tp]) - at)
    return lag


def run_async(make: Callable[[RedisStore], Any], settings: Settings) -> Any:
    """Run one coroutine against a fresh :class:`RedisStore` and close it."""

    async def go() -> Any:
        store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
        try:
            return await make(store)
        finally:
            await store.close()

    return asyncio.run(go())


def read_stats(settings: Settings) -> Stats | None:
    """The store's running totals, or None while Redis is unreachable."""
    try:
        stats: Stats = run_async(lambda s: s.stats(), settings)
        return stats
    except Exception:
        return None


def applied_event_ids(settings: Settings, customer_ids: list[str]) -> int:
    """Distinct event ids Redis holds as applied (each customer's dedupe sets: the current and the
    previous generation of the dedupe window, and the unbounded set of earlier versions): exact,
    unlike the running totals, which count a fold retried after Redis applied it as redelivered,
    as long as the run lasts less than one ``SEGSTREAM_DEDUPE_WINDOW_S`` (7 days by default)."""
    generation = DedupeWindow(settings.dedupe_window_s).now()

    async def count() -> int:
        client = redis.Redis.from_url(settings.redis_url)
        try:
            total = 0
            for start in range(0, len(customer_ids), 5000):
                pipe = client.pipeline(transaction=False)
                for customer in customer_ids[start : start + 5000]:
                    key = f"{settings.redis_prefix}seg:{{{customer}}}"
                    pipe.sunion([f"{key}:ev", *generation.keys(f"{key}:ids")])
                total += sum(len(ids) for ids in await pipe.execute())
            return total
        finally:
            await client.aclose()

    return asyncio.run(count())


def late_entries_pending(settings: Settings, clock_ms: int) -> int:
    """Agenda entries the evaluator has not evaluated although the clock passed them (late events
    waiting for the next sweep, or a sweep under way: it removes them once published and saved)."""

    async def count() -> int:
        client = redis.Redis.from_url(settings.redis_url)
        prefix = settings.redis_prefix
        try:  # one agenda per evaluation partition (state/adapters/agenda_partitions.py)
            partitions = int(await client.get(f"{prefix}eval:partitions") or 0)
            return sum(
                [
                    int(await client.zcount(f"{prefix}eval:{{p{p}}}:agenda", "-inf", clock_ms))
                    for p in range(partitions)
                ]
            )
        finally:
            await client.aclose()

    return asyncio.run(count())


def all_states(settings: Settings) -> list[CustomerState]:
    states: list[CustomerState] = run_async(lambda s: s.all_customers(), settings)
    return states


def evaluator_clock(settings: Settings) -> int | None:
    """The segment evaluator's event-time clock as saved in Redis (None: not yet, or unreachable)."""

    async def go() -> int | None:
        profiles = RedisProfileStore.from_url(settings.redis_url, settings.redis_prefix)
        try:
            summary = await load_summary(profiles)
            return summary.as_of_ms if summary else None
        finally:
            await profiles.close()

    try:
        return asyncio.run(go())
    except Exception:
        return None


def export_customers(settings: Settings, path: Path) -> pd.DataFrame:
    """``segstream export customers`` (the CLI, as a user runs it) to Parquet, read back."""
    env = {**os.environ, **settings.to_env()}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "segstream",
            "export",
            "customers",
            "--format",
            "parquet",
            "--output",
            str(path),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"segstream export failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return pd.read_parquet(path)


def compare_to_oracle(live: pd.DataFrame, expected: pd.DataFrame) -> dict[str, Any]:
    """Customers missing/extra and, for the common ones, mismatches per RFM column (0 = equal)."""
    live_ids, expected_ids = set(live["customer_id"]), set(expected["customer_id"])
    common = sorted(live_ids & expected_ids)
    a = live.set_index("customer_id").loc[common]
    b = expected.set_index("customer_id").loc[common]
    mismatches: dict[str, int] = {}
    differs = pd.Series(False, index=a.index)
    for column in ("frequency", "purchase_days", "monetary_cents", "refunds", "recency_days"):
        x = a[column].astype("Int64").fillna(-1).astype("int64")
        y = b[column].astype("Int64").fillna(-1).astype("int64")
        differs |= x != y
        mismatches[column] = int((x != y).sum())
    for column in ("first_purchase_at", "last_purchase_at"):
        t = a[column].astype("datetime64[ms, UTC]")
        u = b[column].astype("datetime64[ms, UTC]")
        bad = ~((t == u).fillna(False) | (t.isna() & u.isna()))
        differs |= bad
        mismatches[column] = int(bad.sum())
    examples = [str(c) for c in differs[differs].index[:5]]
    return {
        "customers_expected": len(expected_ids),
        "customers_live": len(live_ids),
        "missing": len(expected_ids - live_ids),
        "extra": len(live_ids - expected_ids),
        "mismatches": mismatches,
        "examples": examples,
        "equal": not (expected_ids ^ live_ids) and not any(mismatches.values()),
    }


@dataclass
class Slot:
    """One supervised worker: its current process and what happened to it."""

    name: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started: int = 0
    killed: int = 0  # SIGKILLs we sent
    exits: list[int] = field(default_factory=list)  # exit codes we did not cause
    rss_max_kb: int = 0
    rss_last_kb: int | None = None
    rss_samples: int = 0


class Supervisor:
    """Keeps N workers running: restarts any that exits (counted), kills on request, samples RSS."""

    def __init__(
        self, settings: Settings, root: Path, names: list[str], restart_pause_s: float = 1.0
    ) -> None:
        self.settings = settings
        self.slots = [Slot(n, root / f"{n}.log") for n in names]
        self.restart_pause_s = restart_pause_s
        self._down_until: dict[str, float] = {}

    def start_all(self) -> None:
        for slot in self.slots:
            self._start(slot)

    def _start(self, slot: Slot) -> None:
        own = self.settings.model_copy(update={"data_dir": slot.log.with_suffix("")})  # a scratch dir each
        slot.process = spawn_worker(own, slot.log)
        slot.started += 1

    def kill(self, index: int, pause_s: float) -> None:
        """SIGKILL worker ``index``; it is restarted by :meth:`tick` after ``pause_s`` seconds."""
        slot = self.slots[index]
        if slot.process is not None and slot.process.poll() is None:
            slot.process.send_signal(signal.SIGKILL)
            slot.process.wait(10)
            slot.killed += 1
        slot.process = None
        self._down_until[slot.name] = time.monotonic() + pause_s

    def tick(self) -> None:
        """Restart what is due, record exits we did not cause, sample RSS."""
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is not None:
                slot.exits.append(int(slot.process.returncode))
                print(f"  [{slot.name} exited with code {slot.process.returncode}; restarting]", flush=True)
                slot.process = None
                self._down_until[slot.name] = now + self.restart_pause_s
            if slot.process is None and now >= self._down_until.get(slot.name, 0.0):
                self._start(slot)
            if slot.process is not None:
                rss = rss_kb(slot.process.pid)
                if rss:  # None or 0: gone or exiting between poll() and the read
                    slot.rss_max_kb = max(slot.rss_max_kb, rss)
                    slot.rss_last_kb = rss
                    slot.rss_samples += 1

    def stop_all(self) -> None:
        for slot in self.slots:
            if slot.process is not None:
                stop_worker(slot.process, timeout_s=20)

    def report(self) -> list[dict[str, Any]]:
        return [
            {
                "name": s.name,
                "log": str(s.log),
                "starts": s.started,
                "restarts": s.started - 1,
                "sigkilled_by_harness": s.killed,
                "other_exits": len(s.exits),
                "other_exit_codes": s.exits,
                "rss_max_mb": round(s.rss_max_kb / 1024, 1),
                "rss_final_mb": round(s.rss_last_kb / 1024, 1) if s.rss_last_kb is not None else None,
                "rss_samples": s.rss_samples,
            }
            for s in self.slots
        ]


class TrackedProducer:
    """kafka-python producer that remembers which messages Kafka did not acknowledge."""

    def __init__(self, settings: Settings, *, max_request_size: int = 1_048_576 - 4096) -> None:
        self._producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            linger_ms=20,
            batch_size=512 * 1024,
            max_request_size=max_request_size,
            delivery_timeout_ms=300_000,
            request_timeout_ms=30_000,
            max_in_flight_requests_per_connection=5,
            client_id="segstream-harness",
        )
        self.failed: list[int] = []
        self.metadata: dict[int, tuple[int, int]] = {}  # index -> (partition, offset), if record_offsets

    def send(
        self, topic: str, key: bytes | None, value: bytes, index: int, *, record_offsets: bool = False
    ) -> None:
        future = self._producer.send(topic, key=key, value=value)
        future.add_errback(lambda _exc, i=index: self.failed.append(i))
        if record_offsets:
            future.add_callback(lambda md, i=index: self.metadata.__setitem__(i, (md.partition, md.offset)))

    def flush(self) -> None:
        self._producer.flush()

    def take_failed(self) -> list[int]:
        failed, self.failed = self.failed, []
        return failed

    def close(self) -> None:
        self._producer.close()


def run_and_record(
    name: str,
    args: Any,
    run: Callable[[Any], dict[str, Any]],
    summary: Callable[[dict[str, Any]], None],
) -> int:
    """Run one harness, write its result file (also when the harness itself fails), print the
    summary and every check; exit status 0 only if every check passed."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what we started on a plain kill too
    try:
        result = run(args)
    except Exception as exc:  # the harness itself failed: still leave a result file saying so
        result = {"error": repr(exc), "checks": {"run_completed": False}}
        print(f"{name} run failed: {exc!r}", file=sys.stderr)
    result = {
        "command": f"python bench/{name}.py " + " ".join(sys.argv[1:]),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        **result,
    }
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if "error" not in result:
        summary(result)
    for check, ok in result["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {check}")
    print(f"results written to {args.output}")
    return 0 if all(result["checks"].values()) else 1


def run_header(script: str, started: datetime, load_at_start: float) -> dict[str, Any]:
    """What every benchmark's result file starts with: the command, when, and the machine."""
    return {
        "command": f"python bench/{script} " + " ".join(sys.argv[1:]),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_at_start": load_at_start,
        },
    }

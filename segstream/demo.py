"""``segstream demo``: the whole pipeline on this machine, with real data.

Starts a private Kafka + Redis, one worker process, replays a data set through
Kafka and shows progress as the worker folds it into Redis, then a summary.
Ctrl-C (or any failure) stops everything it started. What it prints at the end is in
:mod:`segstream.demo_report`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

import pandas as pd
from tqdm import tqdm

from agents.settings import Settings
from segstream.catalogue_replay import count_products, count_traits, publish_completejourney_catalogue
from segstream.demo_report import (
    changes_published,
    metric_counts,
    print_live_segments,
    print_predictions,
    print_summary,
    saved_records,
)
from segstream.export import customers_frame, segment_summary
from segstream.kafka_io import ensure_topics
from segstream.replay import ReplayReport, replay_history
from segstream.sources import load_source
from segstream.stack import start_stack, stop_stack
from segstream.stack_config import KAFKA_VERSION
from segstream.stack_info import default_cache_dir
from segstream.stack_processes import free_ports
from state.adapters.redis_profiles import RedisProfileStore
from state.adapters.redis_store import RedisStore
from state.customer.rfm import DAY_MS
from state.evaluator.read_model import Summary, load_summary
from state.segments.segments import load_preset
from streams.topics import CUSTOMER_TRAITS, PRODUCTS

__all__ = ["run_demo", "spawn_worker", "stop_worker"]

STALL_TIMEOUT_S = 120.0
REPLAY_STOP_TIMEOUT_S = 10.0
T = TypeVar("T")


def spawn_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``segstream worker`` as a child process configured by ``settings``."""
    env = dict(os.environ)
    env.update(settings.to_env())
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "segstream", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )


def stop_worker(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> int:
    """SIGTERM, wait, then SIGKILL; return the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def run_demo(settings: Settings, source: str, *, speed: float | None, limit: int | None, root: Path) -> int:
    history = load_source(source)
    if limit is not None:
        history = history.head(limit)
    print(f"starting Kafka {KAFKA_VERSION} (KRaft) and Redis in {root} ...", flush=True)
    stack = start_stack(root, default_cache_dir())
    worker: subprocess.Popen[bytes] | None = None
    try:
        settings = settings.model_copy(
            update={
                "kafka_url": stack.kafka_url,
                "redis_url": stack.redis_url,
                "web_port": free_ports(1)[0],
                "data_dir": root / "worker",
                # the demo's own stack is open on loopback; SEGSTREAM_API_TOKEN still applies
                "kafka_security_protocol": "PLAINTEXT",
                "redis_username": None,
                "redis_password": None,
                "redis_tls": False,
            }
        )
        ensure_topics(settings)
        worker = spawn_worker(settings, root / "worker.log")
        print(
            f"Kafka {stack.kafka_bootstrap}  Redis {stack.redis_url}  worker pid {worker.pid} "
            f"(log {root / 'worker.log'}, metrics http://127.0.0.1:{settings.web_port}/metrics)",
            flush=True,
        )
        if source == "completejourney":  # the catalogue and traits first: items are labelled from the start
            for line in publish_completejourney_catalogue(settings):
                print(line, flush=True)
            _wait_for_catalogue(settings, worker)
        print(f"replaying {len(history):,} events of {source} ...", flush=True)
        return asyncio.run(_replay_and_watch(history, settings, speed, worker))
    finally:
        if worker is not None:
            stop_worker(worker)
        stop_stack(stack)
        print("stopped the worker, Kafka and Redis", flush=True)


def _wait_for_catalogue(settings: Settings, worker: subprocess.Popen[bytes]) -> None:
    """Until the worker has stored every message published to ``products`` and ``customer-traits``
    (purchases folded before their products would stay unlabelled)."""
    published = {PRODUCTS: count_products(), CUSTOMER_TRAITS: count_traits()}
    deadline = time.monotonic() + STALL_TIMEOUT_S
    while True:
        try:
            done = metric_counts(settings, "segstream_catalogue_updates_total", "topic")
        except OSError:  # the worker's web server is not up yet
            done = {}
        if all(done.get(topic, 0) >= n for topic, n in published.items()):
            return
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}; see its log")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the catalogue was not stored within {STALL_TIMEOUT_S:.0f}s; see the worker log"
            )
        time.sleep(0.5)


async def _replay_and_watch(
    history: pd.DataFrame, settings: Settings, speed: float | None, worker: subprocess.Popen[bytes]
) -> int:
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    stop = threading.Event()
    started = time.perf_counter()
    replay = _in_daemon_thread(
        lambda: replay_history(history, settings, speed=speed, progress=True, stop=stop)
    )
    bar = tqdm(total=len(history), unit="ev", desc="in Redis ", position=1, leave=True)
    try:
        done, last_change, seen = 0, time.monotonic(), -1
        while done < len(history):
            await asyncio.sleep(0.5)
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with code {worker.returncode}; see its log")
            stats = await store.stats()
            done = stats.applied + stats.duplicates + stats.invalid
            bar.update(done - bar.n)
            bar.set_postfix(customers=f"{stats.customers:,}", dead_lettered=stats.invalid, refresh=False)
            if done != seen:
                seen, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > STALL_TIMEOUT_S:
                raise RuntimeError(f"no progress for {STALL_TIMEOUT_S:.0f}s; see the worker log")
        report: ReplayReport = await replay
        elapsed = time.perf_counter() - started
        bar.close()
        preset = load_preset(settings.segment_preset)
        states, watermark = await store.all_customers(), await store.watermark()
        frame = customers_frame(states, watermark, preset)
        print_summary(frame, await store.stats(), report, elapsed)
        print(f"\nnamed RFM segments ({preset.name})")
        print(segment_summary(frame, preset).to_string())
        if watermark is not None:
            summary = await _watch_segments(settings, history, watermark + 1, worker)
            print_live_segments(summary, settings, frame)
            saved = await saved_records(settings)
            span_ms = watermark + 1 - int(history["occurred_at"].min().timestamp() * 1000)
            print_predictions(summary, saved, settings, months=span_ms / DAY_MS / (365.25 / 12))
        return 0
    finally:
        stop.set()
        bar.close()
        # the replay stops within 500 messages, but a producer still waiting for the broker's metadata
        # (Kafka's max_block_ms: a minute) cannot be stopped: Ctrl-C does not wait for it
        await asyncio.wait([replay], timeout=REPLAY_STOP_TIMEOUT_S)
        await store.close()


def _in_daemon_thread(work: Callable[[], T]) -> asyncio.Future[T]:
    """``work()`` in a daemon thread (not the loop's executor, which ``asyncio.run`` waits for at exit),
    as a future of the running loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(cast(T, result))

    def run() -> None:
        try:
            outcome: tuple[T | None, BaseException | None] = (work(), None)
        except BaseException as error:  # handed to the awaiting task
            outcome = (None, error)
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for it any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="replay", daemon=True).start()
    return future


async def _watch_segments(
    settings: Settings, history: pd.DataFrame, until_ms: int, worker: subprocess.Popen[bytes]
) -> Summary:
    """Follow the segment evaluator's event-time clock to the replay's last tick (a progress bar in days)."""
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    first_ms = int(history["occurred_at"].min().timestamp() * 1000)
    day = DAY_MS
    bar = tqdm(total=(until_ms - first_ms) // day + 1, unit="day", desc="segments evaluated", leave=True)
    try:
        last_change, seen = time.monotonic(), None
        while True:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with code {worker.returncode}; see its log")
            summary = await load_summary(profiles)
            clock = summary.as_of_ms if summary else None
            if clock is not None:
                bar.update(max((clock - first_ms) // day + 1 - bar.n, 0))
                bar.set_postfix(changes=f"{changes_published(settings):,}", refresh=False)
            if summary is not None and clock == until_ms:
                return summary
            if clock != seen:
                seen, last_change = clock, time.monotonic()
            elif time.monotonic() - last_change > STALL_TIMEOUT_S:
                raise RuntimeError(
                    f"segment evaluation made no progress for {STALL_TIMEOUT_S:.0f}s; see the worker log"
                )
            await asyncio.sleep(0.5)
    finally:
        bar.close()
        await profiles.close()

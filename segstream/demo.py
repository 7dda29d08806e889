"""``segstream demo``: the whole pipeline on this machine, with real data.

Starts a private Kafka + Redis, one worker process, replays a data set through
Kafka and shows progress as the worker folds it into Redis, then a summary.
Ctrl-C (or any failure) stops everything it started.
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
from typing import Any, TypeVar, cast

import pandas as pd
from tqdm import tqdm

from agents.settings import Settings
from segstream.catalogue_replay import count_products, count_traits, publish_completejourney_catalogue
from segstream.export import customers_frame, segment_summary, with_predictions
from segstream.kafka_io import ensure_topics
from segstream.model_lines import alert_gate_lines, churn_calibration_lines
from segstream.replay import ReplayReport, replay_history
from segstream.sources import load_source
from segstream.stack import start_stack, stop_stack
from segstream.stack_config import KAFKA_VERSION
from segstream.stack_info import default_cache_dir
from segstream.stack_processes import free_ports
from segstream.worker_http import get_page
from state.adapters.redis_profiles import RedisProfileStore
from state.adapters.redis_store import RedisStore
from state.customer.rfm import DAY_MS
from state.customer.store import Stats
from state.evaluator.predict import LifetimeModel
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
            done = _metric_counts(settings, "segstream_catalogue_updates_total", "topic")
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
        _print_summary(frame, await store.stats(), report, elapsed)
        print(f"\nnamed RFM segments ({preset.name})")
        print(segment_summary(frame, preset).to_string())
        if watermark is not None:
            summary = await _watch_segments(settings, history, watermark + 1, worker)
            _print_live_segments(summary, settings, frame)
            saved = await _saved_records(settings)
            span_ms = watermark + 1 - int(history["occurred_at"].min().timestamp() * 1000)
            _print_predictions(summary, saved, settings, months=span_ms / DAY_MS / (365.25 / 12))
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
) -> dict[str, Any]:
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
            summary = await profiles.summary()
            clock = int(summary["as_of_ms"]) if summary else None
            if clock is not None:
                bar.update(max((clock - first_ms) // day + 1 - bar.n, 0))
                bar.set_postfix(changes=f"{_changes_published(settings):,}", refresh=False)
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


def _metric_counts(settings: Settings, metric: str, label: str) -> dict[str, int]:
    """A labelled counter of the worker's /metrics page, by label value (summed over its other labels)."""
    text = get_page(settings, "/metrics").decode()
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            value = line.split(f'{label}="', 1)[1].split('"', 1)[0]
            counts[value] = counts.get(value, 0) + int(float(line.rsplit(" ", 1)[1]))
    return counts


def _changes_by_reason(settings: Settings) -> dict[str, int]:
    """Segment changes the worker published, by reason."""
    return _metric_counts(settings, "segstream_segment_changes_total", "reason")


async def _saved_records(settings: Settings) -> list[dict[str, Any]]:
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        saved = await profiles.load()
    finally:
        await profiles.close()
    return [dict(r) for r in saved.records] if saved else []


def _changes_published(settings: Settings) -> int:
    try:
        return sum(_changes_by_reason(settings).values())
    except OSError:
        return 0


def _print_live_segments(summary: dict[str, Any], settings: Settings, frame: pd.DataFrame) -> None:
    counts = _changes_by_reason(settings)
    print(
        f"\nsegment changes published to segment-changes: {sum(counts.values()):,} "
        f"({', '.join(f'{reason} {n:,}' for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))}); "
        f"cut-point version {summary['cutpoint_version']}, cluster model version {summary['model_version']}"
    )
    moves = _metric_counts(settings, "segstream_segment_moves_total", "type")
    print(
        f"segment moves published to segment-moves (audience entries and exits): {sum(moves.values()):,} "
        f"(entered {moves.get('entered', 0):,}, exited {moves.get('exited', 0):,})"
    )
    if summary["clusters"]:  # none before the cluster model's first version (a short --limit)
        clusters = pd.DataFrame(summary["clusters"]).set_index("cluster")
        print("online clusters (River k-means, stable ids, streaming elbow)")
        columns = [
            "name",
            "customers",
            "share",
            "mean_recency_days",
            "mean_frequency",
            "mean_monetary",
            "value_share",
        ]
        print(clusters[columns].to_string())
    top = str(frame.nlargest(1, "monetary")["customer_id"].iloc[0])
    path = f"/customers/{top}"
    print(f"\nGET http://127.0.0.1:{settings.web_port}{path}\n{get_page(settings, path).decode()}")


def _print_predictions(
    summary: dict[str, Any], records: list[dict[str, Any]], settings: Settings, *, months: float
) -> None:
    """The lifetime and churn models the evaluator keeps, and their predictions by segment."""
    lifetime = summary.get("lifetime")
    if lifetime is None:
        print("\nlifetime model: not fitted yet (needs 100 buyers, 10 repeat buyers, four weeks of history)")
        return
    model = LifetimeModel.from_json(lifetime)
    churn = summary["churn"]
    auc = f"{churn['auc']:.3f}" if churn["auc"] is not None else "n/a"
    print(f"\nlifetime model (refitted every 28 days of event time): {model.describe()} (weeks)")
    print(
        f"churn model (River, horizon {churn['horizon_days']:g} days): version {churn['version']}, "
        f"prequential ROC AUC {auc} over {churn['examples']:,} labelled predictions"
    )
    customers = pd.DataFrame(
        {
            "customer_id": [r["customer_id"] for r in records],
            "rfm_segment": pd.Series(
                [r["profile"][3] if r.get("profile") else None for r in records], dtype=str
            ),
        }
    )
    frame = with_predictions(customers, records, summary)
    by_segment = frame.groupby("rfm_segment")[
        ["p_alive", "churn_probability", "expected_purchases_90d", "clv"]
    ]
    print("mean predictions by segment (p_alive, churn probability, expected purchases in 90 days, CLV)")
    print(by_segment.mean().astype(float).sort_values("p_alive", ascending=False).round(3).to_string())
    bands = frame["churn_band"].value_counts().reindex(["Low", "Medium", "High"], fill_value=0)
    print(f"churn bands: {', '.join(f'{band} {n:,}' for band, n in bands.items())}")
    for line in churn_calibration_lines(churn):
        print(line)
    for line in alert_gate_lines(summary["alert_gates"]):
        print(line)
    alerts = _metric_counts(settings, "segstream_alerts_total", "kind")
    for line in alert_rate_lines(alerts, int(summary["customers"]), months):
        print(line)


def alert_rate_lines(alerts: dict[str, int], customers: int, months: float) -> list[str]:
    """Alerts published, by kind, with what a marketer would face: per month, and per customer per month.

    >>> for line in alert_rate_lines({"overdue": 60, "segment_drift": 3}, 100, 6.0)[1:]:
    ...     print(line)
      overdue             60  (10.0 a month, 0.100 per customer per month)
      segment_drift        3  (0.5 a month; about segments and clusters, not customers)
    """
    total = sum(n for k, n in alerts.items() if k != "segment_drift")
    lines = [
        f"alerts published to alerts over {months:.1f} months of history for {customers:,} customers "
        f"(customer alerts: {total:,}, {total / max(customers, 1) / months:.3f} per customer per month):"
    ]
    if not alerts:
        lines.append("  none")
    for kind, n in sorted(alerts.items()):
        if kind == "segment_drift":
            lines.append(
                f"  {kind:<16} {n:>5,}  ({n / months:.1f} a month; about segments and clusters, not customers)"
            )
        else:
            lines.append(
                f"  {kind:<16} {n:>5,}  ({n / months:.1f} a month, {n / max(customers, 1) / months:.3f} per customer per month)"
            )
    return lines


def _print_summary(frame: pd.DataFrame, stats: Stats, report: ReplayReport, elapsed: float) -> None:
    applied = stats.applied
    print()
    print(
        f"published {report.sent:,} events in {report.seconds:.1f}s; "
        f"{applied:,} applied, {stats.duplicates:,} duplicates, "
        f"{stats.invalid:,} dead-lettered"
    )
    print(f"end to end (publish -> Redis): {applied / elapsed:,.0f} events/s over {elapsed:.1f}s")
    as_of = frame["last_purchase_at"].max()
    print(f"customers: {len(frame):,}   as of (event-time watermark): {as_of:%Y-%m-%d}")
    print()
    summary = frame[["recency_days", "frequency", "monetary"]].astype(float).describe(percentiles=[0.5, 0.9])
    print("RFM summary")
    print(summary.loc[["mean", "min", "50%", "90%", "max"]].round(2).to_string())
    print()
    top = frame.nlargest(5, "monetary")[["customer_id", "frequency", "monetary", "recency_days"]]
    print("top customers by net spend")
    print(top.to_string(index=False))

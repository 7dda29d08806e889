"""``make bench-faust``: Faust's own settings against the worker's ingest, in interleaved rounds.

The stream buffer is segstream's setting (``SEGSTREAM_STREAM_BUFFER``, Faust's
``stream_buffer_maxsize``); the others Faust reads from the environment itself
(``BROKER_MAX_POLL_RECORDS``, ``CONSUMER_MAX_FETCH_SIZE``, ``BROKER_COMMIT_INTERVAL``; ``NO_CYTHON``
turns its compiled stream iterator off). For each variant below, and for ``ROUNDS`` rounds with the
variants' order rotated each round, this replays CDNOW master into a fresh namespace of a private
Kafka + Redis and times, on that one topic, first a Faust agent doing nothing
(``bench/noop_worker.py``, the same batching) and then one ``segstream worker`` (Kafka -> the
ingest process -> Redis, no clock ticks), both with the variant's environment. Rates are first
event to last, as in ``bench/run.py``.

Why rounds: on this 2-core machine the same measurement moves by a third between runs minutes
apart (``make bench``'s notes), so a variant is judged by the median of its rounds, and the
worker against the agent doing nothing pair by pair (the same round, the same topic, one after
the other).

Writes ``bench/faust_tuning.json`` and prints a Markdown table for the README.
``python bench/faust_tuning.py ROUNDS`` (default 3).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.settings import Settings
from bench.cpu_use import ProcessTimes, cores_by_role, read_times
from bench.harness import run_header
from bench.run import baseline_result
from segstream.demo import spawn_worker, stop_worker
from segstream.kafka_io import ensure_topics
from segstream.replay import replay_history
from segstream.sources import load_cdnow
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from segstream.stack_processes import free_ports
from state.adapters.redis_store import RedisStore

RESULTS = Path(__file__).with_name("faust_tuning.json")
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3

VARIANTS: dict[str, dict[str, str]] = {
    "stream buffer 4,096 (Faust's default and segstream's)": {"SEGSTREAM_STREAM_BUFFER": "4096"},
    "stream buffer 16,384": {"SEGSTREAM_STREAM_BUFFER": "16384"},
    "stream buffer 131,072": {"SEGSTREAM_STREAM_BUFFER": "131072"},
    "buffer 16,384, fetch 8 MiB, commit every 10 s": {
        "SEGSTREAM_STREAM_BUFFER": "16384",
        "CONSUMER_MAX_FETCH_SIZE": str(8 * 1024 * 1024),
        "BROKER_COMMIT_INTERVAL": "10.0",
    },
    "buffer 16,384, at most 500 records a poll": {
        "SEGSTREAM_STREAM_BUFFER": "16384",
        "BROKER_MAX_POLL_RECORDS": "500",
    },
    "buffer 16,384, Cython off (NO_CYTHON=1)": {"SEGSTREAM_STREAM_BUFFER": "16384", "NO_CYTHON": "1"},
}
"""Each variant's environment, given to both the worker and the agent doing nothing."""
if len(sys.argv) > 2:  # python bench/faust_tuning.py ROUNDS NAME-PREFIX...: only those variants
    VARIANTS = {k: v for k, v in VARIANTS.items() if any(k.startswith(p) for p in sys.argv[2:])}


async def time_worker(settings: Settings, total: int) -> tuple[float, dict[str, float]]:
    """Seconds from the worker's first applied event to its last (scaled to ``total``, as
    ``bench.run.wait_worker``), and the CPU microseconds each role spent per event meanwhile."""
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    first: tuple[float, int, ProcessTimes] | None = None
    try:
        while True:
            stats = await store.stats()
            now = time.perf_counter()
            if first is None and stats.applied > 0:
                first = (now, stats.applied, read_times({}))
            if stats.applied >= total:
                assert first is not None
                return (now - first[0]) / (total - first[1]) * total, _per_event(
                    first[2], read_times({}), total - first[1]
                )
            await asyncio.sleep(0.05)
    finally:
        await store.close()


def _per_event(before: ProcessTimes, after: ProcessTimes, events: int) -> dict[str, float]:
    """CPU microseconds per event of each role between the two readings (those under 0.5 left out)."""
    spent = cores_by_role(before, after, 1.0)  # over one second: each role's CPU seconds
    return {role: seconds * 1e6 / events for role, seconds in spent.items() if seconds * 1e6 / events >= 0.5}


def one_round(settings: Settings, history: object, env: dict[str, str], root: Path) -> dict[str, object]:
    """Events/s of the agent doing nothing and of the worker on one fresh topic, with ``env``."""
    ensure_topics(settings)
    replay_history(history, settings, progress=False, tick_every=None)  # type: ignore[arg-type]
    saved = dict(os.environ)
    os.environ.update(env)  # both children inherit it (bench_baseline and spawn_worker copy os.environ)
    try:
        total = len(history)  # type: ignore[arg-type]
        noop = baseline_result("noop_worker.py", settings, total, root)
        worker = spawn_worker(settings, root / "worker.log")
        try:
            worker_s, cpu = asyncio.run(time_worker(settings, total))
            peak_kb = peak_rss_kb(worker.pid)
        finally:
            stop_worker(worker)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {
        "faust_noop_events_per_s": total / noop["seconds"],
        "faust_noop_cpu_us_per_event": noop["cpu_seconds"] * 1e6 / total,
        "worker_events_per_s": total / worker_s,
        "worker_cpu_us_per_event_by_role": cpu,
        "worker_faust_process_peak_rss_mb": peak_kb / 1024,
    }


def peak_rss_kb(pid: int) -> int:
    """The most memory process ``pid`` has held so far (VmHWM), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def main() -> None:
    started, load_at_start = datetime.now(UTC), os.getloadavg()[0]
    history = load_cdnow()
    root = Path(tempfile.mkdtemp(prefix="segstream-faust-tuning-"))
    stack = start_stack(root, default_cache_dir())
    names = list(VARIANTS)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    try:
        for r in range(ROUNDS):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                index = names.index(name)
                settings = Settings(
                    kafka_url=stack.kafka_url,
                    redis_url=stack.redis_url,
                    namespace=f"tune{r}v{index}",
                    clock="ticks",  # no ticks are sent: ingest alone, the evaluator idle
                    web_enabled=False,
                    web_port=free_ports(1)[0],
                    data_dir=root / f"r{r}v{index}",
                )
                began = time.perf_counter()
                rates = one_round(settings, history, VARIANTS[name], root / f"r{r}v{index}")
                rounds[name].append(rates)
                print(
                    f"round {r + 1}/{ROUNDS} {name}: worker {rates['worker_events_per_s']:,.0f} / "
                    f"nothing {rates['faust_noop_events_per_s']:,.0f} events/s "
                    f"({time.perf_counter() - began:.0f} s)",
                    flush=True,
                )
    finally:
        stop_stack(stack)

    baseline = rounds[names[0]]
    results: dict[str, object] = {
        **run_header("faust_tuning.py", started, load_at_start),
        "events": len(history),
        "rounds": ROUNDS,
        "variants": {
            name: {
                "environment": VARIANTS[name],
                "rounds": rounds[name],
                "median_worker_events_per_s": statistics.median(
                    x["worker_events_per_s"] for x in rounds[name]
                ),
                "median_faust_noop_events_per_s": statistics.median(
                    x["faust_noop_events_per_s"] for x in rounds[name]
                ),
                "median_worker_faust_process_peak_rss_mb": statistics.median(
                    x["worker_faust_process_peak_rss_mb"] for x in rounds[name]
                ),
                "median_faust_noop_cpu_us_per_event": statistics.median(
                    x["faust_noop_cpu_us_per_event"] for x in rounds[name]
                ),
                "median_worker_cpu_us_per_event": {
                    role: statistics.median(
                        x["worker_cpu_us_per_event_by_role"].get(role, 0.0) for x in rounds[name]
                    )
                    for role in {r for x in rounds[name] for r in x["worker_cpu_us_per_event_by_role"]}
                },
                "median_worker_cpu_us_per_event_all": statistics.median(
                    sum(x["worker_cpu_us_per_event_by_role"].values()) for x in rounds[name]
                ),
                "worker_vs_faust_noop_by_round": [
                    x["worker_events_per_s"] / x["faust_noop_events_per_s"] for x in rounds[name]
                ],
                "worker_vs_defaults_worker_by_round": [
                    x["worker_events_per_s"] / b["worker_events_per_s"]
                    for x, b in zip(rounds[name], baseline, strict=True)
                ],
            }
            for name in names
        },
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(
        "| Faust settings (both the worker and the agent doing nothing) | worker events/s, median "
        "(rounds) | agent doing nothing, median | worker / doing nothing, each round (median) | "
        "worker / worker with Faust's default buffer, each round (median) |"
    )
    print("|---|---:|---:|---:|---:|")
    for name in names:
        v = results["variants"][name]  # type: ignore[index]
        ratios, gains = v["worker_vs_faust_noop_by_round"], v["worker_vs_defaults_worker_by_round"]
        print(
            f"| {name} | {v['median_worker_events_per_s']:,.0f} "
            f"({' / '.join(format(x['worker_events_per_s'], ',.0f') for x in v['rounds'])}) "
            f"| {v['median_faust_noop_events_per_s']:,.0f} "
            f"| {' / '.join(f'{x:.0%}' for x in ratios)} (**{statistics.median(ratios):.0%}**) "
            f"| {' / '.join(f'{x:.2f}' for x in gains)} ({statistics.median(gains):.2f}) |"
        )
    roles = ["workers (Faust)", "ingest processes", "Redis", "Kafka broker"]
    print()
    print(
        "| Faust settings | CPU µs per event, medians of the rounds: agent doing nothing (its process) "
        "| worker: " + " / ".join(roles) + " / all processes | worker's Faust process, peak RSS |"
    )
    print("|---|---:|---:|---:|")
    for name in names:
        v = results["variants"][name]  # type: ignore[index]
        print(
            f"| {name} | {v['median_faust_noop_cpu_us_per_event']:.0f} | "
            + " / ".join(f"{v['median_worker_cpu_us_per_event'].get(r, 0.0):.0f}" for r in roles)
            + f" / {v['median_worker_cpu_us_per_event_all']:.0f} | {v['median_worker_faust_process_peak_rss_mb']:.0f} MB |"
        )
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()

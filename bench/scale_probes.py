"""What ``bench/scale.py`` reads off a running stack: Redis memory by key kind, the applied-event
total, a worker's ``/metrics`` samples and its peak RSS (and its evaluation process's). Read-only; no segstream internals."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import redis

from agents.settings import Settings

TICK_METRIC = "segstream_tick_seconds"


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of ``pid`` in MB, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def children_peak_rss_mb(pid: int) -> float | None:
    """The largest VmHWM among ``pid``'s child processes in MB (a worker's evaluation process; None: no
    child). Read while they live: the evaluation process holds the population, the worker does not."""
    peaks = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == pid and (peak := peak_rss_mb(int(entry.name))) is not None:
                peaks.append(peak)
    return max(peaks, default=None)


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def key_kind(key: str, prefix: str) -> str:
    """``seg:{c1}:ev`` -> ``seg:{id}:ev``, ``seg:{c1}:ids:9`` -> ``seg:{id}:ids:<g>``,
    ``eval:{segments}:batch:1761177600000`` -> ``eval:{segments}:batch:<ms>``, ``eval:{p3}:agenda`` ->
    ``eval:{p<n>}:agenda``, ``eval:{p3}:batch:1761177600000`` -> ``eval:{p<n>}:batch:<ms>``: a
    customer's keys, the open churn batches and the evaluation partitions' keys by kind, other
    shared keys by name."""
    rest = key[len(prefix) :]
    if rest.startswith("seg:{"):
        kind = rest[rest.index("}") + 1 :]
        return "seg:{id}" + (":ids:<g>" if kind.startswith(":ids:") else kind)
    if rest.startswith("eval:{p") and rest[7 : rest.index("}")].isdigit():
        rest = "eval:{p<n>}" + rest[rest.index("}") + 1 :]
    head, _, tail = rest.rpartition(":batch:")
    if head and tail.isdigit():
        return f"{head}:batch:<ms>"
    return rest


def memory_by_kind(client: redis.Redis, prefix: str) -> dict[str, dict[str, int]]:
    """Every key under ``prefix`` by kind: how many keys and their ``MEMORY USAGE`` in bytes."""
    kinds: dict[str, dict[str, int]] = {}
    batch: list[str] = []

    def flush() -> None:
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
        for key, size in zip(batch, pipe.execute(), strict=True):
            row = kinds.setdefault(key_kind(key, prefix), {"keys": 0, "bytes": 0})
            row["keys"] += 1
            row["bytes"] += int(size or 0)
        batch.clear()

    for raw in client.scan_iter(match=f"{prefix}*", count=10_000):
        batch.append(raw.decode())
        if len(batch) >= 5_000:
            flush()
    flush()
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]["bytes"]))


def applied(client: redis.Redis, settings: Settings) -> int:
    return int(client.hget(f"{settings.redis_prefix}seg:stats", "applied") or 0)


def scrape(port: int, names: tuple[str, ...]) -> dict[str, float]:
    """Unlabelled samples ``names`` from a worker's ``/metrics`` (0 where absent)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    found = dict.fromkeys(names, 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in found:
            found[name] = float(value)
    return found


def tick_metric(port: int) -> tuple[float, float]:
    """The worker's ``segstream_tick_seconds`` (sum, count)."""
    found = scrape(port, (f"{TICK_METRIC}_sum", f"{TICK_METRIC}_count"))
    return found[f"{TICK_METRIC}_sum"], found[f"{TICK_METRIC}_count"]


def changes_published(port: int) -> int:
    """Profile changes a worker has published (``segstream_segment_changes_total``, every reason)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return int(
        sum(
            float(x.rsplit(" ", 1)[1])
            for x in text.splitlines()
            if x.startswith("segstream_segment_changes_total{")
        )
    )


def folded(port: int) -> int:
    """Events a worker has taken off ``purchases`` in batches (``segstream_batch_size_sum``)."""
    return int(scrape(port, ("segstream_batch_size_sum",))["segstream_batch_size_sum"])


def wait_page(port: int, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            tick_metric(port)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)

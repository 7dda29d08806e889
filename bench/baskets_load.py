"""Load of ``bench/eval_baskets.py`` (``make eval``, baskets): what is sent to the worker, and the wait.

The resends (same ``event_id``) after the replay, the hostile batch (purchases of 1,000 distinct
lines each, the most ``InputLimits`` allows) and ``wait_folded``, which waits for the worker to
consume a count of messages while it samples the worker's RSS and the pair hashes' size. Kept
apart from the oracles and the probes: this is what drives the worker.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from baskets_probes import pair_bytes, slowest_scripts, stats_of
from harness import applied_event_ids, rss_kb

from agents.settings import Settings
from segstream.kafka_io import Publisher
from segstream.sources import wire_events
from state.analytics.basket_tally import LEVELS
from state.customer.store import Stats
from streams.topics import PURCHASES


def wait_folded(
    settings: Settings, worker: subprocess.Popen[bytes], total: int
) -> tuple[Stats, dict[str, Any]]:
    """Wait until the worker has consumed ``total`` messages; sample its RSS and the pair hashes' size."""
    rss_max, pair_peak = 0, dict.fromkeys(LEVELS, 0)
    while True:
        stats = asyncio.run(stats_of(settings))
        rss_max = max(rss_max, rss_kb(worker.pid) or 0)
        for level, size in asyncio.run(pair_bytes(settings)).items():
            pair_peak[level] = max(pair_peak[level], size)
        if stats.applied + stats.duplicates + stats.invalid + stats.redelivered >= total:
            break
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}")
        time.sleep(1.0)
    return stats, {
        "worker_rss_max_mb": round(rss_max / 1024, 1),
        "pair_hash_peak_mib_sampled_each_s": {k: round(v / 2**20, 1) for k, v in pair_peak.items()},
    }


def hostile_batch(
    settings: Settings, worker: subprocess.Popen[bytes], log: Path, count: int
) -> dict[str, Any]:
    """``count`` purchases of 1,000 distinct skus and categories each (the most InputLimits allows)."""
    asyncio.run(slowest_scripts(settings))  # reset the slow log
    before = asyncio.run(stats_of(settings))
    publisher = Publisher(settings)
    started = time.monotonic()
    try:
        for j in range(count):
            items = [
                {"sku": f"h{j}-{i}", "quantity": 1, "unit_price": 1.0, "category": f"hc{j}-{i}"}
                for i in range(1000)
            ]
            event = {
                "event_id": f"hostile-{j}",
                "customer_id": f"hostile-{j % 100}",
                "occurred_at": "2017-12-31T00:00:00Z",
                "amount": 1000.0,
                "items": items,
            }
            publisher.send(settings.topic(PURCHASES), event["customer_id"], json.dumps(event).encode())
        publisher.flush()
    finally:
        publisher.close()
    done = before.applied + before.duplicates + before.invalid + before.redelivered + count
    stats, watched = wait_folded(settings, worker, done)
    return {
        "purchases": count,
        "lines_each": 1000,
        "applied_as_counted": stats.applied - before.applied,
        "in_redis": applied_event_ids(settings, [f"hostile-{c}" for c in range(min(count, 100))]),
        "seconds": round(time.monotonic() - started, 1),
        **watched,
        "slowest_script_ms": asyncio.run(slowest_scripts(settings)),
        "batch_budget_hit": log.read_text().count("SEGSTREAM_BASKET_BATCH_TALLIES"),
    }


def publish_resends(settings: Settings, history: pd.DataFrame, share: float, seed: int) -> int:
    """Publish a seeded ``share`` of ``history``'s events a second time (producer resends: same
    ``event_id``); how many."""
    rng = np.random.default_rng(seed)
    wire = list(wire_events(history))
    resent = rng.choice(len(wire), size=int(len(wire) * share), replace=False)
    publisher = Publisher(settings)
    try:
        for i in resent:
            publisher.send(settings.topic(PURCHASES), *wire[i])
        publisher.flush()
    finally:
        publisher.close()
    return len(resent)

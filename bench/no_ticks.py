"""``make bench``, last part: a producer that never sends a tick, on the whole CDNOW history.

The live-by-default issue's check at full size: a plain kafka-python producer (no segstream code on
the sending side) publishes CDNOW master shuffled, with 10% resends (same event_id), to a worker
running with every default (``SEGSTREAM_CLOCK=watermark``). Measured from the producer's last
acknowledged send until the export (``segstream export customers``'s table, read in-process) has
every customer with a cluster, P(alive) and a churn probability; target: within a minute. Writes
``bench/no_ticks.json`` and prints one table row.

Polled every 2 s, cheaply first: the export is read only once the evaluator's saved summary (one
GET) has every customer in a cluster and a lifetime model. Reading the whole export every 2 s
(every state hash, the evaluator's rows and its model snapshot) took CPU from the run it measures
on a two-core machine: in one such run the bench process used 34.8 s of CPU, its publishing
included, and Redis 16.0 s, over 98 s (2026-12-01 01:55-01:57).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.settings import Settings
from segstream.demo import spawn_worker, stop_worker
from segstream.kafka_io import ensure_topics
from segstream.live_tables import live_frame
from segstream.sources import load_cdnow, shuffled_with_resends
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from segstream.stack_processes import free_ports
from state.adapters.redis_profiles import RedisProfileStore
from state.evaluator.read_model import Summary, load_summary
from tests.plain_producer import publish_plain

RESULTS = Path(__file__).with_name("no_ticks.json")
TIMEOUT_S = 900.0
POLL_S = 2.0


def publish(settings: Settings, history: Any, seed: int = 11) -> int:
    """CDNOW shuffled with 10% resends through a plain producer; the number of messages sent."""
    messages = shuffled_with_resends(history, seed)
    publish_plain(settings, messages)
    return len(messages)


def summary_says_done(settings: Settings, customers: int) -> bool:
    """The evaluator's last saved summary has every customer in a cluster and a lifetime model (one GET)."""

    async def read() -> Summary | None:
        profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
        try:
            return await load_summary(profiles)
        finally:
            await profiles.close()

    summary = asyncio.run(read())
    if summary is None or summary.lifetime is None:
        return False
    return sum(c.customers for c in summary.clusters) == customers


def complete(settings: Settings, customers: int) -> bool:
    frame = asyncio.run(live_frame(settings))
    columns = ("cluster", "p_alive", "churn_probability")
    return len(frame) == customers and all(bool(frame[c].notna().all()) for c in columns)


def main() -> None:
    history = load_cdnow()
    customers = int(history["customer_id"].nunique())
    root = Path(tempfile.mkdtemp(prefix="segstream-no-ticks-"))
    stack = start_stack(root, default_cache_dir())
    worker = None
    try:
        settings = Settings(  # the defaults but for where the services are
            kafka_url=stack.kafka_url,
            redis_url=stack.redis_url,
            namespace="noticks",
            web_port=free_ports(1)[0],
            data_dir=root / "worker",
        )
        assert settings.clock == "watermark"
        ensure_topics(settings)
        worker = spawn_worker(settings, root / "worker.log")
        started = time.monotonic()
        sent = publish(settings, history)
        last_sent = time.monotonic()
        done = None
        while time.monotonic() - last_sent < TIMEOUT_S:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}; see {root / 'worker.log'}")
            if summary_says_done(settings, customers) and complete(settings, customers):
                done = time.monotonic() - last_sent
                break
            time.sleep(POLL_S)
    finally:
        if worker is not None:
            stop_worker(worker)
        stop_stack(stack)
    result = {
        "events": len(history),
        "messages_sent": sent,
        "customers": customers,
        "publish_s": round(last_sent - started, 1),
        "last_send_to_complete_export_s": None if done is None else round(done, 1),
        "poll_s": POLL_S,
        "target_s": 60,
        "met": done is not None and done <= 60,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    figure = "not within 15 min" if done is None else f"{done:.1f} s (polled every {POLL_S:g} s)"
    print(
        f"| plain producer, no ticks, CDNOW master shuffled + 10% resends ({sent:,} messages, "
        f"published in {result['publish_s']} s): last send -> every customer's cluster, P(alive) "
        f"and churn probability in the export | {figure} |"
    )


if __name__ == "__main__":
    main()

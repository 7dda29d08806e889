"""make bench-hosts: CDNOW master evaluated by the one evaluator, and by evaluation hosts in one worker and in two.

Each mode gets a namespace of its own on one embedded stack (Kafka + Redis started here): all of
CDNOW master's purchases published without ticks, the workers started and every purchase folded,
then one tick past the last purchase; timed from the tick sent until the evaluator's saved clock
reaches it (the whole history's instants, ~78 weeks, in chunks). The modes must agree: the same
number of distinct changes and the same ``customer-segments`` (the last profile of every
customer). Two workers can only gain here if the machine has cores to give them: the result
records how many it has and the load at the start. Writes bench/hosts.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from harness import run_header
from pydantic import SecretStr
from scale_probes import applied, wait_page

from agents.settings import Settings
from segstream.demo import spawn_worker, stop_worker
from segstream.kafka_io import ensure_topics, read_topic, send_tick
from segstream.replay import replay_history
from segstream.sources import load_cdnow, occurred_at_ms
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from segstream.stack_processes import free_ports
from streams.topics import CUSTOMER_SEGMENTS, SEGMENT_CHANGES

MODES = {
    "one evaluator, 1 worker": (False, 1),
    "hosts, 1 worker": (True, 1),
    "hosts, 2 workers": (True, 2),
}


def saved_clock(client: redis.Redis, settings: Settings) -> int | None:
    raw = client.get(f"{settings.redis_prefix}eval:{{segments}}:summary")
    return int(json.loads(raw)["as_of_ms"]) if raw else None


def run_mode(
    base: Settings, root: Path, name: str, hosts: bool, workers: int, timeout_s: float
) -> dict[str, Any]:
    tag = name.split(",")[0].replace(" ", "")[:6] + str(workers)
    settings = base.model_copy(update={"namespace": f"{root.name}{tag}"})
    if hosts:
        settings = settings.model_copy(
            update={
                "evaluation_split": True,
                "evaluation_hosts": True,
                "evaluation_key": SecretStr(os.urandom(16).hex()),
            }
        )
    ensure_topics(settings)
    history = load_cdnow()
    replay_history(history, settings, progress=False, tick_every=None)
    ports = free_ports(workers)
    processes = [
        spawn_worker(
            settings.model_copy(update={"web_port": port, "data_dir": root / f"{tag}-{i}"}),
            root / f"{tag}-{i}.log",
        )
        for i, port in enumerate(ports)
    ]
    client = redis.Redis.from_url(settings.redis_url)
    try:
        for port in ports:
            wait_page(port)
        deadline = time.monotonic() + timeout_s
        while applied(client, settings) < len(history):
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"{name}: the purchases were not folded (logs in {root})")
            time.sleep(0.2)
        end = max(occurred_at_ms(history)) + 1
        time.sleep(2.0)  # both workers settled in the group
        started = time.perf_counter()
        send_tick(settings, end, source="bench")
        while saved_clock(client, settings) != end:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"{name}: the clock did not reach the end (logs in {root})")
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    finally:
        for process in processes:
            stop_worker(process)
        client.close()
    changes = {m.value for m in read_topic(settings, settings.topic(SEGMENT_CHANGES))}
    latest = {m.key: m.value for m in read_topic(settings, settings.topic(CUSTOMER_SEGMENTS))}
    return {
        "mode": name,
        "workers": workers,
        "evaluate_history_s": round(seconds, 2),
        "changes": len(changes),
        "customers": len(latest),
        "profiles": latest,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout-s", type=float, default=1_800.0, help="per mode")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("hosts.json"))
    args = parser.parse_args()
    top = Path(tempfile.mkdtemp(prefix="segstream-hosts-"))
    started = datetime.now(UTC)
    load_at_start = os.getloadavg()[0]
    stack = start_stack(top, default_cache_dir())
    base = Settings(
        kafka_url=stack.kafka_url,
        redis_url=stack.redis_url,
        partitions=4,
        web_enabled=True,
        log_level="warn",
        clock="ticks",
    )
    runs = []
    try:
        for name, (hosts, workers) in MODES.items():
            runs.append(run_mode(base, top, name, hosts, workers, args.timeout_s))
            print(f"{name}: {runs[-1]['evaluate_history_s']} s, {runs[-1]['changes']:,} changes", flush=True)
    finally:
        stop_stack(stack)
        for data in ("kafka", "redis"):
            shutil.rmtree(top / data, ignore_errors=True)
        print(f"worker logs in {top}", flush=True)
    reference = runs[0]
    baseline = runs[1]["evaluate_history_s"]
    rows = [
        "| mode | evaluate CDNOW master, one tick (s) | vs hosts in 1 worker | distinct changes | same profiles as the one evaluator |",
        "|---|---|---|---|---|",
    ]
    for run in runs:
        same = run["profiles"] == reference["profiles"] and run["changes"] == reference["changes"]
        run["same_as_one_evaluator"] = same
        rows.append(
            f"| {run['mode']} | {run['evaluate_history_s']:.1f} | {baseline / run['evaluate_history_s']:.2f}x "
            f"| {run['changes']:,} | {'yes' if same else '**no**'} |"
        )
    for run in runs:
        del run["profiles"]
    result = {
        **run_header("hosts.py", started, load_at_start),
        "runs": runs,
        "table": "\n".join(rows),
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(result["table"])
    print(f"results written to {args.output}")
    return 0 if all(run["same_as_one_evaluator"] for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

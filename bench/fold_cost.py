"""Redis's own CPU for the purchases fold (``rfm_fold.lua``): this checkout's script against an earlier one.

``python bench/fold_cost.py [--rounds N] [--before REV]`` starts a private ``redis-server``, builds
CDNOW master's deliveries with the worker's analytics tallies (about four an event), and folds them
in batches of 100 (the worker's default) into a fresh key prefix per run, alternating the two
scripts round by round: the script as of git revision ``REV`` (default ``946ccfa``, the commit
before the fold read and wrote each customer's hash in one ``HMGET`` / ``HSET``) and this
checkout's. The figure is Redis's own time in the script per event (``INFO commandstats``:
``evalsha`` microseconds over events), which a busy client does not blur; the client's events/s
and the Redis commands per event (every command but the script call: the script's and the
batch's few others) are kept beside it. Then both scripts' final states are compared key by key
(hashes, sets, sorted sets, strings): they must be identical.

Writes ``bench/fold_cost.json`` and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

import state.adapters.redis_store_base as store_base
from agents.settings import Settings
from agents.tallies import build_talliers
from bench.harness import run_header
from segstream.sources import load_cdnow, wire_events
from segstream.stack import start_redis
from segstream.stack_processes import free_ports
from state.adapters.redis_access import RedisAccess
from state.adapters.redis_catalogue import RedisCatalogue
from state.adapters.redis_store import RedisStore
from state.adapters.state_hash import FIELDS_LUA
from state.customer.store import Delivery
from state.customer.tally import combine
from streams.contract import decode_purchase

RESULTS = Path(__file__).with_name("fold_cost.json")
REPO = Path(__file__).resolve().parents[1]
BATCH = 100


def script_at(revision: str) -> str:
    """The fold script the store would run at ``revision`` (its shared field helpers prepended)."""
    shown = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{revision}:state/adapters/rfm_fold.lua"],
        check=True,
        capture_output=True,
        text=True,
    )
    return FIELDS_LUA + shown.stdout


async def deliveries(url: str) -> list[Delivery]:
    """CDNOW master as the worker folds it: each event with the tallies its step computes."""
    events = [decode_purchase(value) for _, value in wire_events(load_cdnow())]
    settings = Settings(redis_url=url, namespace="tallies")
    catalogue = RedisCatalogue.connect(settings.redis_access, settings.redis_prefix)
    tallier = combine(*build_talliers(settings, catalogue))
    tallies: list[Any] = []
    for start in range(0, len(events), BATCH):
        tallies += await tallier(events[start : start + BATCH])
    await catalogue.close()
    return [Delivery(e, "purchases", 0, i, t) for i, (e, t) in enumerate(zip(events, tallies, strict=True))]


async def fold_all(url: str, prefix: str, batch: list[Delivery]) -> float:
    store = RedisStore.connect(RedisAccess(url), prefix)
    started = time.perf_counter()
    for start in range(0, len(batch), BATCH):
        await store.apply_batch(batch[start : start + BATCH])
    await store.close()
    return time.perf_counter() - started


def state_of(client: redis.Redis, prefix: str) -> dict[str, object]:
    """Every key under ``prefix`` (the prefix cut off) with its type and value."""
    found: dict[str, object] = {}
    for key in client.scan_iter(f"{prefix}*"):
        raw_kind = client.type(key)
        kind = raw_kind.decode() if isinstance(raw_kind, bytes) else str(raw_kind)
        value: object
        if kind == "hash":
            value = client.hgetall(key)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        else:
            value = client.get(key)
        name = key.decode() if isinstance(key, bytes) else str(key)
        found[name.removeprefix(prefix)] = (kind, value)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--before", default="946ccfa", help="git revision of the script to compare with")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    started, load_at_start = datetime.now(UTC), os.getloadavg()[0]
    scripts = {"before": script_at(args.before), "now": store_base._FOLD_LUA}
    port = free_ports(1)[0]
    server = start_redis(Path(tempfile.mkdtemp(prefix="segstream-fold-cost-")), port, {"appendonly": "no"})
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        batch = asyncio.run(deliveries(url))
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in scripts}
        for r in range(args.rounds):
            for name in list(scripts) if r % 2 == 0 else list(reversed(scripts)):
                store_base._FOLD_LUA = scripts[name]  # the store registers it when it connects
                client.config_resetstat()
                wall = asyncio.run(fold_all(url, f"{name}{r}:", batch))
                stats = client.info("commandstats")
                usec = stats["cmdstat_evalsha"]["usec"]
                calls = sum(
                    v["calls"] for k, v in stats.items() if k not in ("cmdstat_evalsha", "cmdstat_config")
                )
                runs[name].append(
                    {
                        "redis_us_per_event": usec / len(batch),
                        "client_events_per_s": len(batch) / wall,
                        "redis_calls_per_event": calls / len(batch),
                    }
                )
                print(f"round {r + 1} {name}: {usec / len(batch):.1f} µs/event in Redis", flush=True)
        identical = state_of(client, "before0:") == state_of(client, "now0:")
    finally:
        store_base._FOLD_LUA = scripts["now"]
        server.terminate()
        server.wait()
    by_round = [
        n["redis_us_per_event"] / b["redis_us_per_event"]
        for n, b in zip(runs["now"], runs["before"], strict=True)
    ]
    result = {
        **run_header("fold_cost.py", started, load_at_start),
        "events": len(batch),
        "tallies_per_event": sum(len(d.tallies) for d in batch) / len(batch),
        "batch": BATCH,
        "before": args.before,
        "runs": runs,
        "now_vs_before_redis_us_by_round": by_round,
        "identical_state": identical,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    med = {name: statistics.median(x["redis_us_per_event"] for x in runs[name]) for name in runs}
    client_med = {name: statistics.median(x["client_events_per_s"] for x in runs[name]) for name in runs}
    calls = {name: statistics.median(x["redis_calls_per_event"] for x in runs[name]) for name in runs}
    print(
        f"| fold script | Redis µs per event, median of {args.rounds} | client events/s, median "
        "| Redis commands per event (all but the script call itself) |"
    )
    print("|---|---:|---:|---:|")
    for name, label in (("before", f"as of {args.before}"), ("now", "this checkout")):
        print(f"| {label} | {med[name]:.1f} | {client_med[name]:,.0f} | {calls[name]:.1f} |")
    print(
        f"now / before, each round: {' / '.join(f'{x:.2f}' for x in by_round)} "
        f"(median {statistics.median(by_round):.2f}); final states identical: {identical}"
    )
    print(f"results written to {RESULTS}")
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()

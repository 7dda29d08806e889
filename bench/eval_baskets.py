"""``make eval``, baskets: the live "frequently bought together" counts of a real worker against mlxtend.

All of The Complete Journey (``segstream.sources.load_completejourney``: one purchase per basket,
each line with its product's ``product_category``) is published through Kafka to one worker on a
private stack, with 5% of the events published a second time (producer resends: same
``event_id``). Then:

1. **Rules equal mlxtend.** ``segstream basket rules --level category --min-support 0.01 --format
   csv`` (the CLI, as a user runs it) is compared with mlxtend's ``apriori(max_len=2)`` +
   ``association_rules`` on the same baskets (each basket's set of categories; baskets with no
   categorised line left out, as the worker's counts leave them out): every rule equal in
   support, confidence and lift to 1e-9, none missing, none extra.
2. **Resends and redeliveries change no count.** Every basket table (both levels, and every
   customer's ``cust:category``) is read, the first ``--redeliver`` messages of the topic are
   folded again through ``agents.ingest.ingest_batch`` at their real partitions and offsets (a
   Kafka redelivery), and the tables are read again: identical. The worker's totals must show
   the resends as duplicates and nothing applied twice.
3. **Memory** of the pair tables after the whole replay (``MEMORY USAGE ... SAMPLES 0``), both
   levels, and how far the sku level's bounded counts are from exact pair counts computed here
   with numpy: the bound's promise (every stored count at most the threshold below the tallied
   truth, every pair above the threshold stored) is checked pair by pair, and the sku rules at
   support 0.1% are compared with exact ones.

Writes ``bench/eval_baskets.json``; exits 1 if a check fails. ``--limit N`` replays the first N
baskets only (a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
import redis.asyncio as redis
from harness import REPO, applied_event_ids, rss_kb, run_and_record
from mlxtend.frequent_patterns import apriori, association_rules

from agents.ingest import RawMessage, ingest_batch
from agents.settings import Settings
from agents.tallies import basket_config
from segstream.demo import spawn_worker, stop_worker
from segstream.kafka_io import Publisher, ensure_topics, read_topic
from segstream.replay import replay_history
from segstream.sources import load_completejourney, wire_events
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from state.adapters.redis_baskets import RedisBaskets
from state.adapters.redis_store import RedisStore
from state.analytics.basket_tally import CUSTOMER_TABLE, LEVELS, basket_tallier, pair_members
from state.customer.store import Stats
from streams.topics import PURCHASES

RESULTS = Path(__file__).with_name("eval_baskets.json")
MIN_SUPPORT = 0.01
SKU_MIN_SUPPORT = 0.001
TOLERANCE = 1e-9


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--limit", type=int, help="replay only the first N baskets (smoke run)")
    p.add_argument("--resend-share", type=float, default=0.05)
    p.add_argument("--redeliver", type=int, default=5000, help="messages folded a second time")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--hostile", type=int, default=1000, help="purchases of 1,000 distinct lines at the end")
    p.add_argument("--output", type=Path, default=RESULTS)
    return p.parse_args(argv)


def category_baskets(history: pd.DataFrame) -> list[frozenset[str]]:
    """Each basket's set of categories (baskets without one left out): mlxtend's transactions."""
    found = (
        frozenset(i["category"] for i in items if i.get("category")) for items in history["items"] if items
    )
    return [b for b in found if b]


def mlxtend_rules(baskets: list[frozenset[str]]) -> pd.DataFrame:
    names = sorted(set().union(*baskets))
    index = {n: i for i, n in enumerate(names)}
    onehot = np.zeros((len(baskets), len(names)), dtype=bool)
    for row, basket in enumerate(baskets):
        onehot[row, [index[n] for n in basket]] = True
    frequent = apriori(
        pd.DataFrame(onehot, columns=names), min_support=MIN_SUPPORT, use_colnames=True, max_len=2
    )
    found = association_rules(frequent, len(baskets), metric="confidence", min_threshold=0.0)
    return pd.DataFrame(
        {
            "antecedent": [next(iter(a)) for a in found["antecedents"]],
            "consequent": [next(iter(c)) for c in found["consequents"]],
            "support": found["support"].to_numpy(),
            "confidence": found["confidence"].to_numpy(),
            "lift": found["lift"].to_numpy(),
        }
    )


def compare_rules(live: pd.DataFrame, expected: pd.DataFrame) -> dict[str, Any]:
    a = live.set_index(["antecedent", "consequent"])
    b = expected.set_index(["antecedent", "consequent"])
    common = a.index.intersection(b.index)
    worst = {
        c: float((a.loc[common, c] - b.loc[common, c]).abs().max()) if len(common) else 0.0 for c in b.columns
    }
    return {
        "rules_live": len(a),
        "rules_mlxtend": len(b),
        "missing": len(b.index.difference(a.index)),
        "extra": len(a.index.difference(b.index)),
        "max_abs_difference": worst,
        "equal": len(common) == len(a) == len(b) and max(worst.values(), default=0.0) <= TOLERANCE,
    }


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.to_env()}
    done = subprocess.run(
        [sys.executable, "-m", "segstream", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"segstream {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done


async def read_tables(settings: Settings, customers: list[str]) -> str:
    """A digest of every basket counter (both levels' tables and every customer's own)."""
    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        digest = hashlib.sha256()
        for level in LEVELS:
            t = await baskets.tables(level)
            for part in (t.items, t.pairs, {"threshold": t.threshold}):
                digest.update(repr(sorted(part.items())).encode())
        for customer, table in sorted((await store.tallies(CUSTOMER_TABLE, customers)).items()):
            digest.update(repr((customer, sorted(table.items()))).encode())
        return digest.hexdigest()
    finally:
        await baskets.close()
        await store.close()


async def redeliver(settings: Settings, count: int) -> list[int]:
    """Fold the topic's first ``count`` messages again at their real offsets, in batches of the
    worker's size, through the worker's ingest step: outcome codes."""
    messages = []
    for m in read_topic(settings, settings.topic(PURCHASES)):
        messages.append(RawMessage(settings.topic(PURCHASES), m.partition, m.offset, m.key, m.value))
        if len(messages) >= count:
            break
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    tallier = basket_tallier(basket_config(settings))

    async def nowhere(letters: Any) -> None:
        raise AssertionError("no dead letters expected")

    outcomes: list[int] = []
    try:
        for start in range(0, len(messages), settings.batch_size):
            result = await ingest_batch(
                messages[start : start + settings.batch_size], store, nowhere, tallier=tallier
            )
            outcomes += [int(o) for o in result.outcomes]
    finally:
        await store.close()
    return outcomes


async def stats_of(settings: Settings) -> Stats:
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        return await store.stats()
    finally:
        await store.close()


def exact_sku_pairs(history: pd.DataFrame, pair_items: int) -> tuple[dict[str, int], dict[str, int], int]:
    """Exact pair counts over all baskets, and as the tallies count them (``pair_items`` bound)."""
    every: dict[str, int] = {}
    tallied: dict[str, int] = {}
    baskets = 0
    for items in history["items"]:
        skus = sorted({i["sku"] for i in items or ()})
        if not skus:
            continue
        baskets += 1
        members = set(pair_members(skus, pair_items))
        for i, a in enumerate(skus):
            for b in skus[i + 1 :]:
                field = f"{a}\x1f{b}"
                every[field] = every.get(field, 0) + 1
                if a in members and b in members:
                    tallied[field] = tallied.get(field, 0) + 1
    return every, tallied, baskets


async def sku_accuracy(settings: Settings, history: pd.DataFrame) -> dict[str, Any]:
    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    try:
        stored = await baskets.tables("sku")
    finally:
        await baskets.close()
    every, tallied, n = exact_sku_pairs(history, settings.basket_pair_items)
    t = stored.threshold
    below = [tallied.get(f, 0) - c for f, c in stored.pairs.items()]
    frequent = {f for f, c in tallied.items() if c > t}
    floor = SKU_MIN_SUPPORT * n
    true_frequent = {f for f, c in every.items() if c >= floor}
    live_frequent = {f for f, c in stored.pairs.items() if c >= floor}
    return {
        "baskets": n,
        "distinct_pairs": len(every),
        "pair_increments": int(sum(every.values())),
        "tallied_pair_increments": int(sum(tallied.values())),
        "stored_pairs": len(stored.pairs),
        "threshold": t,
        "stored_count_within_threshold": all(0 <= d <= t for d in below),
        "max_undercount_seen": max(below, default=0),
        "pairs_above_threshold": len(frequent),
        "every_pair_above_threshold_stored": frequent <= set(stored.pairs),
        f"pairs_with_support_ge_{SKU_MIN_SUPPORT}": len(true_frequent),
        "of_them_found_live": len(true_frequent & live_frequent),
        "found_live_but_not_frequent": len(live_frequent - true_frequent),
        "of_them_counted_exactly": sum(1 for f in true_frequent if stored.pairs.get(f) == every[f]),
    }


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


async def slowest_scripts(settings: Settings, reset: bool = True) -> dict[str, float]:
    """The longest run of each Lua script Redis logged (SLOWLOG, calls over 10 ms), in ms."""
    names = {
        hashlib.sha1(resources.files("state").joinpath(file).read_bytes()).hexdigest(): name
        for name, file in (("fold", "rfm_fold.lua"), ("prune", "basket_prune.lua"))
    }
    client = redis.Redis.from_url(settings.redis_url)
    try:
        entries = await client.slowlog_get(100_000)
        if reset:
            await client.slowlog_reset()
    finally:
        await client.aclose()
    slowest: dict[str, float] = {}
    for e in entries:
        words = e["command"].split()
        if len(words) > 1 and words[0].upper() == b"EVALSHA":
            name = names.get(words[1].decode(), "other")
            slowest[name] = max(slowest.get(name, 0.0), e["duration"] / 1000)
    return {k: round(v, 1) for k, v in sorted(slowest.items())}


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


def run(args: argparse.Namespace) -> dict[str, Any]:
    history = load_completejourney()
    if args.limit:
        history = history.head(args.limit)
    root = Path(tempfile.mkdtemp(prefix="segstream-baskets-"))
    print(f"baskets eval in {root}: starting Kafka + Redis ...", flush=True)
    stack = start_stack(root, default_cache_dir())
    settings = Settings(
        kafka_url=stack.kafka_url,
        redis_url=stack.redis_url,
        namespace="baskets",
        partitions=4,
        web_enabled=False,
        data_dir=root / "worker",
        clock="ticks",  # no segment evaluation: this measures the counts
        log_level="warn",
    )
    worker = None
    result: dict[str, Any] = {"root": str(root), "baskets_published": len(history)}
    try:
        ensure_topics(settings)
        worker = spawn_worker(settings, root / "worker.log")
        started = time.monotonic()
        replay_history(history, settings, progress=False, tick_every=None)
        rng = np.random.default_rng(args.seed)
        wire = list(wire_events(history))
        resent = rng.choice(len(wire), size=int(len(wire) * args.resend_share), replace=False)
        publisher = Publisher(settings)
        try:
            for i in resent:
                publisher.send(settings.topic(PURCHASES), *wire[i])
            publisher.flush()
        finally:
            publisher.close()
        published = time.monotonic() - started
        total = len(history) + len(resent)
        stats, watched = wait_folded(settings, worker, total)
        folded = time.monotonic() - started
        result["replay"] = {
            "resent": len(resent),
            "publish_s": round(published, 1),
            "folded_s": round(folded, 1),
            "baskets_per_s": round(total / folded, 1),
            **watched,
            "slowest_script_ms": asyncio.run(slowest_scripts(settings)),
            "batch_budget_hit": (root / "worker.log").read_text().count("SEGSTREAM_BASKET_BATCH_TALLIES"),
            "stats": asdict(stats),
        }
        print(f"folded {total:,} messages in {folded:.0f} s; {stats}", flush=True)

        out = root / "rules.csv"
        done = run_cli(
            settings,
            "basket",
            "rules",
            "--level",
            "category",
            "--min-support",
            str(MIN_SUPPORT),
            "--output",
            str(out),
        )
        live = pd.read_csv(out, keep_default_na=False)
        baskets = category_baskets(history)
        result["category_rules"] = {
            "cli_stderr": done.stderr.strip(),
            "baskets_with_a_category": len(baskets),
            **compare_rules(live, mlxtend_rules(baskets)),
        }
        sku_out = root / "sku_rules.csv"
        done = run_cli(
            settings,
            "basket",
            "rules",
            "--level",
            "sku",
            "--min-support",
            str(SKU_MIN_SUPPORT),
            "--output",
            str(sku_out),
        )
        result["sku_rules_cli"] = {"rules": len(pd.read_csv(sku_out)), "cli_stderr": done.stderr.strip()}

        customers = sorted(set(history["customer_id"]))
        before = asyncio.run(read_tables(settings, customers))
        stop_worker(worker)
        worker = None
        outcomes = asyncio.run(redeliver(settings, args.redeliver))
        after = asyncio.run(read_tables(settings, customers))
        result["redelivery"] = {
            "messages": len(outcomes),
            "outcomes": {str(k): outcomes.count(k) for k in sorted(set(outcomes))},
            "tables_unchanged": before == after,
        }
        result["memory"] = asyncio.run(memory(settings))
        result["sku_accuracy"] = asyncio.run(sku_accuracy(settings, history))
        worker = spawn_worker(settings, root / "worker-hostile.log")
        result["hostile"] = hostile_batch(settings, worker, root / "worker-hostile.log", args.hostile)
    finally:
        if worker is not None:
            stop_worker(worker)
        stop_stack(stack)
    rules, acc = result["category_rules"], result["sku_accuracy"]
    result["checks"] = {
        "category_rules_equal_mlxtend": bool(rules["equal"]),
        "no_rule_missing_or_extra": rules["missing"] == rules["extra"] == 0,
        "resends_counted_once": result["replay"]["stats"]["duplicates"] == len(resent)
        and result["replay"]["stats"]["applied"] == len(history),
        "redelivery_changes_no_count": result["redelivery"]["tables_unchanged"]
        and set(result["redelivery"]["outcomes"]) == {"0"},
        "hostile_batch_folded": result["hostile"]["in_redis"] == args.hostile,
        "no_script_call_near_redis_busy_threshold": max(
            [
                *result["replay"]["slowest_script_ms"].values(),
                *result["hostile"]["slowest_script_ms"].values(),
                0.0,
            ]
        )
        < 2000,
        "sku_counts_within_the_bound": acc["stored_count_within_threshold"]
        and acc["every_pair_above_threshold_stored"],
    }
    return result


async def pair_bytes(settings: Settings) -> dict[str, int]:
    """Bytes of each level's pair hash now (sampled during the replay for its peak)."""
    client = redis.Redis.from_url(settings.redis_url)
    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    try:
        return {
            level: int(await client.memory_usage(baskets.key(level, "pair"), samples=0) or 0)
            for level in LEVELS
        }
    finally:
        await client.aclose()
        await baskets.close()


async def memory(settings: Settings) -> dict[str, Any]:
    baskets = RedisBaskets.connect(settings.redis_access, settings.redis_prefix)
    try:
        found: dict[str, Any] = {level: await baskets.memory(level) for level in LEVELS}
        for level in LEVELS:
            found[level]["threshold"] = (await baskets.tables(level)).threshold
    finally:
        await baskets.close()
    client = redis.Redis.from_url(settings.redis_url)
    try:
        info = await client.info("memory")
    finally:
        await client.aclose()
    found["redis_used_memory_mib"] = round(int(info["used_memory"]) / 2**20, 1)
    found["redis_used_memory_peak_mib"] = round(int(info["used_memory_peak"]) / 2**20, 1)
    return found


def summary(result: dict[str, Any]) -> None:
    r, m, a = result["category_rules"], result["memory"], result["sku_accuracy"]
    print(f"\nreplay: {result['replay']}")
    print(
        f"category rules (min support {MIN_SUPPORT}): live {r['rules_live']}, mlxtend {r['rules_mlxtend']}, "
        f"missing {r['missing']}, extra {r['extra']}, max |diff| {r['max_abs_difference']}"
    )
    for level in LEVELS:
        x = m[level]
        print(
            f"{level}: pair hash {x['pair_fields']:,} fields {x['pair_bytes'] / 2**20:.1f} MiB, deltas "
            f"{x['pair:delta_fields']:,} fields {x['pair:delta_bytes'] / 2**20:.1f} MiB, singles "
            f"{x['n_fields']:,} fields {x['n_bytes'] / 2**20:.1f} MiB, threshold {x['threshold']}"
        )
    print(f"sku accuracy: {a}")
    print(f"redelivery: {result['redelivery']}")


def main(argv: list[str] | None = None) -> int:
    return run_and_record("eval_baskets", parse_args(argv), run, summary)


if __name__ == "__main__":
    raise SystemExit(main())

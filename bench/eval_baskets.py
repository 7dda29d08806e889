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
baskets only (a smoke run). This file holds the options and runs the steps in order; the
oracles are ``bench/baskets_oracle.py``, the reads of Redis ``bench/baskets_probes.py``, and
the resends, the hostile batch and the wait for the worker ``bench/baskets_load.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd
from baskets_load import hostile_batch, publish_resends, wait_folded
from baskets_oracle import (
    MIN_SUPPORT,
    SKU_MIN_SUPPORT,
    category_baskets,
    compare_rules,
    mlxtend_rules,
    sku_accuracy,
)
from baskets_probes import memory, read_tables, redeliver, slowest_scripts
from harness import REPO, run_and_record

from agents.settings import Settings
from segstream.demo import spawn_worker, stop_worker
from segstream.kafka_io import ensure_topics
from segstream.replay import replay_history
from segstream.sources import load_completejourney
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from state.analytics.basket_tally import LEVELS

RESULTS = Path(__file__).with_name("eval_baskets.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--limit", type=int, help="replay only the first N baskets (smoke run)")
    p.add_argument("--resend-share", type=float, default=0.05)
    p.add_argument("--redeliver", type=int, default=5000, help="messages folded a second time")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--hostile", type=int, default=1000, help="purchases of 1,000 distinct lines at the end")
    p.add_argument("--output", type=Path, default=RESULTS)
    return p.parse_args(argv)


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
        resent = publish_resends(settings, history, args.resend_share, args.seed)
        published = time.monotonic() - started
        total = len(history) + resent
        stats, watched = wait_folded(settings, worker, total)
        folded = time.monotonic() - started
        result["replay"] = {
            "resent": resent,
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
        "resends_counted_once": result["replay"]["stats"]["duplicates"] == resent
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

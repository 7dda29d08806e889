"""Partitioned evaluation in memory vs the one evaluator on all of CDNOW (``make bench-split``).

Stage one of the plan in ``docs/design-notes.md`` ("Partitioned evaluation"): one model owner and P
partition evaluators (``state.evaluator.partitioned``) over CDNOW master with the worker's
evaluator settings, one ``advance`` to a millisecond past the last purchase, for P = 1, 2 and 4,
beside one :class:`~state.evaluator.evaluate.Evaluator` in the same run. It checks that every split
gives the same changes (in the same order), alerts, models (the saved snapshot, byte for byte),
open churn batches and summary, and times each role in CPU seconds: the owner (the global steps on
its replica; each of its steps apiece) and each partition evaluator (folds, re-scoring, predictions, alerts). Since the
owner's share cannot be spread, ``owner + max(partition)`` over ``owner + sum(partition)`` bounds
what P processes on P cores could gain; the run is one process, so it measures the work, not a
deployment. BLAS runs one thread (as each role would on a core of its own), so CPU seconds are
the work's. Writes ``bench/split_identity.json`` and prints a Markdown table.

    .venv/bin/python bench/split_identity.py [--partitions 1 2 4] [--sample]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads its BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.evaluation_setup import evaluator_config
from agents.settings import Settings
from segstream.sources import load_cdnow, occurred_at_ms
from state.customer.event_log import LogEntry
from state.evaluator import evaluate_predictions, evaluate_state, model_owner
from state.evaluator.evaluate import Evaluator
from state.evaluator.partitioned import PartitionedEvaluator

RESULTS = Path(__file__).with_name("split_identity.json")
# the steps the owner runs, timed apiece where the owner calls them (only the owner calls these
# there while a split runs): the global steps (the cluster model's walk, the figures of a version
# it publishes, refits, churn labelling, drift, scoring for churn batches, campaigns) and its
# replica's upkeep (storing the states, applying the row updates)
OWNER_PARTS: tuple[tuple[ModuleType, str], ...] = (
    (evaluate_state, "learn"),
    (evaluate_state, "assess_version"),
    (evaluate_predictions, "refit_lifetime"),
    (evaluate_predictions, "resolve_due"),
    (model_owner, "drift_alerts"),
    (model_owner, "scored"),
    (model_owner, "campaign_step"),
    (model_owner, "store_states"),
    (model_owner, "apply_updates"),
)


def cdnow_logs(sample: bool) -> tuple[dict[str, list[LogEntry]], int]:
    """Every CDNOW customer's purchases as the evaluator's logs, and the instant past the last one."""
    frame = load_cdnow(sample=sample)
    times = occurred_at_ms(frame)
    cents = (frame["amount"] * 100).round().astype(int).tolist()
    logs: dict[str, list[LogEntry]] = defaultdict(list)
    for c, t, e, a in zip(frame["customer_id"], times, frame["event_id"], cents, strict=True):
        logs[c].append(LogEntry(t, e, "purchase", a))
    return logs, max(times) + 1


def timed(clock: dict[str, float], role: str, call: Callable[..., Any]) -> Callable[..., Any]:
    """``call``, adding its CPU seconds to ``clock[role]``."""

    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return call(*args, **kwargs)
        finally:
            clock[role] += time.process_time() - start

    return run


def split_run(
    logs: dict[str, list[LogEntry]], end: int, partitions: int, one: Evaluator, ones: list[Any]
) -> dict[str, Any]:
    """One split over ``logs``, compared with ``one`` (its changes ``ones``), each role timed."""
    config = one.config
    split = PartitionedEvaluator(config, partitions)
    clock: dict[str, float] = defaultdict(float)
    owner = split.owner
    owner.state_step = timed(clock, "owner", owner.state_step)  # type: ignore[method-assign]
    owner.profile_step = timed(clock, "owner", owner.profile_step)  # type: ignore[method-assign]
    for part in split.partitions:
        role = f"partition {part.partition}"
        part.fold = timed(clock, role, part.fold)  # type: ignore[method-assign]
        part.apply = timed(clock, role, part.apply)  # type: ignore[method-assign]
    start = time.process_time()
    originals = {(module, name): getattr(module, name) for module, name in OWNER_PARTS}
    for (module, name), call in originals.items():
        setattr(module, name, timed(clock, name, call))
    try:
        changes = split.advance(end, logs)
    finally:
        for (module, name), call in originals.items():
            setattr(module, name, call)
    total = time.process_time() - start
    parts = [clock[f"partition {p}"] for p in range(partitions)]
    return {
        "partitions": partitions,
        "customers_per_partition": [len(p.population) for p in split.partitions],
        "same_changes": changes == ones,
        "same_alerts": split.take_alerts() == one.alerts,
        "same_snapshot": owner.snapshot() == one.snapshot(),
        "same_batches": owner.batch_entries() == one.batch_entries(),
        "same_summary": owner.summary() == one.summary(),
        "changes": len(changes),
        "cpu_s": round(total, 2),
        "owner_cpu_s": round(clock["owner"], 2),
        "owner_parts_cpu_s": {name: round(clock[name], 2) for _, name in OWNER_PARTS},
        "partition_cpu_s": [round(p, 2) for p in parts],
        "bound_vs_one_process": round((clock["owner"] + sum(parts)) / (clock["owner"] + max(parts)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--sample", action="store_true", help="the CDNOW sample (2,357 customers), not master"
    )
    parser.add_argument(
        "--profile-owner", action="store_true", help="the owner's calls under cProfile (P = 2)"
    )
    args = parser.parse_args()
    if any(p < 1 for p in args.partitions):
        parser.error("--partitions must be >= 1")
    logs, end = cdnow_logs(args.sample)
    config = evaluator_config(Settings())
    one = Evaluator(config)
    start = time.process_time()
    ones = one.advance(end, logs)
    one_cpu = time.process_time() - start
    runs = [split_run(logs, end, p, one, ones) for p in args.partitions]
    report = {
        "command": "make bench-split" + (" ARGS=--sample" if args.sample else ""),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "data": "CDNOW sample" if args.sample else "CDNOW master",
        "customers": len(logs),
        "one_evaluator": {"changes": len(ones), "alerts": len(one.alerts), "cpu_s": round(one_cpu, 2)},
        "splits": runs,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{report['data']}, {len(logs):,} customers; one evaluator {one_cpu:.1f} s CPU, {len(ones):,} changes"
    )
    print("| P | identical | CPU s | owner s (walk) | partitions s | bound |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        same = all(r[k] for k in r if k.startswith("same_"))
        parts = ", ".join(f"{p:.1f}" for p in r["partition_cpu_s"])
        print(
            f"| {r['partitions']} | {same} | {r['cpu_s']:.1f} | {r['owner_cpu_s']:.1f} ({r['owner_parts_cpu_s']['learn']:.1f}) | {parts} | {r['bound_vs_one_process']:.2f}x |"
        )
    if not all(r[k] for r in runs for k in r if k.startswith("same_")):
        raise SystemExit("a split differs from the one evaluator (see bench/split_identity.json)")


if __name__ == "__main__":
    main()

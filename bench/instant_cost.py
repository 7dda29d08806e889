"""What one live instant costs the pure evaluator as the population grows (``make bench-instant``).

The scale issue's target: the cost of a live instant at 1M customers within 2x of its cost at 10k
for the same number of new events. This measures the evaluator alone (no Kafka, no Redis; the
worker adds reading logs, publishing and saving, which ``make bench-scale`` measures end to end):

1. a generated BG/NBD-like population (``segstream.population_gen``, seeded, ~4 events per
   customer over two years) is evaluated up to one day past its last event;
2. then, 1 to 4 hours past that midnight (off the grid, as a watermark clock's instants are):
   a quiet instant (no event), and an instant after ``--events`` purchases by distinct existing
   customers, each three times; medians are reported, with the changes they produced.

Sizes are measured in the same run, smallest first, so their ratios are comparable. Writes
``bench/instant_cost.json`` and prints a Markdown table.

    .venv/bin/python bench/instant_cost.py [--sizes 10000 100000 1000000] [--events 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segstream.population_gen import SPARSE, generate_population
from segstream.sources import history_logs
from state.customer.event_log import LogEntry
from state.customer.rfm import DAY_MS
from state.evaluator.config import EvaluatorConfig
from state.evaluator.evaluate import Evaluator
from state.segments.segments import load_preset

RESULTS = Path(__file__).with_name("instant_cost.json")
HOUR_MS = 3_600_000


def measure(customers: int, events: int, seed: int) -> dict[str, object]:
    history = generate_population(customers, seed, SPARSE)
    logs = history_logs(history)
    end = (max(e.occurred_at_ms for log in logs.values() for e in log) // DAY_MS + 1) * DAY_MS
    evaluator = Evaluator(EvaluatorConfig(load_preset("rfm11")))
    started = time.perf_counter()
    evaluator.advance(end, logs)
    history_s = time.perf_counter() - started
    rng = np.random.default_rng(seed)
    ids = sorted(logs)
    quiet: list[float] = []
    busy: list[float] = []
    changes: list[int] = []
    for k in range(3):
        at = end + (1 + k) * HOUR_MS
        started = time.perf_counter()
        evaluator.advance(at, {})
        quiet.append(time.perf_counter() - started)
        at += HOUR_MS // 2
        picked = [ids[i] for i in rng.choice(len(ids), events, replace=False)]
        due = {c: [*logs[c], LogEntry(at - 1_000, f"live:{k}:{c}", "purchase", 2_500)] for c in picked}
        logs.update(due)
        started = time.perf_counter()
        changes.append(len(evaluator.advance(at, due)))
        busy.append(time.perf_counter() - started)
    return {
        "customers": customers,
        "events": len(history),
        "history_s": round(history_s, 1),
        "quiet_instant_s": statistics.median(quiet),
        "instant_with_events_s": statistics.median(busy),
        "changes_at_instant_with_events": int(statistics.median(changes)),
        "new_events_per_instant": events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for n in sorted(args.sizes):
        rows.append(measure(n, args.events, args.seed))
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    RESULTS.write_text(json.dumps({"runs": rows}, indent=2) + "\n")
    print(
        f"| customers | events | history evaluated | quiet instant | instant after {args.events:,} purchases (changes) | vs {base['customers']:,} |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = float(r["instant_with_events_s"]) / float(base["instant_with_events_s"])  # type: ignore[arg-type]
        print(
            f"| {r['customers']:,} | {r['events']:,} | {r['history_s']} s | {1000 * float(r['quiet_instant_s']):.1f} ms "  # type: ignore[arg-type]
            f"| {1000 * float(r['instant_with_events_s']):.1f} ms ({r['changes_at_instant_with_events']:,}) | {ratio:.2f}x |"  # type: ignore[arg-type]
        )
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()

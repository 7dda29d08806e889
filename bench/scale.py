"""``make bench-scale``: today's design at 10k, 100k (and, by ARGS, 1M) generated customers.

For each population (``segstream.population_gen``: BG/NBD-like, seeded, two years; ``sparse``
about 4 events per customer, ``dense`` about 40) on one private Kafka + Redis it measures:

1. **ingest, 1 worker**: the whole history published first (``segstream``'s streamed file replay,
   no clock ticks), then one ``segstream worker`` (clock ``ticks``) folds it: events/s from the
   first applied event to the last, as ``make bench`` measures it;
2. **evaluation**: one tick just past the history (the whole two years evaluated in one go);
   then one quiet instant (one grid day, no new events) ticked as ``segstream replay`` and
   ``segstream clock`` tick (the tick names the topics' end offsets, which the evaluator checks
   against Kafka's before it evaluates), ``--repeats`` quiet instants ticked bare (no offsets:
   every event is applied already, so only the evaluation: agenda, evaluate, publish, save), and
   ``--repeats`` bare instants each after ``--new-events`` purchases of distinct existing
   customers (medians in the table); all of these are grid instants (UTC midnights), where the
   predictions cover every buyer. Then ``--repeats`` *live* instants, off the grid as a watermark
   clock's are: after each midnight is ticked, ``--new-events`` purchases during its first 11
   hours, an instant ticked at 12:00 and a quiet one at 13:00. Each instant's cost is the worker's own
   ``segstream_tick_seconds``, scraped from ``/metrics``, beside the wall time from sending the
   tick to the worker observing it and the profile changes it published;
3. **Redis**: ``INFO memory`` ``used_memory`` before the replay, after ingest and after the
   instants (measured two dedupe windows after the last event: ``--dedupe-window-s``, 60 s, so the
   event_id sets of the window have expired, as they do ``SEGSTREAM_DEDUPE_WINDOW_S`` after live
   events), over customers; and every key of the namespace by ``MEMORY USAGE`` (``SAMPLES 0``),
   grouped by kind (``seg:{id}`` state hash, ``:ev``, ``:days``, ``:log``, ``:t``, the evaluator's
   ``view`` hash, ``model``, agenda, ...);
4. **worker peak RSS**: ``VmHWM`` from ``/proc`` before the worker stops;
5. **ingest, 2 workers** on the 4 partitions: the same history in a second namespace, both
   workers started together (the rebalance is part of the figure). Evaluation is not measured
   with 2 workers: only the owner of the one-partition clock topic evaluates.

Writes ``bench/scale.json`` and prints a Markdown table. Generated files are cached under
``.cache/scale/``; the stack's Kafka and Redis data are removed at the end (the workers' logs
stay in the printed temporary directory).

This module parses the arguments, starts the stack and writes the results; the phases of one
population are ``scale_runs.py``'s, the waits on the workers ``scale_waits.py``'s, the generated
data ``scale_data.py``'s, what is read off the stack ``scale_probes.py``'s and the tables
``scale_table.py``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import run_header
from scale_runs import run_population
from scale_table import flatness, kinds_table, main_table

from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000], help="customers, sparse preset"
    )
    parser.add_argument(
        "--dense-size", type=int, default=10_000, help="customers of the ~40 events/customer run (0: none)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--repeats", type=int, default=3, help="quiet instants, and instants with new events, each"
    )
    parser.add_argument(
        "--new-events", type=int, default=1_000, help="purchases in the measured busy instant"
    )
    parser.add_argument("--timeout-s", type=float, default=3_600.0, help="per phase")
    parser.add_argument(
        "--no-two-workers",
        dest="two_workers",
        action="store_false",
        help="leave out the 2-worker ingest (at 1M it adds publishing the history again and folding it twice)",
    )
    parser.add_argument(
        "--dedupe-window-s",
        type=int,
        default=60,
        help="the workers' SEGSTREAM_DEDUPE_WINDOW_S: the memory after the instants is measured two windows "
        "after the last event, as it stands once the window has passed (the default window is 7 days)",
    )
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("scale.json"))
    args = parser.parse_args()
    plan = [("sparse", n) for n in args.sizes] + ([("dense", args.dense_size)] if args.dense_size else [])
    top = Path(tempfile.mkdtemp(prefix="segstream-scale-"))
    started = datetime.now(UTC)
    load_at_start = os.getloadavg()[0]
    stack = start_stack(top, default_cache_dir())
    runs = []
    try:
        for preset, customers in plan:
            runs.append(run_population((stack.kafka_url, stack.redis_url), top, preset, customers, args))
    finally:
        stop_stack(stack)
        for data in ("kafka", "redis"):  # gigabytes at 100k; the workers' logs stay
            shutil.rmtree(top / data, ignore_errors=True)
        print(f"worker logs in {top}", flush=True)
    tables = [main_table(runs), flatness(runs) or "", kinds_table(runs)]
    result = {
        **run_header("scale.py", started, load_at_start),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "runs": runs,
        "tables": tables,
    }
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print("\n\n".join(t for t in tables if t))
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

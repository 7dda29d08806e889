"""One pure evaluator over all of CDNOW: its CPU time and a digest of everything it produced.

For A/B runs of a change to the evaluator (``farm-bench``, or two checkouts side by side): the
worker's evaluator settings, one ``advance`` to a millisecond past the last purchase, no Kafka,
no Redis, with the CPU time of the cluster model's learning walk apart. The digests (MD5 of the changes, the alerts and the saved snapshot) say whether two
versions give the same results bit for bit; the time says which is faster. BLAS runs one thread.

    .venv/bin/python bench/eval_pure.py [--sample]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads its BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.evaluation_setup import evaluator_config
from agents.settings import Settings
from bench.split_identity import cdnow_logs
from state.evaluator import evaluate_state
from state.evaluator.evaluate import Evaluator


def timed_walk() -> list[float]:
    """Time the cluster model's learning walk (``rescore.learn``, once per instant) as the
    evaluator calls it; the seconds spent accumulate in the list returned."""
    spent = [0.0]
    walk: Callable[..., bool] = getattr(evaluate_state, "learn")  # noqa: B009 (the name it calls, not exported)

    def timed(*args: Any, **kwargs: Any) -> bool:
        start = time.process_time()
        try:
            return walk(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - start

    setattr(evaluate_state, "learn", timed)  # noqa: B010
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sample", action="store_true", help="the CDNOW sample (2,357 customers), not master"
    )
    args = parser.parse_args()
    logs, end = cdnow_logs(args.sample)
    evaluator = Evaluator(evaluator_config(Settings()))
    walk = timed_walk()
    start = time.process_time()
    changes = evaluator.advance(end, logs)
    cpu = time.process_time() - start
    digest = {
        "changes": hashlib.md5(repr(changes).encode()).hexdigest(),
        "alerts": hashlib.md5(repr(evaluator.alerts).encode()).hexdigest(),
        "snapshot": hashlib.md5(evaluator.snapshot()).hexdigest(),
    }
    print(
        f"{len(logs):,} customers, {len(changes):,} changes, {cpu:.1f} s CPU "
        f"(the cluster model's walk {walk[0]:.2f} s); digests {digest}"
    )


if __name__ == "__main__":
    main()

"""One pure evaluator over all of CDNOW: its CPU time and a digest of everything it produced.

For A/B runs of a change to the evaluator (``farm-bench``, or two checkouts side by side): the
worker's evaluator settings, one ``advance`` to a millisecond past the last purchase, no Kafka,
no Redis. The digests (MD5 of the changes, the alerts and the saved snapshot) say whether two
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.evaluation_setup import evaluator_config
from agents.settings import Settings
from bench.split_identity import cdnow_logs
from state.evaluator.evaluate import Evaluator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sample", action="store_true", help="the CDNOW sample (2,357 customers), not master"
    )
    args = parser.parse_args()
    logs, end = cdnow_logs(args.sample)
    evaluator = Evaluator(evaluator_config(Settings()))
    start = time.process_time()
    changes = evaluator.advance(end, logs)
    cpu = time.process_time() - start
    digest = {
        "changes": hashlib.md5(repr(changes).encode()).hexdigest(),
        "alerts": hashlib.md5(repr(evaluator.alerts).encode()).hexdigest(),
        "snapshot": hashlib.md5(evaluator.snapshot()).hexdigest(),
    }
    print(f"{len(logs):,} customers, {len(changes):,} changes, {cpu:.1f} s CPU; digests {digest}")


if __name__ == "__main__":
    main()

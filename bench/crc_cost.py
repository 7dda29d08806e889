"""What kafka-python's record checksums cost: the ``crc32c`` C extension vs its pure-Python fallback.

kafka-python computes a CRC-32C over every record batch it writes and checks it over every batch
it reads; without the ``crc32c`` package it does both in pure Python. segstream's replay
(``segstream replay``, ``segstream.replay``), its topic reads (``segstream export``, the tests'
checks of ``segment-changes`` and ``customer-segments``) and the benches' consumers are
kafka-python clients. This starts its own Kafka + Redis, then in alternating rounds with the C
checksum and the pure-Python one (the same function kafka-python falls back to): publishes
CDNOW master with ``replay_history`` (no ticks) to a topic of its own, and reads it back whole
with ``read_topic``. Prints and writes ``bench/crc_cost.json``: medians and ratios.

Usage: ``.venv/bin/python bench/crc_cost.py [--rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kafka.record.util as record_util
from kafka.record._crc32c import crc as crc32c_python

from agents.settings import Settings
from segstream.kafka_io import ensure_topics, read_topic
from segstream.replay import replay_history
from segstream.sources import load_cdnow
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from streams.topics import PURCHASES

RESULTS = Path(__file__).with_name("crc_cost.json")
C_CHECKSUM = record_util.calc_crc32c.__defaults__


def use(checksum: str) -> None:
    """Make kafka-python's record checksum the C one or the pure-Python fallback."""
    if checksum == "c":
        if record_util.crc32c_c is None:
            raise SystemExit("the crc32c package is not installed: make install")
        record_util.calc_crc32c.__defaults__ = C_CHECKSUM
    else:
        record_util.calc_crc32c.__defaults__ = (crc32c_python,)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    history = load_cdnow()
    root = Path(tempfile.mkdtemp(prefix="segstream-crc-"))
    stack = start_stack(root, default_cache_dir())
    timings: dict[str, dict[str, list[float]]] = {c: {"publish_s": [], "read_s": []} for c in ("c", "python")}
    try:
        for round_ in range(args.rounds):
            for checksum in ("c", "python"):
                settings = Settings(
                    kafka_url=stack.kafka_url, redis_url=stack.redis_url, namespace=f"crc{round_}{checksum}"
                )
                ensure_topics(settings)
                use(checksum)
                started = time.perf_counter()
                report = replay_history(history, settings, progress=False, tick_every=None)
                published = time.perf_counter()
                read = sum(1 for _ in read_topic(settings, settings.topic(PURCHASES)))
                done = time.perf_counter()
                assert report.sent == read == len(history), (report.sent, read)
                timings[checksum]["publish_s"].append(published - started)
                timings[checksum]["read_s"].append(done - published)
                print(
                    f"round {round_ + 1} {checksum}: publish {published - started:.2f} s, read {done - published:.2f} s"
                )
    finally:
        use("c")
        stop_stack(stack)
    medians = {c: {k: statistics.median(v) for k, v in t.items()} for c, t in timings.items()}
    results = {
        "events": len(history),
        "rounds": args.rounds,
        "timings": timings,
        "medians_s": medians,
        "python_vs_c": {k: medians["python"][k] / medians["c"][k] for k in ("publish_s", "read_s")},
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    n = len(history)
    for k, label in (("publish_s", "publish (replay_history)"), ("read_s", "read back (read_topic)")):
        c, py = medians["c"][k], medians["python"][k]
        print(f"| {label} | {n / c:,.0f} events/s | {n / py:,.0f} events/s | {py / c:.1f}x |")
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()

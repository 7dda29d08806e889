"""``make fuzz``: generated purchase payloads through one worker; every outcome checked exactly.

Payloads (``--count``, default 100,000), generated with Hypothesis, seeded (``--seed``):

- ``valid_shape``: ``hypothesis_jsonschema.from_schema(schemas/purchase.schema.json)`` (a pool of
  ``--schema-examples`` objects, each reused with a fresh unique ``event_id``);
- mutations of those objects: ``wrong_type``, ``missing_field``, ``huge_string`` (up to
  ``--max-bytes``, below the broker's default ``message.max.bytes``), ``deep_nesting``,
  ``huge_list``, ``non_utf8`` (invalid UTF-8 bytes, or an escaped lone surrogate), ``random_bytes``,
  ``not_object``, ``epoch_seconds`` (seconds where milliseconds are due), ``far_future`` (2099,
  9999), ``far_past`` (1900, 1969/1970), ``amount_edge``, ``type_edge``.

Half of the objects get a customer of a pool of 500 and half an event time in 1990..2025 before
they are mutated, so accepted payloads fold into shared customers inside the accepted window.
Every payload that has an ``event_id`` gets a unique one, so each expected outcome is exact: the
contract's own validator (``streams.contract.decode_purchase``, called in this process the way
``agents.ingest`` calls it) accepts or rejects it. All are published to a fresh namespace with
one worker running (kept alive by a supervisor that counts any exit), then:

- the worker never exited;
- every rejected payload is in ``purchases.dlq`` (matched by source partition/offset) with a
  non-empty reason that names a field (``<field>: ...``), and no accepted one is;
- every accepted payload is applied: the store's ``applied``/``invalid`` totals, and every
  customer's state equals the pandas oracle (``segstream.batch``) over the accepted ones (a plain
  fold for customers with an event after 2262, which pandas' nanosecond timestamps cannot hold);
- every payload the JSON Schema (jsonschema) rejects is rejected by the contract too.

Writes ``bench/fuzz.json`` (counts by kind, outcome and reason prefix) and exits 1 if a check fails.
This file runs it (stack, worker, publishing, waiting); the payloads are made in
``bench/fuzz_payloads.py`` and the verdicts and checks are ``bench/fuzz_checks.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_checks import Payload, Raised, check, contract_verdict, schema_verdict
from fuzz_payloads import generate
from harness import Supervisor, TrackedProducer, all_states, read_stats, run_and_record

from agents.settings import Settings
from segstream.kafka_io import ensure_topics, read_topic
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from streams.contract import Purchase
from streams.topics import PURCHASES, PURCHASES_DLQ

RESULTS = Path(__file__).with_name("fuzz.json")
MAX_REQUEST = 1_048_576  # kafka-python's default max_request_size, = Kafka's message.max.bytes ballpark


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--count", type=int, default=100_000, help="payloads to generate (default 100,000)")
    p.add_argument("--schema-examples", type=int, help="from_schema pool size (default min(count/20, 2000))")
    p.add_argument("--max-bytes", type=int, default=1_000_000, help="largest payload (default 1,000,000)")
    p.add_argument("--seed", type=int, default=20261126)
    p.add_argument("--max-depth", type=int, default=100_000, help="deepest nesting generated (100,000)")
    p.add_argument("--max-worker-restarts", type=int, default=5, help="stop waiting after this many exits")
    p.add_argument("--drain-timeout-s", type=float, default=900.0)
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.schema_examples is None:
        args.schema_examples = max(50, min(args.count // 20, 2000))
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="segstream-fuzz-"))
    print(f"fuzz run in {root}: starting Kafka + Redis ...", flush=True)
    stack = start_stack(root, default_cache_dir())
    settings_ = Settings(
        kafka_url=stack.kafka_url,
        redis_url=stack.redis_url,
        namespace=f"fuzz{args.seed}",
        partitions=4,
        web_enabled=False,
        data_dir=root / "worker",
        log_level="warn",
    )
    topic = settings_.topic(PURCHASES)
    sup = Supervisor(settings_, root, ["worker"], restart_pause_s=2.0)
    payloads: list[Payload] = []
    started = time.monotonic()
    try:
        ensure_topics(settings_)
        sup.start_all()
        producer = TrackedProducer(settings_, max_request_size=MAX_REQUEST)
        last_tick = time.monotonic()
        unsendable: Counter[str] = Counter()
        limits = settings_.input_limits()

        def sink(kind: str, raw: bytes) -> None:
            nonlocal last_tick
            verdict = contract_verdict(raw, limits)
            index = len(payloads)
            payloads.append(
                Payload(
                    kind,
                    len(raw),
                    verdict if isinstance(verdict, Purchase) else None,
                    verdict if isinstance(verdict, str) else None,
                    verdict.error if isinstance(verdict, Raised) else None,
                    schema_verdict(raw),
                    raw[:160].decode("utf-8", "backslashreplace"),
                )
            )
            try:
                producer.send(topic, f"fz-{index % 64}".encode(), raw, index, record_offsets=True)
            except Exception as exc:  # e.g. too large for the producer: not published, not expected
                unsendable[type(exc).__name__] += 1
            if time.monotonic() - last_tick > 1.0:
                sup.tick()
                last_tick = time.monotonic()
                if index and index % 10_000 < 200:
                    print(f"  {index:,} payloads generated", flush=True)

        generation_errors = generate(
            args.count, args.seed, args.schema_examples, args.max_bytes, args.max_depth, sink
        )
        producer.flush()
        for _ in range(20):
            failed = producer.take_failed()
            if not failed:
                break
            print(f"  {len(failed)} sends failed: not published, so not expected", flush=True)
            unsendable["not acknowledged"] += len(failed)
        producer.close()
        generated_s = time.monotonic() - started
        expected = sum(1 for i in producer.metadata if payloads[i].raised is None)
        print(
            f"generated and published {len(payloads):,} payloads in {generated_s:.0f} s; waiting for the worker",
            flush=True,
        )

        # wait until the worker has seen every message
        done_at = None
        deadline = time.monotonic() + args.drain_timeout_s
        stats = None
        while time.monotonic() < deadline:
            sup.tick()
            stats = read_stats(settings_)
            if stats is not None and stats.applied + stats.duplicates + stats.invalid >= expected:
                done_at = time.monotonic()
                break
            if len(sup.slots[0].exits) > args.max_worker_restarts:
                print(
                    f"  the worker exited {len(sup.slots[0].exits)} times; not waiting any longer", flush=True
                )
                break
            time.sleep(0.5)
        time.sleep(2)
        sup.tick()
        stats = read_stats(settings_)
        letters = list(read_topic(settings_, settings_.topic(PURCHASES_DLQ), idle_timeout_s=5.0))
        states = all_states(settings_)
        return check(
            args,
            payloads,
            producer.metadata,
            stats,
            letters,
            states,
            sup,
            generated_s,
            done_at,
            started,
            root,
            unsendable,
            generation_errors,
        )
    finally:
        sup.stop_all()
        stop_stack(stack)


def print_summary(result: dict[str, Any]) -> None:
    print(
        f"\n{result['published']:,} payloads: {result['accepted']:,} accepted, {result['rejected']:,} rejected"
    )
    print("| kind | accepted | rejected | schema valid | schema invalid |\n|---|---:|---:|---:|---:|")
    for kind, c in result["by_kind"].items():
        print(
            f"| {kind} | {c.get('accepted', 0):,} | {c.get('rejected', 0):,} | {c.get('schema_valid', 0):,} | {c.get('schema_invalid', 0):,} |"
        )
    print(
        "rejected by reason prefix: "
        + ", ".join(f"{k} {v:,}" for k, v in result["rejected_by_reason_prefix"].items())
    )


def main(argv: list[str] | None = None) -> int:
    return run_and_record("fuzz", parse_args(argv), run, print_summary)


if __name__ == "__main__":
    sys.exit(main())

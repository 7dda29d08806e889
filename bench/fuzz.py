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
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd
from harness import Supervisor, TrackedProducer, all_states, read_stats, run_and_record
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisDeprecationWarning
from hypothesis_jsonschema import from_schema
from jsonschema import ValidationError

from agents.settings import Settings
from segstream.batch import rfm_table
from segstream.kafka_io import ensure_topics, read_topic
from segstream.stack import start_stack, stop_stack
from segstream.stack_info import default_cache_dir
from state.customer.rfm import DAY_MS
from streams.contract import InvalidEvent, Purchase, decode_purchase
from streams.limits import InputLimits
from streams.topics import PURCHASES, PURCHASES_DLQ
from tests.schema_helpers import load_schema, validate_json

RESULTS = Path(__file__).with_name("fuzz.json")
MAX_REQUEST = 1_048_576  # kafka-python's default max_request_size, = Kafka's message.max.bytes ballpark
PANDAS_MAX_MS = int(pd.Timestamp.max.timestamp() * 1000) - DAY_MS
KINDS: dict[str, int] = {  # weights out of 100
    "valid_shape": 30,
    "wrong_type": 9,
    "missing_field": 7,
    "huge_string": 1,
    "deep_nesting": 2,
    "huge_list": 1,
    "non_utf8": 4,
    "random_bytes": 4,
    "not_object": 3,
    "epoch_seconds": 8,
    "far_future": 8,
    "far_past": 8,
    "amount_edge": 10,
    "type_edge": 5,
}
FIELDS = [
    "event_id",
    "customer_id",
    "occurred_at",
    "amount",
    "type",
    "order_id",
    "currency",
    "items",
    "channel",
]
PER_EXAMPLE = 16
MARK = "\u00a7MARK\u00a7"
_REASON = re.compile(r"^([A-Za-z_][\w.\[\]]*): \S")


@dataclass(frozen=True)
class Raised:
    """The validator raised something other than ``InvalidEvent``: the worker's batch would fail."""

    error: str


def contract_verdict(raw: bytes, limits: InputLimits) -> Purchase | str | Raised:
    """The worker's own check, called as ``agents.ingest`` calls it: an empty value is rejected,
    else ``decode_purchase`` with the worker's limits (``Settings.input_limits()``) and the wall
    clock (the generated times are nowhere near the accepted window's upper end)."""
    try:
        if not raw:
            raise InvalidEvent("payload: empty message value")
        return decode_purchase(raw, limits, int(time.time() * 1000))
    except InvalidEvent as exc:
        return exc.reason
    except Exception as exc:
        return Raised(f"{type(exc).__name__}: {str(exc)[:200]}")


def schema_verdict(raw: bytes) -> bool | None:
    """True/False: the JSON Schema accepts/rejects it; None: Python's json cannot even parse it (depth)."""
    try:
        validate_json("purchase", raw)
        return True
    except ValidationError:
        return False
    except (RecursionError, ValueError):
        return None


# ---- payload construction -----------------------------------------------------------------------

# Hypothesis probes ``extend`` with an empty strategy and, as lists and dicts of it may be empty,
# warns that it does not recurse; it does (``min_size`` is 0 on purpose).
warnings.filterwarnings("ignore", message=".*can't actually recurse", category=HypothesisDeprecationWarning)
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def _encode(obj: Any, ascii_only: bool) -> bytes:
    return json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _with_raw(obj: dict[str, Any], field: str, raw_json: bytes, ascii_only: bool) -> bytes:
    """``obj`` encoded with ``field``'s value replaced by ``raw_json`` verbatim."""
    obj = {**obj, field: MARK}
    return _encode(obj, ascii_only).replace(_encode(MARK, ascii_only), raw_json, 1)


def _naive(*parts: int) -> datetime:
    """A naive UTC datetime, as ``st.datetimes`` bounds must be."""
    return datetime(*parts, tzinfo=UTC).replace(tzinfo=None)  # type: ignore[arg-type,misc]


def _stamp(moment: datetime, as_ms: bool) -> str | int:
    if as_ms:
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        return delta.days * DAY_MS + delta.seconds * 1000 + delta.microseconds // 1000
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build(kind: str, base: dict[str, Any], event_id: str, data: Any, max_bytes: int, max_depth: int) -> bytes:
    """One payload of ``kind`` from a schema example ``base`` (drawing what it needs from ``data``)."""
    obj = copy.deepcopy(base)
    obj["event_id"] = event_id
    ascii_only = data.draw(st.booleans())
    # half the time a customer of a small pool and a time in 1990..2025 (in either form), so many
    # payloads fold into the same customers and fall inside the accepted event-time window
    if data.draw(st.booleans()):
        obj["customer_id"] = f"fzc-{data.draw(st.integers(0, 499))}"
    if data.draw(st.booleans()):
        moment = data.draw(st.datetimes(_naive(1990, 1, 1), _naive(2025, 12, 31))).replace(tzinfo=UTC)
        obj["occurred_at"] = _stamp(moment, data.draw(st.booleans()))
    if kind == "valid_shape":
        return _encode(obj, ascii_only)
    if kind == "wrong_type":
        obj[data.draw(st.sampled_from(FIELDS))] = data.draw(json_values)
        return _encode(obj, ascii_only)
    if kind == "missing_field":
        for field in data.draw(st.lists(st.sampled_from(FIELDS[:5]), min_size=1, max_size=3, unique=True)):
            obj.pop(field, None)
        return _encode(obj, ascii_only)
    if kind == "huge_string":
        field = data.draw(
            st.sampled_from(["event_id", "customer_id", "order_id", "channel", "note", "occurred_at"])
        )
        fill = data.draw(st.characters(codec="utf-8", exclude_categories=["Cs"]))
        size = int(10 ** data.draw(st.floats(3, math.log10(max_bytes))))
        room = max_bytes - len(_encode(obj, ascii_only)) - 64
        unit = len(_encode(fill, ascii_only)) - 2
        obj[field] = fill * max(1, min(size, room) // max(unit, 1))
        return _encode(obj, ascii_only)
    if kind == "deep_nesting":
        depth = int(10 ** data.draw(st.floats(1, math.log10(max_depth))))
        opener, closer = data.draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        field = data.draw(st.sampled_from(["amount", "items", "extra", "customer_id"]))
        return _with_raw(obj, field, opener * depth + b"1" + closer * depth, ascii_only)
    if kind == "huge_list":
        element = data.draw(
            st.sampled_from(
                [
                    1,
                    "x",
                    {"sku": "s", "quantity": 1, "unit_price": 1.5},
                    {"sku": "s", "quantity": 0, "unit_price": 1},
                ]
            )
        )
        field = data.draw(st.sampled_from(["items", "extra", "amount"]))
        length = int(10 ** data.draw(st.floats(3, 5.3)))
        room = max_bytes - len(_encode(obj, ascii_only)) - 64
        length = max(1, min(length, room // (len(_encode(element, ascii_only)) + 2)))
        obj[field] = [element] * length
        return _encode(obj, ascii_only)
    if kind == "non_utf8":
        bad = data.draw(
            st.sampled_from(
                [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\\ud800"]
            )
        )
        field = data.draw(st.sampled_from(["customer_id", "event_id", "order_id", "note"]))
        obj[field] = f"a{MARK}b"
        return _encode(obj, ascii_only).replace(_encode(MARK, ascii_only)[1:-1], bad, 1)
    if kind == "random_bytes":
        return bytes(data.draw(st.binary(max_size=300)))
    if kind == "not_object":
        return _encode(data.draw(json_values.filter(lambda v: not isinstance(v, dict))), ascii_only)
    if kind == "epoch_seconds":
        obj["occurred_at"] = data.draw(st.integers(0, 4_102_444_800))
        return _encode(obj, ascii_only)
    if kind in ("far_future", "far_past"):
        if kind == "far_future":
            moment = data.draw(
                st.datetimes(_naive(2099, 1, 1), _naive(2099, 12, 31, 23, 59, 59))
                | st.just(_naive(9999, 12, 31, 23, 59, 59, 999000))
            )
        else:
            moment = data.draw(
                st.datetimes(_naive(1900, 1, 1), _naive(1900, 12, 31))
                | st.datetimes(_naive(1969, 12, 31, 23), _naive(1970, 1, 1, 1))
            )
        stamp = moment.replace(tzinfo=UTC)
        if stamp.year < 1970:
            obj["occurred_at"] = data.draw(
                st.sampled_from(
                    [
                        _stamp(stamp, False),
                        int((stamp - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000),
                    ]
                )
            )
        else:
            obj["occurred_at"] = _stamp(stamp, data.draw(st.booleans()))
        return _encode(obj, ascii_only)
    if kind == "amount_edge":
        text = data.draw(
            st.sampled_from(
                [
                    "0",
                    "-0",
                    "0.001",
                    "1.005",
                    "12.50",
                    "1e2",
                    "1E-2",
                    "99999999999.99",
                    "100000000000",
                    "-1",
                    "1e400",
                    "0.1e1",
                    "00.5",
                    "1.",
                    "+1",
                    '"12"',
                    "null",
                    "true",
                ]
            )
            | st.decimals(
                min_value=-(10**12),
                max_value=10**12,
                places=data.draw(st.integers(0, 4)),
                allow_nan=False,
                allow_infinity=False,
            ).map(str)
        )
        return _with_raw(obj, "amount", text.encode(), ascii_only)
    if kind == "type_edge":
        obj["type"] = data.draw(
            st.sampled_from(["purchase", "refund", "Purchase", "REFUND", "", " refund", None, 1])
        )
        obj["amount"] = data.draw(st.sampled_from([0, 5, -5, 12.34, -12.34]))
        return _encode(obj, ascii_only)
    raise ValueError(kind)


@dataclass
class Payload:
    kind: str
    size: int
    accepted: Purchase | None
    reason: str | None
    raised: str | None
    schema_valid: bool | None
    preview: str


def generate(
    count: int, seed_value: int, schema_examples: int, max_bytes: int, max_depth: int, sink: Any
) -> list[str]:
    """Draw ``count`` payloads deterministically (Hypothesis, seeded) and hand each to ``sink``.

    Returns the errors Hypothesis raised along the way (each ends a round; the next seed goes on).
    """
    base: list[dict[str, Any]] = []
    schema = load_schema("purchase")

    @seed(seed_value)
    @settings(
        max_examples=schema_examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(from_schema(schema))
    def draw_base(obj: dict[str, Any]) -> None:
        base.append(obj)

    draw_base()
    print(f"  {len(base):,} objects from hypothesis_jsonschema.from_schema", flush=True)
    kinds = [k for k, w in KINDS.items() for _ in range(w)]
    errors: list[str] = []
    made = 0
    round_ = 0
    while made < count:

        @seed(seed_value + 1 + round_)
        @settings(
            max_examples=max(1, (count - made) // PER_EXAMPLE),
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(st.data())
        def draw_payloads(data: Any) -> None:
            nonlocal made
            for _ in range(PER_EXAMPLE):  # several payloads per example: the engine's overhead is per example
                # always draw the same way (Hypothesis replays choice sequences); only the sink stops
                kind = data.draw(st.sampled_from(kinds))
                obj = base[data.draw(st.integers(0, len(base) - 1))]
                raw = build(kind, obj, f"fz{seed_value}-{made}", data, max_bytes, max_depth)
                if made < count:
                    sink(kind, raw)
                    made += 1

        try:
            draw_payloads()
        except Exception as exc:  # e.g. a Hypothesis health or flakiness error: go on with the next seed
            errors.append(f"round {round_}: {type(exc).__name__}: {str(exc)[:200]}")
            if len(errors) > 20:
                raise
        round_ += 1
    return errors


# ---- the run ------------------------------------------------------------------------------------


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


def check(
    args: argparse.Namespace,
    payloads: list[Payload],
    metadata: dict[int, tuple[int, int]],
    stats: Any,
    letters: list[Any],
    states: list[Any],
    sup: Supervisor,
    generated_s: float,
    done_at: float | None,
    started: float,
    root: Path,
    unsendable: Counter[str],
    generation_errors: list[str],
) -> dict[str, Any]:
    at_source = {pos: i for i, pos in metadata.items()}
    accepted = [i for i in metadata if payloads[i].accepted is not None]
    rejected = [i for i in metadata if payloads[i].reason is not None]
    raised = [i for i in metadata if payloads[i].raised is not None]
    # dead letters
    lettered: dict[int, list[str]] = {}
    unmatched = 0
    for letter in letters:
        body = json.loads(letter.value)
        index = at_source.get((body["source"]["partition"], body["source"]["offset"]))
        if index is None:
            unmatched += 1
            continue
        lettered.setdefault(index, []).append(str(body.get("reason", "")))
    missing_letters = [i for i in rejected if i not in lettered]
    bad_reasons = [i for i in rejected if i in lettered and not all(_REASON.match(r) for r in lettered[i])]
    reason_differs = [i for i in rejected if i in lettered and lettered[i][0] != payloads[i].reason]
    accepted_lettered = [i for i in accepted if i in lettered]
    distinct_accepted = {(p.customer_id, p.event_id) for p in (payloads[i].accepted for i in accepted) if p}
    # schema-invalid => rejected
    schema_escapes = [i for i in accepted if payloads[i].schema_valid is False]
    # state vs oracle
    oracle = compare_states([payloads[i].accepted for i in accepted], states)  # type: ignore[misc]
    slot = sup.slots[0]
    by_kind: dict[str, Counter[str]] = {}
    for i in metadata:
        p = payloads[i]
        outcome = "accepted" if p.accepted else ("rejected" if p.reason is not None else "validator_raised")
        by_kind.setdefault(p.kind, Counter())[outcome] += 1
        by_kind[p.kind][
            "schema_valid"
            if p.schema_valid
            else ("schema_undecidable" if p.schema_valid is None else "schema_invalid")
        ] += 1
    reasons = Counter((payloads[i].reason or "").split(":", 1)[0] for i in rejected)
    checks = {
        "contract_validator_never_raises": not raised,
        "worker_never_exited": not slot.exits and slot.started == 1,
        "every_rejected_payload_dead_lettered": not missing_letters,
        "dead_letter_reasons_name_a_field": not bad_reasons,
        "no_accepted_payload_dead_lettered": not accepted_lettered,
        # a mutation can give two payloads one event_id (e.g. "0"): the second is a resend, applied once
        "applied_count_equals_accepted": stats is not None
        and stats.applied == len(distinct_accepted)
        and stats.duplicates == len(accepted) - len(distinct_accepted),
        "invalid_count_equals_rejected": stats is not None and stats.invalid == len(rejected),
        "state_equals_oracle_of_accepted": oracle["equal"],
        "schema_invalid_implies_rejected": not schema_escapes,
        "worker_saw_everything": done_at is not None,
    }

    def show(indexes: list[int]) -> list[dict[str, Any]]:
        return [
            {
                "kind": payloads[i].kind,
                "reason": payloads[i].reason,
                "letters": lettered.get(i),
                "payload": payloads[i].preview,
            }
            for i in indexes[:5]
        ]

    return {
        "root": str(root),
        "payloads": len(payloads),
        "published": len(metadata),
        "accepted": len(accepted),
        "accepted_distinct_event_ids": len(distinct_accepted),
        "rejected": len(rejected),
        "validator_raised": len(raised),
        "validator_raised_errors": dict(
            Counter((payloads[i].raised or "")[:80] for i in raised).most_common(10)
        ),
        "unsendable": dict(unsendable),
        "generation_errors": generation_errors,
        "bytes_published": sum(payloads[i].size for i in metadata),
        "largest_payload_bytes": max((payloads[i].size for i in metadata), default=0),
        "generate_and_publish_s": round(generated_s, 1),
        "worker_done_s": round(done_at - started, 1) if done_at else None,
        "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "rejected_by_reason_prefix": dict(reasons.most_common()),
        "schema": {
            "invalid": sum(1 for i in metadata if payloads[i].schema_valid is False),
            "valid": sum(1 for i in metadata if payloads[i].schema_valid),
            "undecidable_too_deep_for_python_json": sum(
                1 for i in metadata if payloads[i].schema_valid is None
            ),
            "invalid_but_accepted_by_contract": len(schema_escapes),
            "valid_but_rejected_by_contract": sum(1 for i in rejected if payloads[i].schema_valid),
        },
        "dead_letters": {
            "messages": len(letters),
            "unmatched_source": unmatched,
            "missing_for_rejected": len(missing_letters),
            "repeated_for_one_source": sum(1 for v in lettered.values() if len(v) > 1),
            "reason_not_naming_a_field": len(bad_reasons),
            "reason_differs_from_in_process_contract": len(reason_differs),
            "for_accepted_payloads": len(accepted_lettered),
        },
        "store": asdict(stats) if stats is not None else None,
        "oracle": oracle,
        "worker": sup.report()[0],
        "examples": {
            "missing_letters": show(missing_letters),
            "bad_reasons": show(bad_reasons),
            "schema_invalid_but_accepted": show(schema_escapes),
            "accepted_but_dead_lettered": show(accepted_lettered),
            "validator_raised": show(raised),
        },
        "checks": checks,
    }


def compare_states(accepted: list[Purchase], states: list[Any]) -> dict[str, Any]:
    """Redis states vs ``segstream.batch.rfm_table`` over the accepted events (plain fold beyond 2262)."""
    fold: dict[str, dict[str, Any]] = {}
    for p in accepted:
        f = fold.setdefault(
            p.customer_id,
            {"frequency": 0, "monetary_cents": 0, "refunds": 0, "days": set(), "first": None, "last": None},
        )
        f["monetary_cents"] += p.amount_cents
        if p.type == "purchase":
            f["frequency"] += 1
            f["days"].add(p.occurred_at_ms // DAY_MS)
            f["first"] = p.occurred_at_ms if f["first"] is None else min(f["first"], p.occurred_at_ms)
            f["last"] = p.occurred_at_ms if f["last"] is None else max(f["last"], p.occurred_at_ms)
        else:
            f["refunds"] += 1
    beyond = {p.customer_id for p in accepted if p.occurred_at_ms > PANDAS_MAX_MS}
    in_pandas = [p for p in accepted if p.customer_id not in beyond]
    expected: dict[str, tuple[Any, ...]] = {}
    if in_pandas:
        history = pd.DataFrame(
            {
                "event_id": [p.event_id for p in in_pandas],
                "customer_id": [p.customer_id for p in in_pandas],
                "occurred_at": pd.to_datetime([p.occurred_at_ms for p in in_pandas], unit="ms", utc=True),
                "amount": [p.amount_cents / 100 for p in in_pandas],
                "type": [p.type for p in in_pandas],
            }
        )
        table = rfm_table(history)

        def millis(column: str) -> list[int | None]:
            stamps = table[column].astype("datetime64[ms, UTC]")
            values = stamps.astype("int64").tolist()
            return [None if gone else int(v) for v, gone in zip(values, stamps.isna().tolist(), strict=True)]

        columns = (
            table["customer_id"].astype(str).tolist(),
            table["frequency"].astype("int64").tolist(),
            table["purchase_days"].astype("int64").tolist(),
            table["monetary_cents"].astype("int64").tolist(),
            table["refunds"].astype("int64").tolist(),
            millis("first_purchase_at"),
            millis("last_purchase_at"),
        )
        for customer, *row in zip(*columns, strict=True):
            expected[customer] = tuple(row)
    for customer in beyond:
        f = fold[customer]
        expected[customer] = (
            f["frequency"],
            len(f["days"]),
            f["monetary_cents"],
            f["refunds"],
            f["first"],
            f["last"],
        )
    live = {
        s.customer_id: (
            s.frequency,
            s.purchase_days,
            s.monetary_cents,
            s.refunds,
            s.first_purchase_ms,
            s.last_purchase_ms,
        )
        for s in states
    }
    differ = [c for c in expected.keys() & live.keys() if expected[c] != live[c]]
    return {
        "customers_expected": len(expected),
        "customers_live": len(live),
        "checked_by_plain_fold_beyond_2262": len(beyond),
        "missing": len(expected.keys() - live.keys()),
        "extra": len(live.keys() - expected.keys()),
        "differ": len(differ),
        "examples": [{"customer_id": c, "expected": expected[c], "live": live[c]} for c in differ[:5]],
        "equal": expected.keys() == live.keys() and not differ,
    }


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

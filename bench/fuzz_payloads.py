"""Payload generation for ``bench/fuzz.py`` (``make fuzz``): the bytes the fuzz run publishes.

Hypothesis draws, seeded: a pool of objects from the purchase JSON Schema
(``hypothesis_jsonschema.from_schema``), and from them payloads of every kind in ``KINDS``
(``build``: the valid shapes and their mutations). Kept apart from the run and its checks because
it knows nothing of Kafka, the worker or the contract: it only makes bytes, the same ones for a
seed, and hands each to a sink.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisDeprecationWarning
from hypothesis_jsonschema import from_schema

from state.customer.rfm import DAY_MS
from tests.schema_helpers import load_schema

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

"""How the evaluator's rows are stored in the ``view`` hash: a MessagePack array, not a JSON object.

A row (``state.segments.population.Population.record``) has the same fields for every customer, so
their names need not be stored 1M times. :func:`encode_row` writes the values in :data:`FIELDS`
order (the customer id is the hash field, so it is left out) and the profile's six values after
them; about 90 bytes where the JSON object took about 330. A record of any other shape (tests, an
older evaluator) is stored as JSON, and :func:`decode_row` reads both, so rows written by earlier
versions still load.

>>> row = {"row": 7, "customer_id": "c1", "frequency": 2, "monetary_cents": 900, "refunds": 0,
...        "first_ms": 5, "last_ms": 9, "purchase_days": 2, "since_ms": 10, "band": 1,
...        "alerted_band": 0, "overdue": 0, "responder": 0,
...        "profile": [5, 2, 3, "Promising", 1, "Recent buyers"]}
>>> packed = encode_row(row)
>>> len(packed) < len(json.dumps(row)) // 3, decode_row("c1", packed) == row
(True, True)
>>> decode_row("c1", encode_row({"row": 0, "customer_id": "c1", "profile": None}))
{'row': 0, 'customer_id': 'c1', 'profile': None}

A partition evaluator's row (``state.evaluator.partition_evaluator``) also says the instant it was
created (``seen_ms``); it is packed after the integers, so the array's length tells the two apart:

>>> seen = {**row, "seen_ms": 3}
>>> decode_row("c1", encode_row(seen)) == seen, len(encode_row(seen)) - len(packed)
(True, 1)
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

__all__ = ["FIELDS", "decode_row", "encode_row"]

FIELDS = (
    "row",
    "frequency",
    "monetary_cents",
    "refunds",
    "first_ms",
    "last_ms",
    "purchase_days",
    "since_ms",
    "band",
    "alerted_band",
    "overdue",
    "responder",
)
"""The integer fields of a row, in the order they are packed; ``profile`` follows, flattened."""

_SHAPE = frozenset((*FIELDS, "customer_id", "profile"))
_SEEN_SHAPE = _SHAPE | {"seen_ms"}  # a partition evaluator's row
_PROFILE_SIZE = 6  # r, f, m, segment name, cluster, cluster name (state.customer.profiles.Profile)
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(list[Any]).decode


def encode_row(record: dict[str, Any]) -> bytes:
    """The stored form of ``record``: packed when it has a row's shape, JSON otherwise."""
    profile = record.get("profile")
    keys = record.keys()
    if keys not in (_SHAPE, _SEEN_SHAPE) or not (profile is None or len(profile) == _PROFILE_SIZE):
        return json.dumps(record).encode()
    seen = [record["seen_ms"]] if keys == _SEEN_SHAPE else []
    return _pack([*(record[name] for name in FIELDS), *seen, *(profile or ())])


def decode_row(customer_id: str, raw: bytes) -> dict[str, Any]:
    """The record :func:`encode_row` stored under ``customer_id`` (or a JSON one, whoever wrote it)."""
    if raw[:1] == b"{":
        return dict(json.loads(raw))
    values = _unpack(raw)
    record: dict[str, Any] = dict(zip(FIELDS, values, strict=False))
    record["customer_id"] = customer_id
    rest = values[len(FIELDS) :]
    if len(rest) in (1, 1 + _PROFILE_SIZE):  # a partition evaluator's row: seen_ms first
        record["seen_ms"], rest = rest[0], rest[1:]
    record["profile"] = list(rest) if rest else None
    return record

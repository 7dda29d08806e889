"""A customer's own tally counters, packed into one MessagePack string per customer.

A customer's counters (:class:`state.customer.store.Tally` with ``per_customer``: cohort months,
best-time hours, channels, categories) grow with their activity, so their encoding decides much of
what a customer costs in Redis. As fields of a hash (``<table>/<field>``, what earlier versions
wrote to ``seg:{<customer_id>}:t``) each counter cost ~25 bytes and the hash becomes Redis's
large encoding past 128 fields. Packed, the key ``seg:{<customer_id>}:tp`` holds one MessagePack
map ``table code -> {field -> count}``: ~9 bytes a counter, no encoding cliff.

``rfm_fold.lua`` decodes, adds and re-encodes a customer's map (Redis's ``cmsgpack``) once per
script call, in the same atomic step as the fold, so a counter still counts an event exactly once.
Counts are Lua numbers there: exact up to 2**53 (a month's net cents of one customer far below
that under the input limits).

Table codes are append-only: a code once given is never reused for another table. A table
without a code is stored under ``/`` + its name. Hash fields of earlier versions are still read
(:func:`merged`), never written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

__all__ = ["TABLE_CODES", "merged", "table_key"]

TABLE_CODES: Final[Mapping[str, str]] = {
    "cohort:orders": "o",
    "cohort:cents": "c",
    "cohort:channel": "h",
    "cohort:category": "g",
    "besttime:how": "b",
    "cust:category": "k",
    "cust:channel": "n",
}

_decode = msgspec.msgpack.Decoder(dict[str, dict[str, int]]).decode


def table_key(table: str) -> str:
    """The key a table's counters have in a customer's packed map.

    >>> table_key("cohort:orders"), table_key("new:table")
    ('o', '/new:table')
    """
    return TABLE_CODES.get(table) or f"/{table}"


def merged(table: str, packed: bytes | None, fields: Mapping[str, str]) -> dict[str, int]:
    """``table``'s counters of one customer: the packed map's plus the hash fields of earlier versions.

    >>> packed = msgspec.msgpack.encode({"o": {"1997-01": 2}, "c": {"1997-01": 1250}})
    >>> merged("cohort:orders", packed, {"cohort:orders/1997-01": "1", "cohort:orders/1996-12": "1"})
    {'1997-01': 3, '1996-12': 1}
    >>> merged("cohort:orders", None, {})
    {}
    """
    counts = dict(_decode(packed).get(table_key(table), {})) if packed else {}
    prefix = f"{table}/"
    for name, value in fields.items():
        if name.startswith(prefix):
            field = name[len(prefix) :]
            counts[field] = counts.get(field, 0) + int(value)
    return counts

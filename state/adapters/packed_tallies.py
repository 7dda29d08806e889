"""A customer's own tally counters, packed into one MessagePack map kept in their state hash.

A customer's counters (:class:`state.customer.store.Tally` with ``per_customer``: cohort months,
best-time hours, channels, categories) grow with their activity, so their encoding decides much of
what a customer costs in Redis. The map ``table code -> {field -> count}`` sits in the fields
``t0``, ``t1``, ... of the customer's state hash, 60 bytes a field (``rfm_fold.lua``); the fold
decodes, adds and re-encodes it (Redis's ``cmsgpack``) once per script call, in the same atomic
step as the fold, so a counter still counts an event exactly once. Counts are Lua numbers there:
exact up to 2**53 (a month's net cents of one customer far below that under the input limits).

How the encoding came to be (the bytes a customer costs: README, *Benchmarks*, ``make bench-scale``):

- earlier versions kept each counter as a hash field ``<table>/<field>`` of ``seg:{id}:t`` (~25
  bytes a counter, and the hash turns into Redis's large encoding past 128 fields);
- then one MessagePack string per customer, the key ``seg:{id}:tp`` (~9 bytes a counter, plus
  what Redis spends on every key);
- now integer keys where a table's fields are months or hours of the week (:func:`packed_field`:
  the month ``1997-01`` is 3 bytes as the number 23,964 instead of 8 as text, an hour 1 byte
  instead of up to 4), in fields of the state hash the customer has anyway.

Table codes are append-only: a code once given is never reused for another table. A table
without a code is stored under ``/`` + its name. The string key and the hash fields of earlier
versions are still read (:func:`merged`); the fold moves an earlier string into the hash the next
time it counts for the customer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from state.analytics.cohorts import month_index, month_name

__all__ = ["TABLE_CODES", "field_name", "merged", "packed_field", "table_key"]

TABLE_CODES: Final[Mapping[str, str]] = {
    "cohort:orders": "o",
    "cohort:cents": "c",
    "cohort:channel": "h",
    "cohort:category": "g",
    "besttime:how": "b",
    "cust:category": "k",
    "cust:channel": "n",
}


_INTEGER_FIELDS: Final[Mapping[str, tuple[Callable[[str], int], Callable[[int], str]]]] = {
    "o": (month_index, month_name),  # the cohort tables' months (state.analytics.cohorts.month_of)
    "c": (month_index, month_name),
    "b": (int, str),
}
"""Table code -> (field text -> integer, integer -> field text), for the tables whose fields are
months (``YYYY-MM``) or hours of the week (``0`` ... ``167``)."""


def table_key(table: str) -> str:
    """The key a table's counters have in a customer's packed map.

    >>> table_key("cohort:orders"), table_key("new:table")
    ('o', '/new:table')
    """
    return TABLE_CODES.get(table) or f"/{table}"


def packed_field(table: str, field: str) -> str | int:
    """How ``field`` of ``table`` is stored in the packed map: an integer where the table's fields are
    months or hours and ``field`` reads back exactly (:func:`field_name`), else the text itself.

    >>> packed_field("cohort:orders", "1997-01"), packed_field("besttime:how", "81")
    (23964, 81)
    >>> packed_field("cust:channel", "web"), packed_field("besttime:how", "081"), packed_field("cohort:cents", "x")
    ('web', '081', 'x')
    """
    codec = _INTEGER_FIELDS.get(table_key(table))
    if codec is None:
        return field
    to_int, to_text = codec
    try:
        number = to_int(field)
    except ValueError:
        return field
    return number if to_text(number) == field else field


def field_name(code: str, key: str | int) -> str:
    """The field text of a packed map's key under table ``code`` (the inverse of :func:`packed_field`).

    >>> field_name("o", 23964), field_name("b", 81), field_name("n", "web")
    ('1997-01', '81', 'web')
    """
    if isinstance(key, str):
        return key
    return _INTEGER_FIELDS[code][1](key)


def _fields(counts: Any) -> dict[str | int, int]:
    """One table of a decoded map. Redis's ``cmsgpack`` writes a Lua table whose keys are exactly
    1..n as an array, so a table of hours ``{1: 2}`` comes back as ``[2]``."""
    if isinstance(counts, list):
        return {i: int(v) for i, v in enumerate(counts, start=1)}
    return {k: int(v) for k, v in counts.items()}


def merged(
    table: str, packed: Mapping[str, Any] | list[Any] | None, fields: Mapping[str, str]
) -> dict[str, int]:
    """``table``'s counters of one customer: the decoded packed map's plus the hash fields of earlier
    versions (``packed``: the map, None or an empty list when the customer has none).

    >>> merged("cohort:orders", {"o": {23964: 2, "1997-02": 1}}, {"cohort:orders/1997-01": "1"})
    {'1997-01': 3, '1997-02': 1}
    >>> merged("besttime:how", {"b": [4]}, {}), merged("cohort:orders", None, {})
    ({'1': 4}, {})
    """
    code = table_key(table)
    counts: dict[str, int] = {}
    if isinstance(packed, Mapping) and code in packed:
        for key, count in _fields(packed[code]).items():
            name = field_name(code, key)
            counts[name] = counts.get(name, 0) + count
    prefix = f"{table}/"
    for name, value in fields.items():
        if name.startswith(prefix):
            field = name[len(prefix) :]
            counts[field] = counts.get(field, 0) + int(value)
    return counts

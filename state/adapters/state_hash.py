"""A customer's state hash as Redis holds it, read back into :class:`state.customer.rfm.CustomerState`.

The fields ``rfm_fold.lua`` and ``log_compact.lua`` write, named in ``state_fields.lua`` (the
layout is in :mod:`state.adapters.redis_store`'s header), parsed in one place: the live state and
the compacted log base, written out in full or bare (its bound alone while the log is empty).

The names are one letter (:data:`NAMES`). Hashes of versions before 2026-11-30 have the long names
and a ``customer_id`` field; the scripts rename a hash the first time they write to it, and every
reader here accepts both forms, so data written by an earlier version reads the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, Final

from state.customer.event_log import LogBase
from state.customer.rfm import CustomerState

__all__ = ["BASE_FIELDS", "FIELDS_LUA", "NAMES", "READ_FIELDS", "log_base", "parse_state", "state_values"]

NAMES: Final[Mapping[str, str]] = {
    "log_base": "l",
    "frequency": "f",
    "monetary_cents": "m",
    "refunds": "r",
    "first_purchase_ms": "a",
    "last_purchase_ms": "z",
    "purchase_days": "n",
}
"""A state field's long name (earlier versions, and :class:`CustomerState`) -> its name in the hash."""

FIELDS_LUA: Final = resources.files("state.adapters").joinpath("state_fields.lua").read_text()
"""The script twin (``state_fields.lua``: the names, the renaming of earlier hashes, the packed
counters' read), prepended to every script that reads or writes a state hash."""

BASE_FIELDS: Final = tuple(NAMES)
"""The fields of a log base, in ``LogBase``'s order: the base itself, then the live state."""

READ_FIELDS: Final = (*(NAMES[f] for f in BASE_FIELDS), *BASE_FIELDS)
"""What a reader asks a hash for (``HMGET``): the names of today, then those of earlier versions."""


def state_values(values: Sequence[str | None]) -> list[str | None]:
    """The :data:`BASE_FIELDS` values out of an ``HMGET`` of :data:`READ_FIELDS`, whichever naming the
    hash has (a script renames a whole hash at once, so it never has both).

    >>> state_values(["5", None, "900", None, None, None, None, *[None] * 7])
    ['5', None, '900', None, None, None, None]
    >>> state_values([None] * 7 + ["5", None, "900", None, None, None, None])
    ['5', None, '900', None, None, None, None]
    """
    n = len(BASE_FIELDS)
    short, long = values[:n], values[n : 2 * n]
    return list(short) if any(v is not None for v in short) else list(long)


def log_base(customer_id: str, values: Sequence[str | None]) -> LogBase | None:
    """The customer's log base from ``HMGET`` of :data:`READ_FIELDS`: written out in full, or bare
    (the bound alone: the log is empty and the base is the live state, ``log_compact.lua``)."""
    base, *live = state_values(values)
    if base is None:
        return None
    if "," in base:
        return LogBase.decode(customer_id, base)
    present = {name: value for name, value in zip(BASE_FIELDS[1:], live, strict=True) if value is not None}
    return LogBase(int(base), parse_state(customer_id, present))


def parse_state(customer_id: str, raw: Mapping[Any, Any]) -> CustomerState:
    """The state in ``raw`` (field -> value, by either naming: :data:`NAMES`' keys or values).

    >>> parse_state("c1", {"f": "2", "m": "900", "a": "1000", "z": "5000", "n": "2", "d0": "00G"})
    CustomerState(customer_id='c1', frequency=2, monetary_cents=900, refunds=0, first_purchase_ms=1000, last_purchase_ms=5000, purchase_days=2)
    >>> parse_state("c1", {"customer_id": "c1", "frequency": "1", "monetary_cents": "-5", "refunds": "1"}).refunds
    1
    """

    def value(name: str) -> Any:
        short = NAMES[name]
        return raw[short] if short in raw else raw.get(name)

    def optional_int(name: str) -> int | None:
        found = value(name)
        return int(found) if found is not None else None

    return CustomerState(
        customer_id=customer_id,
        frequency=int(value("frequency") or 0),
        monetary_cents=int(value("monetary_cents") or 0),
        refunds=int(value("refunds") or 0),
        first_purchase_ms=optional_int("first_purchase_ms"),
        last_purchase_ms=optional_int("last_purchase_ms"),
        purchase_days=int(value("purchase_days") or 0),
    )

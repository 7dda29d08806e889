"""A customer's state hash as Redis holds it, read back into :class:`state.customer.rfm.CustomerState`.

The fields ``rfm_fold.lua`` and ``log_compact.lua`` write (layout in
:mod:`state.adapters.redis_store`'s header), parsed in one place: the live state and the
compacted log base, written out in full or bare (its bound alone while the log is empty).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from state.customer.event_log import LogBase
from state.customer.rfm import CustomerState

__all__ = ["BASE_FIELDS", "log_base", "parse_state"]

BASE_FIELDS = (
    "log_base",
    "frequency",
    "monetary_cents",
    "refunds",
    "first_purchase_ms",
    "last_purchase_ms",
    "purchase_days",
)


def log_base(customer_id: str, fields: Sequence[str | None]) -> LogBase | None:
    """The customer's log base from ``HMGET`` of :data:`BASE_FIELDS`: written out in full, or bare
    (the bound alone: the log is empty and the base is the live state, ``log_compact.lua``)."""
    base, *live = fields
    if base is None:
        return None
    if "," in base:
        return LogBase.decode(customer_id, base)
    present = {name: value for name, value in zip(BASE_FIELDS[1:], live, strict=True) if value is not None}
    return LogBase(int(base), parse_state({"customer_id": customer_id, **present}))


def parse_state(raw: Mapping[Any, Any]) -> CustomerState:
    def optional_int(name: str) -> int | None:
        return int(raw[name]) if name in raw else None

    return CustomerState(
        customer_id=raw["customer_id"],
        frequency=int(raw.get("frequency", 0)),
        monetary_cents=int(raw.get("monetary_cents", 0)),
        refunds=int(raw.get("refunds", 0)),
        first_purchase_ms=optional_int("first_purchase_ms"),
        last_purchase_ms=optional_int("last_purchase_ms"),
        purchase_days=int(raw.get("purchase_days", 0)),
    )

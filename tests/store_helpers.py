"""Deliveries for the customer store's tests: one purchase or refund at a topic offset."""

from __future__ import annotations

import re

from redis.asyncio import Redis

from state.customer.store import Delivery
from streams.contract import Purchase

DAY = 86_400_000


def delivery(
    event_id: str,
    customer: str,
    at_ms: int,
    cents: int,
    offset: int,
    *,
    refund: bool = False,
    partition: int = 0,
) -> Delivery:
    kind = "refund" if refund else "purchase"
    event = Purchase(event_id, customer, occurred_at_ms=at_ms, amount_cents=cents, type=kind)
    return Delivery(event, "purchases", partition, offset)


def decode_days(raw: bytes) -> list[int]:
    """The UTC days of a state hash's ``p0``, ``p1``, ... joined (``state/adapters/rfm_fold.lua``):
    LEB128 numbers, the first day then the gaps. Read here on its own, as the format's oracle."""
    days: list[int] = []
    number, shift = 0, 0
    for byte in raw:
        number |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            days.append(number + (days[-1] if days else 0))
            number, shift = 0, 0
    assert shift == 0, "the stream ends inside a number"
    return days


async def purchase_days(redis: Redis, key: str) -> tuple[list[int], list[bytes]]:
    """A state hash's purchase days, decoded, and its ``p`` fields in order (raw bytes)."""
    values = await redis.execute_command("HGETALL", key, NEVER_DECODE=[])
    count = sum(1 for name in values if re.fullmatch(rb"p[0-9]+", name))
    fields = [values[f"p{k}".encode()] for k in range(count)]  # a KeyError: the p fields have a gap
    return decode_days(b"".join(fields)), fields

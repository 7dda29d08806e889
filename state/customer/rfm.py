"""The pure RFM fold: one event, one step, order-insensitive.

``frequency`` counts purchases (refunds do not count), ``monetary_cents`` sums
every amount (refunds are negative), first/last purchase are the min/max event
time of purchases, so arrival order never matters. ``purchase_days`` counts the
distinct UTC calendar days with a purchase (BG/NBD merges same-day purchases); the
store, which remembers the days it has seen, tells the fold whether a day is new.

>>> from streams.contract import Purchase
>>> s = apply(None, Purchase("e2", "c1", occurred_at_ms=2 * DAY_MS, amount_cents=500), new_purchase_day=True)
>>> s = apply(s, Purchase("e1", "c1", occurred_at_ms=0, amount_cents=1000), new_purchase_day=True)
>>> s = apply(s, Purchase("e4", "c1", occurred_at_ms=60_000, amount_cents=100), new_purchase_day=False)
>>> s = apply(s, Purchase("e3", "c1", occurred_at_ms=3 * DAY_MS, amount_cents=-200, type="refund"),
...           new_purchase_day=False)
>>> (s.frequency, s.purchase_days, s.monetary_cents, s.refunds, s.first_purchase_ms, s.last_purchase_ms)
(3, 2, 1400, 1, 0, 172800000)
>>> recency_days(s, as_of_ms=10 * DAY_MS)
8
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from streams.contract import Purchase

__all__ = ["DAY_MS", "CustomerState", "apply", "purchase_day", "recency_days"]

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class CustomerState:
    """What segstream knows about one customer after folding their events."""

    customer_id: str
    frequency: int = 0
    monetary_cents: int = 0
    refunds: int = 0
    first_purchase_ms: int | None = None
    last_purchase_ms: int | None = None
    purchase_days: int = 0


def purchase_day(occurred_at_ms: int) -> int:
    """The UTC calendar day (days since 1970-01-01) of an event time."""
    return occurred_at_ms // DAY_MS


def apply(state: CustomerState | None, event: Purchase, *, new_purchase_day: bool) -> CustomerState:
    """Fold one validated event into a customer's state (``None`` = unseen customer).

    ``new_purchase_day``: this purchase is the customer's first on its UTC day
    (ignored for refunds).
    """
    current = state or CustomerState(customer_id=event.customer_id)
    money = current.monetary_cents + event.amount_cents
    if event.type == "refund":
        return replace(current, monetary_cents=money, refunds=current.refunds + 1)
    at = event.occurred_at_ms
    first, last = current.first_purchase_ms, current.last_purchase_ms
    return replace(
        current,
        frequency=current.frequency + 1,
        purchase_days=current.purchase_days + int(new_purchase_day),
        monetary_cents=money,
        first_purchase_ms=at if first is None else min(first, at),
        last_purchase_ms=at if last is None else max(last, at),
    )


def recency_days(state: CustomerState, as_of_ms: int) -> int | None:
    """Whole days from the last purchase to ``as_of_ms``; ``None`` if never purchased."""
    if state.last_purchase_ms is None:
        return None
    return (as_of_ms - state.last_purchase_ms) // DAY_MS

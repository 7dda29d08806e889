"""Acquisition cohorts: what each purchase adds to its customer's monthly counters, and the table.

A customer's **cohort** is the UTC calendar month of their first purchase; **period** p of a
cohort is the p-th month after it (0: the cohort month itself). Per cohort and period:

- ``customers``: the cohort's size (customers whose first purchase fell in that month);
- ``active``: how many of them made at least one purchase in that month (refunds do not count);
- ``retention``: ``active / customers`` (1.0 in period 0);
- ``revenue``: their net money in that month, refunds subtracted where the refund occurred.

The worker keeps per customer only monthly counters (:func:`cohort_tallies`, folded exactly once
with the event), never the table: a late first purchase moves a customer to an earlier cohort,
so the table is computed when asked (:func:`cohort_rows`) from every customer's counters, and
is exact whatever order the events arrived in. Memory: a few counters per customer per month of
history. Customers with refunds only have no cohort; a refund dated before a customer's first
purchase lies outside the table (a negative period). Every cohort runs to the last month any
counted customer has an event in, with zero rows where nobody came back.

Splits: by the *acquisition channel* (the ``channel`` of most of the customer's purchases in their
cohort month) and by the *first-purchase category* (the category leading most of those purchases;
a purchase's leading category is the one with the most spend among its items, see
:func:`leading_category`); ties go to the alphabetically first name, and customers whose cohort
month carries none are in group ``(none)``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

from state.customer.store import Tally
from streams.contract import Item, Purchase

__all__ = [
    "CATEGORY_TABLE",
    "CENTS_TABLE",
    "CHANNEL_TABLE",
    "NO_GROUP",
    "ORDERS_TABLE",
    "SPLIT_TABLES",
    "CohortRow",
    "Split",
    "acquisition_groups",
    "cohort_rows",
    "cohort_tallies",
    "leading_category",
    "month_index",
    "month_name",
    "month_of",
]

ORDERS_TABLE = "cohort:orders"
"""Per customer: ``YYYY-MM`` -> purchases in that UTC month."""
CENTS_TABLE = "cohort:cents"
"""Per customer: ``YYYY-MM`` -> net cents of the month's purchases and refunds."""
CHANNEL_TABLE = "cohort:channel"
"""Per customer: ``YYYY-MM <channel>`` -> purchases through that channel in that month."""
CATEGORY_TABLE = "cohort:category"
"""Per customer: ``YYYY-MM <category>`` -> purchases that category led in that month."""

Split = Literal["channel", "category"]
SPLIT_TABLES: dict[Split, str] = {"channel": CHANNEL_TABLE, "category": CATEGORY_TABLE}
NO_GROUP = "(none)"
_MONTH_CHARS = 7  # "YYYY-MM"


def month_of(occurred_at_ms: int) -> str:
    """The UTC calendar month of an event time, ``YYYY-MM``.

    >>> month_of(0), month_of(852_076_800_000 - 1)
    ('1970-01', '1996-12')
    """
    return _month_of_day(occurred_at_ms // _DAY_MS)


_DAY_MS = 86_400_000


@lru_cache(maxsize=8192)
def _month_of_day(day: int) -> str:
    """``YYYY-MM`` of a UTC day number (days since 1970-01-01): the tallier asks it for every event,
    and a history has few distinct days, so each is formatted once."""
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m")


@lru_cache(maxsize=8192)
def _counter(table: str, field: str) -> Tally:
    """The +1 per-customer tally of ``table``/``field``; values, so each distinct one is built once."""
    return Tally(table, field, 1, per_customer=True)


def month_index(month: str) -> int:
    """Months since year 0 of a ``YYYY-MM`` month (``month_name`` reads it back)."""
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def leading_category(items: Iterable[Item] | None) -> str | None:
    """The category with the most spend (quantity x unit price) among a basket's items.

    Items without a category are left out; ties go to the alphabetically first category.

    >>> leading_category([Item("a", 1, 2.0, "tea"), Item("b", 2, 1.5, "cake"), Item("c", 1, 1.0, "tea")])
    'cake'
    >>> leading_category([Item("a", 1, 2.0)]) is None
    True
    """
    spend: dict[str, float] = defaultdict(float)
    for item in items or ():
        if item.category is not None:
            spend[item.category] += item.quantity * item.unit_price
    if not spend:
        return None
    return min(spend, key=lambda c: (-spend[c], c))


def cohort_tallies(event: Purchase, splits: Sequence[Split] = ("channel", "category")) -> tuple[Tally, ...]:
    """The per-customer counters one event adds (only if the fold applies it).

    >>> [(t.table, t.field, t.delta) for t in cohort_tallies(Purchase("e", "c", 0, 250, channel="web"))]
    [('cohort:orders', '1970-01', 1), ('cohort:cents', '1970-01', 250), ('cohort:channel', '1970-01 web', 1)]
    >>> [(t.table, t.field, t.delta) for t in cohort_tallies(Purchase("e", "c", 0, -90, type="refund"))]
    [('cohort:cents', '1970-01', -90)]
    """
    month = month_of(event.occurred_at_ms)
    tallies: list[Tally] = []
    if event.type == "purchase":
        tallies.append(_counter(ORDERS_TABLE, month))
    if event.amount_cents:
        tallies.append(Tally(CENTS_TABLE, month, event.amount_cents, per_customer=True))
    if event.type != "purchase":
        return tuple(tallies)
    if "channel" in splits and event.channel is not None:
        tallies.append(_counter(CHANNEL_TABLE, f"{month} {event.channel}"))
    category = leading_category(event.items) if "category" in splits else None
    if category is not None:
        tallies.append(_counter(CATEGORY_TABLE, f"{month} {category}"))
    return tuple(tallies)


def _first_month(orders: Mapping[str, int]) -> str | None:
    months = [m for m, n in orders.items() if n > 0]
    return min(months) if months else None


def acquisition_groups(
    orders: Mapping[str, Mapping[str, int]], split_counters: Mapping[str, Mapping[str, int]]
) -> dict[str, str]:
    """Each buyer's group: the value with the most purchases in their cohort month (``(none)``: none).

    ``split_counters`` is a split table per customer (``YYYY-MM <value>`` -> purchases).

    >>> acquisition_groups({"c": {"1997-02": 2, "1997-01": 1}},
    ...                    {"c": {"1997-01 store": 1, "1997-02 web": 2}})
    {'c': 'store'}
    """
    groups: dict[str, str] = {}
    for customer, months in orders.items():
        first = _first_month(months)
        if first is None:
            continue
        counts = Counter(
            {
                f[_MONTH_CHARS + 1 :]: n
                for f, n in split_counters.get(customer, {}).items()
                if f[:_MONTH_CHARS] == first
            }
        )
        used = [value for value, n in counts.items() if n > 0]
        groups[customer] = min(used, key=lambda v: (-counts[v], v)) if used else NO_GROUP
    return groups


@dataclass(frozen=True, slots=True)
class CohortRow:
    """One cell row of the cohort table (``group`` is None when the table is not split)."""

    group: str | None
    cohort: str
    period: int
    customers: int
    active: int
    revenue_cents: int

    @property
    def retention(self) -> float:
        return self.active / self.customers


def cohort_rows(
    orders: Mapping[str, Mapping[str, int]],
    cents: Mapping[str, Mapping[str, int]],
    groups: Mapping[str, str] | None = None,
) -> list[CohortRow]:
    """The cohort table from every customer's monthly counters, by group, cohort and period.

    ``orders`` and ``cents`` are the :data:`ORDERS_TABLE` and :data:`CENTS_TABLE` counters per
    customer; ``groups`` (from :func:`acquisition_groups`) splits the table.

    >>> rows = cohort_rows({"a": {"1997-01": 2, "1997-03": 1}, "b": {"1997-02": 1}, "r": {}},
    ...                    {"a": {"1997-01": 500, "1997-03": 100}, "b": {"1997-02": 300, "1997-03": -300},
    ...                     "r": {"1997-01": -50}})
    >>> [(r.cohort, r.period, r.customers, r.active, r.revenue_cents) for r in rows]
    [('1997-01', 0, 1, 1, 500), ('1997-01', 1, 1, 0, 0), ('1997-01', 2, 1, 1, 100), ('1997-02', 0, 1, 1, 300), ('1997-02', 1, 1, 0, -300)]
    """
    cohort_of: dict[str, int] = {}
    horizon = None
    for customer, months in orders.items():
        first = _first_month(months)
        if first is None:
            continue
        start = cohort_of[customer] = month_index(first)
        seen = [month_index(m) for m, n in (*months.items(), *cents.get(customer, {}).items()) if n]
        horizon = max(horizon if horizon is not None else start, *seen)
    if horizon is None:
        return []
    size: Counter[tuple[str | None, int]] = Counter()
    active: Counter[tuple[str | None, int, int]] = Counter()
    revenue: Counter[tuple[str | None, int, int]] = Counter()
    for customer, start in cohort_of.items():
        group = groups.get(customer, NO_GROUP) if groups is not None else None
        size[group, start] += 1
        for month, n in orders[customer].items():
            if n > 0:
                active[group, start, month_index(month) - start] += 1
        for month, money in cents.get(customer, {}).items():
            period = month_index(month) - start
            if period >= 0:
                revenue[group, start, period] += money
    return [
        CohortRow(group, month_name(start), p, n, active[group, start, p], revenue[group, start, p])
        for (group, start), n in sorted(size.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))
        for p in range(horizon - start + 1)
    ]

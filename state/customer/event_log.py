"""A customer's event log as the evaluator reads it: a compacted base, then the events after it.

The evaluator must see, at each instant, exactly the events that occurred before it, so the store
keeps every applied event in the customer's log (:class:`LogEntry`) until the clock has passed it.
Then the events before a UTC midnight the clock has passed are folded into one :class:`LogBase`
(:func:`compact`): the log stays as long as the events the clock has not evaluated yet, not as long as
the customer's history. That is exact because no instant the evaluator can still evaluate lies before
the base (the clock only moves forward), and because the base ends at a UTC midnight: a purchase
after it falls on a later UTC day than every purchase inside it, so ``purchase_days`` (distinct UTC
days) adds up across the cut. An event that arrives after its time was compacted (late) is folded
straight into the base (:meth:`LogBase.add`), and is evaluated at the next instant like any late event.

>>> log = [LogEntry(5, "a", "purchase", 500), LogEntry(DAY_MS + 5, "b", "purchase", 700)]
>>> base, tail = compact("c1", None, log, before_ms=DAY_MS)
>>> base.encode(), tail
('86400000,1,500,0,5,5,1', [LogEntry(occurred_at_ms=86400005, event_id='b', type='purchase', amount_cents=700)])
>>> LogFold("c1", tail, base).advance(2 * DAY_MS) == LogFold("c1", log).advance(2 * DAY_MS)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from state.customer.rfm import DAY_MS, CustomerState, apply, purchase_day
from streams.contract import Purchase

__all__ = ["DAY_MS", "CustomerLog", "LogBase", "LogEntry", "LogFold", "compact", "state_from_log"]


class LogEntry(NamedTuple):
    """One applied event as the store logs it per customer (sorted by ``occurred_at_ms``)."""

    occurred_at_ms: int
    event_id: str
    type: Literal["purchase", "refund"]
    amount_cents: int

    def encode(self) -> str:
        """The log member text: ``p|r`` + amount + ``:`` + event_id (the score is the time).

        >>> LogEntry(5, "e:1", "refund", -250).encode()
        'r-250:e:1'
        >>> LogEntry.decode("r-250:e:1", 5)
        LogEntry(occurred_at_ms=5, event_id='e:1', type='refund', amount_cents=-250)
        """
        return f"{self.type[0]}{self.amount_cents}:{self.event_id}"

    @classmethod
    def decode(cls, member: str, occurred_at_ms: int) -> LogEntry:
        kind, rest = member[0], member[1:]
        amount, _, event_id = rest.partition(":")
        return cls(occurred_at_ms, event_id, "refund" if kind == "r" else "purchase", int(amount))

    def event(self, customer_id: str) -> Purchase:
        return Purchase(self.event_id, customer_id, self.occurred_at_ms, self.amount_cents, type=self.type)


@dataclass(frozen=True, slots=True)
class LogBase:
    """The customer's events that occurred before ``before_ms`` (a UTC midnight), folded into ``state``."""

    before_ms: int
    state: CustomerState

    def __post_init__(self) -> None:
        if self.before_ms % DAY_MS:
            raise ValueError(f"a log base ends at a UTC midnight, not at {self.before_ms} ms")

    def add(self, entry: LogEntry, *, new_purchase_day: bool) -> LogBase:
        """The base with a late event (one that occurred before ``before_ms``) folded in.

        ``new_purchase_day``: as for the live state (the store's set of purchase days says it; the
        base's days are exactly the customer's days before ``before_ms``).
        """
        if entry.occurred_at_ms >= self.before_ms:
            raise ValueError(f"event {entry.event_id} occurred after the base ({self.before_ms} ms)")
        event = entry.event(self.state.customer_id)
        return LogBase(self.before_ms, apply(self.state, event, new_purchase_day=new_purchase_day))

    def encode(self) -> str:
        """``before_ms,frequency,monetary_cents,refunds,first,last,purchase_days`` (first and last
        empty when the base holds refunds only): one short hash field, the form the Lua scripts read."""
        s = self.state
        first = "" if s.first_purchase_ms is None else str(s.first_purchase_ms)
        last = "" if s.last_purchase_ms is None else str(s.last_purchase_ms)
        return (
            f"{self.before_ms},{s.frequency},{s.monetary_cents},{s.refunds},{first},{last},{s.purchase_days}"
        )

    @classmethod
    def decode(cls, customer_id: str, text: str) -> LogBase:
        """The base :meth:`encode` wrote.

        >>> LogBase.decode("c", "0,0,-50,1,,,0").state.refunds
        1
        """
        before, frequency, cents, refunds, first, last, days = text.split(",")
        state = CustomerState(
            customer_id,
            frequency=int(frequency),
            monetary_cents=int(cents),
            refunds=int(refunds),
            first_purchase_ms=int(first) if first else None,
            last_purchase_ms=int(last) if last else None,
            purchase_days=int(days),
        )
        return cls(int(before), state)


class CustomerLog(NamedTuple):
    """What the store returns per customer: the compacted base (None: nothing compacted yet) and the
    events after it, oldest first."""

    base: LogBase | None
    entries: list[LogEntry]


def compact(
    customer_id: str, base: LogBase | None, entries: Sequence[LogEntry], before_ms: int
) -> tuple[LogBase | None, list[LogEntry]]:
    """Fold the ``entries`` that occurred before ``before_ms`` (a UTC midnight) into the base.

    Returns the new base and the entries left, oldest first. A ``before_ms`` at or before the
    current base's changes nothing; with no base and nothing before ``before_ms``, there is no base.
    The reference for the store's script (``state/adapters/log_compact.lua``).
    """
    if before_ms % DAY_MS:
        raise ValueError(f"logs are compacted at a UTC midnight, not at {before_ms} ms")
    ordered = sorted(entries)
    if base is not None and before_ms <= base.before_ms:
        return base, ordered
    head = [e for e in ordered if e.occurred_at_ms < before_ms]
    if base is None and not head:
        return None, ordered
    state = base.state if base is not None else CustomerState(customer_id)
    days: set[int] = set()  # the head's days all follow the old base's (it ends at a midnight)
    for e in head:
        day = purchase_day(e.occurred_at_ms)
        state = apply(state, e.event(customer_id), new_purchase_day=e.type == "purchase" and day not in days)
        if e.type == "purchase":
            days.add(day)
    return LogBase(before_ms, state), ordered[len(head) :]


class LogFold:
    """One customer's log folded forward in time: :meth:`advance` applies the events before an instant.

    The same fold as the store's (``state.customer.rfm.apply``; a day counts once, and only for a
    purchase), starting from the compacted ``base`` if there is one.

    >>> fold = LogFold("c1", [LogEntry(10, "b", "purchase", 700), LogEntry(0, "a", "refund", -50)])
    >>> fold.advance(5).monetary_cents, fold.next_event_ms(), fold.advance(11).purchase_days
    (-50, 10, 1)
    """

    __slots__ = ("base", "customer_id", "days", "log", "next", "state")

    def __init__(self, customer_id: str, log: Sequence[LogEntry], base: LogBase | None = None) -> None:
        self.customer_id = customer_id
        self.log = sorted(log)
        self.base = base  # not applied yet; :meth:`advance` applies it first
        self.next = 0  # index of the first event not folded yet
        self.state: CustomerState | None = None
        self.days: set[int] = set()

    def advance(self, before_ms: int) -> CustomerState | None:
        """Fold the events that occurred before ``before_ms``; the state so far (None: no event yet).

        Raises ``ValueError`` for an instant inside the compacted base (it cannot be split).
        """
        if self.base is not None:
            if before_ms < self.base.before_ms:
                raise ValueError(
                    f"{self.customer_id}: instant {before_ms} ms is inside the compacted log "
                    f"(before {self.base.before_ms} ms)"
                )
            self.state, self.base = self.base.state, None
        while self.next < len(self.log) and self.log[self.next].occurred_at_ms < before_ms:
            e = self.log[self.next]
            day = purchase_day(e.occurred_at_ms)
            new_day = e.type == "purchase" and day not in self.days
            if new_day:
                self.days.add(day)
            self.state = apply(self.state, e.event(self.customer_id), new_purchase_day=new_day)
            self.next += 1
        return self.state

    def next_event_ms(self) -> int | None:
        """When the first event not folded yet occurred (None: all folded); a base not applied yet
        counts as an event 1 ms before it ends."""
        if self.base is not None:
            return self.base.before_ms - 1
        return self.log[self.next].occurred_at_ms if self.next < len(self.log) else None


def state_from_log(customer_id: str, log: Sequence[LogEntry], before_ms: int) -> CustomerState | None:
    """The customer's state from the events of ``log`` that occurred before ``before_ms``.

    >>> log = [LogEntry(0, "a", "purchase", 500), LogEntry(10, "b", "purchase", 700)]
    >>> state_from_log("c1", log, before_ms=10).monetary_cents, state_from_log("c1", log, 11).frequency
    (500, 2)
    >>> state_from_log("c1", log, before_ms=0) is None
    True
    """
    return LogFold(customer_id, log).advance(before_ms)

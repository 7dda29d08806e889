"""A customer's segment profile, the change events between profiles, and the event log they come from.

A *profile* is what a marketing system sees of a customer: RFM scores, the named segment of
the preset, and the online cluster. A :class:`Change` records one profile moving to another at
an evaluation instant, with the reason:

- ``purchase``: the customer's own events moved it (a refund counts: it is a transaction);
- ``recency_decay``: time passed and the customer's R score fell under unchanged cut-points;
- ``cutpoint_update``: the population moved, a new cut-point version re-scored the customer;
- ``model_update``: a newly published cluster model moved or renamed the customer's cluster.

Folding a customer's changes in order reproduces their profile: every profile change is one
change event whose ``before`` is the previous ``after``.

>>> a = Profile(5, 1, 2, "New Customers", None, None)
>>> b = Profile(4, 1, 2, "Promising", None, None)
>>> fold_changes([Change("c1", 10, "purchase", None, a, 1, 0), Change("c1", 20, "recency_decay", a, b, 1, 0)])
{'c1': Profile(r_score=4, f_score=1, m_score=2, rfm_segment='Promising', cluster=None, cluster_name=None)}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from state.customer.rfm import CustomerState, apply, purchase_day
from streams.contract import Purchase

__all__ = [
    "REASONS",
    "Change",
    "LogEntry",
    "LogFold",
    "Profile",
    "Reason",
    "fold_changes",
    "state_from_log",
]

Reason = Literal["purchase", "recency_decay", "cutpoint_update", "model_update"]
REASONS: tuple[Reason, ...] = ("purchase", "recency_decay", "cutpoint_update", "model_update")


class Profile(NamedTuple):
    """The part of a customer's segment assignment whose every change is published."""

    r_score: int
    f_score: int
    m_score: int
    rfm_segment: str
    cluster: int | None
    cluster_name: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """``customer_id`` moved from ``before`` (None: first profile) to ``after`` at ``at_ms``."""

    customer_id: str
    at_ms: int
    reason: Reason
    before: Profile | None
    after: Profile
    cutpoint_version: int
    model_version: int

    @property
    def change_id(self) -> str:
        """Deterministic id: the same history always gives the same ids (consumers dedupe on it)."""
        return f"{self.customer_id}@{self.at_ms}"


def fold_changes(changes: Iterable[Change]) -> dict[str, Profile]:
    """Each customer's profile after applying their changes in order (checks the chain links)."""
    profiles: dict[str, Profile] = {}
    for change in changes:
        if change.before != profiles.get(change.customer_id):
            raise ValueError(
                f"change {change.change_id} starts from {change.before}, but the customer's profile is "
                f"{profiles.get(change.customer_id)}: changes are missing or out of order"
            )
        profiles[change.customer_id] = change.after
    return profiles


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


class LogFold:
    """One customer's log folded forward in time: :meth:`advance` applies the events before an instant.

    The same fold as the store's (``state.customer.rfm.apply``; a day counts once, and only for a purchase).

    >>> fold = LogFold("c1", [LogEntry(10, "b", "purchase", 700), LogEntry(0, "a", "refund", -50)])
    >>> fold.advance(5).monetary_cents, fold.next_event_ms(), fold.advance(11).purchase_days
    (-50, 10, 1)
    """

    __slots__ = ("customer_id", "days", "log", "next", "state")

    def __init__(self, customer_id: str, log: Sequence[LogEntry]) -> None:
        self.customer_id = customer_id
        self.log = sorted(log)
        self.next = 0  # index of the first event not folded yet
        self.state: CustomerState | None = None
        self.days: set[int] = set()

    def advance(self, before_ms: int) -> CustomerState | None:
        """Fold the events that occurred before ``before_ms``; the state so far (None: no event yet)."""
        while self.next < len(self.log) and self.log[self.next].occurred_at_ms < before_ms:
            e = self.log[self.next]
            day = purchase_day(e.occurred_at_ms)
            new_day = e.type == "purchase" and day not in self.days
            if new_day:
                self.days.add(day)
            event = Purchase(e.event_id, self.customer_id, e.occurred_at_ms, e.amount_cents, type=e.type)
            self.state = apply(self.state, event, new_purchase_day=new_day)
            self.next += 1
        return self.state

    def next_event_ms(self) -> int | None:
        """When the first event not folded yet occurred (None: all folded)."""
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

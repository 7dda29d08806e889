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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from state.customer.event_log import LogEntry, LogFold, state_from_log

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
    provisional: bool = False  # scored at receipt, before the clock evaluated its instant

    @property
    def change_id(self) -> str:
        """Deterministic id: the same history always gives the same ids (consumers dedupe on it).

        A provisional change (``state.evaluator.early``) has its own id, suffixed ``~provisional``.
        """
        base = f"{self.customer_id}@{self.at_ms}"
        return base + "~provisional" if self.provisional else base


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

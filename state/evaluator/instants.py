"""The evaluator's instants: the event-time grid, and which customers and campaign events are due at each.

The evaluator (``state.evaluator.evaluate``) evaluates UTC-midnight grid instants plus the instant a
clock tick names. This module says which instants those are and hands out, instant by instant,
the customers whose state changed before it (each customer's log folded up to the instant) and the
campaign events to apply there. Kept apart from the evaluator because it is the scheduling, with
no model or profile in it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence

from state.customer.event_log import LogBase, LogEntry, LogFold
from state.customer.rfm import CustomerState
from streams.campaign_contract import CampaignEvent

__all__ = [
    "chunk_campaign_events",
    "chunk_targets",
    "due_at_instants",
    "evaluation_instants",
    "first_due_ms",
    "log_folds",
]


def evaluation_instants(after_ms: int, to_ms: int, step_ms: int) -> list[int]:
    """Grid instants in ``(after_ms, to_ms)`` and ``to_ms`` itself.

    >>> evaluation_instants(0, 25, 10), evaluation_instants(5, 20, 10), evaluation_instants(9, 9, 10)
    ([10, 20, 25], [10, 20], [])
    """
    if to_ms <= after_ms:
        return []
    first = (after_ms // step_ms + 1) * step_ms
    return [*range(first, to_ms, step_ms), to_ms]


def chunk_targets(instants: Sequence[int], to_ms: int, steps: int) -> list[int]:
    """Where the chunks of ``instants`` (an advance up to ``to_ms``) end: every ``steps``-th instant,
    and ``to_ms``. A long catch-up is evaluated, saved and published a chunk at a time.

    >>> chunk_targets([10, 20, 30, 40, 45], 45, 2), chunk_targets([], 45, 2)
    ([20, 40, 45], [])
    """
    return [*instants[steps - 1 : -1 : steps], to_ms] if instants else []


def first_due_ms(earliest_score: int | None, campaign_events: Sequence[CampaignEvent]) -> int | None:
    """When the earliest event due occurred, for a first evaluation's instants: the agenda's lowest
    score (``occurred_at_ms + 1``) or the first of ``campaign_events`` (in occurred_at order).

    >>> first_due_ms(11, []), first_due_ms(None, []), first_due_ms(None, [CampaignEvent("e", "c", "A", "t", "exposure", 7)])
    (10, None, 7)
    """
    starts = [earliest_score - 1] if earliest_score is not None else []
    starts += [e.occurred_at_ms for e in campaign_events[:1]]
    return min(starts, default=None)


def chunk_campaign_events(
    campaign_events: Sequence[CampaignEvent], after_ms: int | None, up_to_ms: int, last: bool
) -> list[CampaignEvent]:
    """The campaign events a chunk ending at ``up_to_ms`` applies: those that occurred from the
    chunk before's end (``after_ms``; None: the first chunk) up to this one's, and in the ``last``
    chunk of an advance the late ones too.

    >>> events = [CampaignEvent(f"e{t}", "c", "A", "t", "exposure", t) for t in (5, 20, 30)]
    >>> [[e.occurred_at_ms for e in chunk_campaign_events(events, a, u, l)] for a, u, l in ((None, 20, False), (20, 25, True))]
    [[5], [20, 30]]
    """
    return [
        e
        for e in campaign_events
        if (after_ms is None or after_ms <= e.occurred_at_ms) and (e.occurred_at_ms < up_to_ms or last)
    ]


def log_folds(logs: Mapping[str, Sequence[LogEntry]], bases: Mapping[str, LogBase]) -> list[LogFold]:
    """A fold of each customer with a logged event or a compacted log base, in customer-id order."""
    customers = sorted({c for c, log in logs.items() if log} | set(bases))
    return [LogFold(c, logs.get(c, ()), bases.get(c)) for c in customers]


def due_at_instants(
    instants: Sequence[int], folds: Sequence[LogFold], campaign_events: Sequence[CampaignEvent], to_ms: int
) -> Iterator[tuple[int, list[CustomerState], list[CampaignEvent]]]:
    """Each instant with the states that changed before it and the campaign events applied at it.

    A customer's fold is advanced to the first instant after their next pending event, then to
    the first instant after the one after that, and so on while it is before ``to_ms``; a
    campaign event goes to the first instant after it occurred (a late one to the first
    instant), in (occurred_at_ms, event_id) order. Folds advance lazily, one instant per item.

    >>> from state.customer.event_log import LogEntry
    >>> fold = LogFold("c1", [LogEntry(5, "e1", "purchase", 100), LogEntry(15, "e2", "purchase", 100)], None)
    >>> [(at, [s.frequency for s in states]) for at, states, _ in due_at_instants([10, 20, 25], [fold], (), 25)]
    [(10, [1]), (20, [2]), (25, [])]
    """
    due: dict[int, list[LogFold]] = {}
    for fold in folds:
        pending = fold.next_event_ms()
        if pending is not None and instants:
            first = min(bisect.bisect_right(instants, pending), len(instants) - 1)
            due.setdefault(first, []).append(fold)
    campaign: dict[int, list[CampaignEvent]] = {}
    for event in sorted(campaign_events, key=lambda e: (e.occurred_at_ms, e.event_id)):
        if instants:
            index = min(bisect.bisect_right(instants, event.occurred_at_ms), len(instants) - 1)
            campaign.setdefault(index, []).append(event)
    for i, at_ms in enumerate(instants):
        states = []
        for fold in due.pop(i, []):
            state = fold.advance(at_ms)
            if state is not None:
                states.append(state)
            pending = fold.next_event_ms()
            if pending is not None and pending < to_ms:
                due.setdefault(bisect.bisect_right(instants, pending), []).append(fold)
        yield at_ms, states, campaign.pop(i, [])

"""Log compaction (state.customer.event_log) against the plain fold of every event.

The oracle is the fold of the whole log (``LogFold`` with no base, the fold the evaluator used
before logs were compacted) and, independently, pandas-free counting: distinct UTC days with a
purchase, sums and min/max computed directly from the events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state.customer.event_log import DAY_MS, LogBase, LogEntry, LogFold, compact
from state.customer.rfm import CustomerState

entries = st.lists(
    st.builds(
        LogEntry,
        occurred_at_ms=st.integers(0, 30 * DAY_MS),
        event_id=st.uuids().map(str),
        type=st.sampled_from(["purchase", "purchase", "refund"]),
        amount_cents=st.integers(-10_000, 10_000),
    ),
    max_size=40,
    unique_by=lambda e: e.event_id,
)


def direct(customer: str, log: list[LogEntry], before_ms: int) -> CustomerState | None:
    """The state from first principles: no fold, just counts over the events before ``before_ms``."""
    seen = [e for e in log if e.occurred_at_ms < before_ms]
    if not seen:
        return None
    bought = [e.occurred_at_ms for e in seen if e.type == "purchase"]
    return CustomerState(
        customer,
        frequency=len(bought),
        monetary_cents=sum(e.amount_cents for e in seen),
        refunds=len(seen) - len(bought),
        first_purchase_ms=min(bought, default=None),
        last_purchase_ms=max(bought, default=None),
        purchase_days=len({t // DAY_MS for t in bought}),
    )


@settings(max_examples=300, deadline=None)
@given(entries, st.lists(st.integers(0, 32), max_size=4), st.integers(0, 10 * DAY_MS))
def test_base_plus_tail_equals_the_whole_log_at_every_later_instant(
    log: list[LogEntry], days: list[int], after: int
) -> None:
    base: LogBase | None = None
    tail = list(log)
    for day in sorted(days):  # compactions at midnights the clock passed, in order
        base, tail = compact("c", base, tail, day * DAY_MS)
    start = base.before_ms if base is not None else 0
    assert all(e.occurred_at_ms >= start for e in tail)
    at = start + after
    assert LogFold("c", tail, base).advance(at) == direct("c", log, at) == LogFold("c", log).advance(at)


@settings(max_examples=200, deadline=None)
@given(entries, entries, st.integers(1, 30))
def test_late_events_added_to_the_base_equal_compacting_them_with_the_rest(
    first: list[LogEntry], late: list[LogEntry], day: int
) -> None:
    """What the store's fold does with an event older than the base (``LogBase.add``, its day's
    newness told by the customer's set of purchase days) equals having logged it in time."""
    bound = day * DAY_MS
    late_ids = {e.event_id for e in first}
    late = [e for e in late if e.occurred_at_ms < bound and e.event_id not in late_ids]
    base, tail = compact("c", None, first, bound)
    days = {e.occurred_at_ms // DAY_MS for e in first if e.type == "purchase"}
    for e in late:
        if base is None:
            base = LogBase(bound, CustomerState("c"))
        new_day = e.type == "purchase" and e.occurred_at_ms // DAY_MS not in days
        days |= {e.occurred_at_ms // DAY_MS} if e.type == "purchase" else set()
        base = base.add(e, new_purchase_day=new_day)
    at = bound + DAY_MS
    assert LogFold("c", tail, base).advance(at) == direct("c", first + late, at)


def test_a_base_round_trips_through_its_text_and_refuses_what_it_cannot_hold() -> None:
    base = LogBase(3 * DAY_MS, CustomerState("c", 2, -5, 1, 7, DAY_MS, 2))
    assert LogBase.decode("c", base.encode()) == base
    with pytest.raises(ValueError, match="UTC midnight"):
        LogBase(DAY_MS + 1, CustomerState("c"))
    with pytest.raises(ValueError, match="after the base"):
        base.add(LogEntry(3 * DAY_MS, "x", "purchase", 1), new_purchase_day=True)
    with pytest.raises(ValueError, match="inside the compacted log"):
        LogFold("c", [], base).advance(2 * DAY_MS)
    with pytest.raises(ValueError, match="UTC midnight"):
        compact("c", None, [], 5)


def test_a_base_not_applied_yet_is_pending_just_before_it_ends() -> None:
    base = LogBase(2 * DAY_MS, CustomerState("c", 1, 100, 0, 5, 5, 1))
    fold = LogFold("c", [LogEntry(3 * DAY_MS, "b", "purchase", 50)], base)
    assert fold.next_event_ms() == 2 * DAY_MS - 1
    assert fold.advance(2 * DAY_MS) == base.state
    assert fold.next_event_ms() == 3 * DAY_MS

"""``agents.pipeline.raw_messages``: Faust events as plain messages, each with its arrival on the wall clock."""

from __future__ import annotations

from types import SimpleNamespace

from agents.ingest import RawMessage
from agents.pipeline import raw_messages


def faust_event(offset: int, time_in: float | None) -> SimpleNamespace:
    message = SimpleNamespace(
        topic="t.purchases", partition=2, offset=offset, key=b"k", value=b"v", time_in=time_in
    )
    return SimpleNamespace(message=message)


def test_the_monitors_monotonic_arrival_becomes_wall_clock_milliseconds() -> None:
    # the batch is taken at monotonic 500.0 s = wall 1,700,000,000,000 ms; one message waited 0.25 s
    events = [faust_event(7, 499.75), faust_event(8, 500.0), faust_event(9, None)]
    messages = raw_messages(events, wall_ms=lambda: 1_700_000_000_000, monotonic=lambda: 500.0)
    assert messages == [
        RawMessage("t.purchases", 2, 7, b"k", b"v", 1_699_999_999_750),
        RawMessage("t.purchases", 2, 8, b"k", b"v", 1_700_000_000_000),
        RawMessage("t.purchases", 2, 9, b"k", b"v", None),  # no monitor stamp: the batch start counts
    ]


def test_a_message_without_the_monitors_attribute_has_no_arrival() -> None:
    bare = SimpleNamespace(message=SimpleNamespace(topic="t", partition=0, offset=1, key=None, value=b"v"))
    assert raw_messages([bare]) == [RawMessage("t", 0, 1, None, b"v", None)]

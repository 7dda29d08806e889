"""What the evaluator publishes for a batch of changes and alerts, as keyed messages.

Every change to ``segment-changes``, each customer's latest profile to ``customer-segments``,
every alert to ``alerts`` and every audience entry or exit (derived from the changes) to
``segment-moves``. Pure and Faust-free: ``agents.worker`` builds them off the event loop
(``state.adapters.off_loop.off_the_loop``; a long tick has tens of thousands) and publishes them in
aiokafka batches (``agents.batch_publish``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agents.batch_publish import Message
from state.customer.profiles import Change
from state.evaluator.messages import alert_message, change_message, move_message, profile_message
from state.models.alerts import Alert
from state.segments.moves import Move, segment_moves
from state.segments.segments import Preset

__all__ = ["OutputTopics", "evaluated_messages"]


@dataclass(frozen=True, slots=True)
class OutputTopics:
    """The output topics' names (with the namespace's prefix)."""

    changes: str
    profiles: str
    alerts: str
    moves: str


def evaluated_messages(
    changes: Sequence[Change], alerts: Sequence[Alert], preset: Preset, topics: OutputTopics
) -> tuple[list[Message], list[Move]]:
    """The messages to publish, in order (changes, latest profiles, alerts, moves), and the moves."""
    latest = {c.customer_id: c for c in changes}
    moves = segment_moves(changes, preset)  # entries and exits only, derived from the changes
    messages: list[Message] = [
        *((topics.changes, c.customer_id.encode(), change_message(c, preset)) for c in changes),
        *((topics.profiles, c.customer_id.encode(), profile_message(c, preset)) for c in latest.values()),
        *((topics.alerts, a.customer_id.encode(), alert_message(a)) for a in alerts),
        *((topics.moves, m.customer_id.encode(), move_message(m)) for m in moves),
    ]
    return messages, moves

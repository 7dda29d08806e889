"""Metrics of the ``segment-moves`` the evaluator publishes (``state.segments.moves``, ``state.evaluator.messages``)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from agents import metrics
from state.segments.moves import Move

__all__ = ["SEGMENT_MOVES", "observe_moves"]

SEGMENT_MOVES = Counter(
    "segstream_segment_moves",
    "Audience entries and exits published to segment-moves, by type (entered, exited) and audience kind",
    ["type", "kind"],
    registry=metrics.REGISTRY,
)


def observe_moves(moves: Sequence[Move]) -> None:
    for move in moves:
        SEGMENT_MOVES.labels(move.type, move.audience.kind).inc()

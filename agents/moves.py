"""Metrics of the ``segment-moves`` the evaluator publishes (``state.segments.moves``, ``state.evaluator.messages``)."""

from __future__ import annotations

from prometheus_client import Counter

from agents import metrics

__all__ = ["SEGMENT_MOVES"]

SEGMENT_MOVES = Counter(
    "segstream_segment_moves",
    "Audience entries and exits published to segment-moves, by type (entered, exited) and audience kind",
    ["type", "kind"],
    registry=metrics.REGISTRY,
)

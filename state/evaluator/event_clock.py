"""The event-time clock that needs no ticks: partition watermarks, lateness and idleness.

Flink's model, for the ``purchases`` partitions: each partition's *watermark* is the largest
event time it has accepted (the store keeps it, moved only by valid events). The clock is the
smallest watermark among the *active* partitions, less an allowed lateness, so an event up to
``lateness_ms`` behind its partition's newest one is still on time. A partition that has
processed no message for ``idle_s`` seconds of wall time (its consumed offset has not moved:
arrivals count, not event times, so a backlog of old events keeps it active) is *idle* and no
longer holds the others back; a partition that never had an event does not count at all. When
every partition is idle nothing more is coming for now, and the clock catches up with the
newest event (watermark + 1 ms, so that event itself is evaluated): a producer that stops gets
every customer evaluated without sending a tick.

The clock never goes back: :meth:`WatermarkClock.observe` returns a new clock only when it is
later than the last one it returned. Wall time enters only through ``now_s`` (a monotonic clock
the caller passes), which decides idleness, never an event time.

>>> clock = WatermarkClock(lateness_ms=5_000, idle_s=10.0)
>>> clock.observe({0: 100_000, 1: 60_000}, {0: 10, 1: 4}, now_s=0.0)  # partition 1 is behind
55000
>>> clock.observe({0: 120_000, 1: 60_000}, {0: 20, 1: 4}, now_s=5.0) is None  # 1 still holds it
True
>>> clock.observe({0: 130_000, 1: 60_000}, {0: 30, 1: 4}, now_s=10.5)  # 1 idle for 10.5 s: left out
125000
>>> clock.observe({0: 130_000, 1: 60_000}, {0: 50, 1: 4}, now_s=15.0) is None  # 0 busy with old events
True
>>> clock.observe({0: 130_000, 1: 60_000}, {0: 50, 1: 4}, now_s=25.5)  # all idle: catch up with the newest
130001
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["WatermarkClock"]


@dataclass
class WatermarkClock:
    """Turns per-partition watermarks, observed over wall time, into one event-time clock."""

    lateness_ms: int
    idle_s: float
    _marks: dict[int, tuple[int, float]] = field(default_factory=dict)  # partition -> (watermark, active at)
    _offsets: dict[int, int] = field(default_factory=dict)  # partition -> next unprocessed offset seen
    _last: int | None = None

    def observe(
        self, watermarks: Mapping[int, int], processed: Mapping[int, int], now_s: float
    ) -> int | None:
        """The new clock in epoch ms, or None if it has not moved past the last one returned.

        ``watermarks``: largest accepted event time per partition; ``processed``: each
        partition's next unprocessed offset (its movement is the partition's activity).
        """
        for partition, mark in watermarks.items():
            offset = processed.get(partition, 0)
            seen = self._marks.get(partition)
            if seen is None or offset != self._offsets.get(partition) or mark > seen[0]:
                self._marks[partition] = (mark, now_s)
            self._offsets[partition] = offset
        if not self._marks:
            return None
        active = [mark for mark, moved_at in self._marks.values() if now_s - moved_at < self.idle_s]
        if active:
            clock = min(active) - self.lateness_ms
        else:
            clock = max(mark for mark, _ in self._marks.values()) + 1
        if self._last is not None and clock <= self._last:
            return None
        self._last = clock
        return clock

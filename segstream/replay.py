"""Replay a purchase history into the ``purchases`` topic in event-time order, paced and with progress.

As it goes it advances the segment evaluator's clock: every ``tick_every`` events it sends a
clock tick at the last UTC midnight it has fully published (events are in time order, so
everything before it is out), and after the last event a tick just past it. Changes then
flow out while the replay runs, and the final profiles are those of the whole history.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from agents.settings import Settings
from segstream.kafka_io import Publisher
from segstream.sources import CHUNK_ROWS, iter_table, occurred_at_ms, table_rows, wire_events
from state.customer.rfm import DAY_MS
from streams.topics import PURCHASES

__all__ = ["ReplayReport", "publish_paced", "replay_history", "replay_table"]

_NO_TIME = -(2**63)  # a missing occurred_at (NaT) as int64: dead-lettered by the worker, never a tick


@dataclass(frozen=True, slots=True)
class ReplayReport:
    sent: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("inf")


def replay_history(
    history: pd.DataFrame,
    settings: Settings,
    *,
    speed: float | None = None,
    limit: int | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
    tick_every: int | None = 5000,
) -> ReplayReport:
    """Publish ``history`` by event time, keyed by customer; ``speed`` caps events/s (None = max).

    ``limit`` keeps the first N rows of the file (before the time ordering); ``tick_every=None``
    sends no clock ticks.
    """
    rows = history if limit is None else history.head(limit)
    rows = rows.sort_values("occurred_at", kind="stable")
    times = occurred_at_ms(rows)
    publisher = Publisher(settings)

    def tick_as_it_goes(sent: int) -> None:
        if tick_every and sent % tick_every == 0 and sent < len(times) and times[sent] > _NO_TIME:
            midnight = times[sent] // DAY_MS * DAY_MS  # every event before it is published
            publisher.tick(settings, midnight, source="replay")

    try:
        report = publish_paced(
            publisher,
            settings.topic(PURCHASES),
            wire_events(rows),
            len(rows),
            speed=speed,
            progress=progress,
            stop=stop,
            after_each=tick_as_it_goes,
        )
        if tick_every and report.sent == len(times) and max(times, default=_NO_TIME) > _NO_TIME:
            publisher.tick(settings, max(times) + 1, source="replay")
    finally:
        publisher.close()
    return report


def replay_table(
    path: Path,
    settings: Settings,
    *,
    mapping: Mapping[str, str] | None = None,
    speed: float | None = None,
    limit: int | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
    tick_every: int | None = 5000,
    chunk_rows: int = CHUNK_ROWS,
) -> ReplayReport:
    """Publish a CSV or Parquet file in *file order*, one chunk of ``chunk_rows`` rows at a time.

    Memory is bounded by the chunk whatever the file's size: nothing is sorted or held whole.
    While the file's times have not gone backwards, a clock tick goes out every ``tick_every``
    events at the last UTC midnight fully published (as :func:`replay_history` does for a
    sorted history); once they have, only the final tick just past the newest event is sent
    (with the default watermark clock the worker needs none at all).
    """
    seen = {"newest": _NO_TIME, "last": _NO_TIME, "in_order": True}
    publisher = Publisher(settings)

    def messages() -> Iterator[tuple[str, bytes]]:
        remaining = limit
        for chunk in iter_table(path, mapping, chunk_rows):
            if remaining is not None:
                chunk = chunk.head(remaining)
                remaining -= len(chunk)
            for (key, value), at in zip(wire_events(chunk), occurred_at_ms(chunk), strict=True):
                if at > _NO_TIME:
                    seen["in_order"] = seen["in_order"] and at >= seen["last"]
                    seen["last"], seen["newest"] = at, max(at, seen["newest"])
                yield key, value
            if remaining == 0:
                return

    def tick_as_it_goes(sent: int) -> None:
        if tick_every and sent % tick_every == 0 and seen["in_order"] and seen["last"] > _NO_TIME:
            publisher.tick(settings, seen["last"] // DAY_MS * DAY_MS, source="replay")

    rows = table_rows(path)
    total = min(rows, limit) if rows is not None and limit is not None else rows or limit
    try:
        report = publish_paced(
            publisher,
            settings.topic(PURCHASES),
            messages(),
            total,
            speed=speed,
            progress=progress,
            stop=stop,
            after_each=tick_as_it_goes,
        )
        finished = stop is None or not stop.is_set()
        if tick_every and finished and seen["newest"] > _NO_TIME:
            publisher.tick(settings, seen["newest"] + 1, source="replay")
    finally:
        publisher.close()
    return report


def publish_paced(
    publisher: Publisher,
    topic: str,
    messages: Iterable[tuple[str, bytes]],
    total: int | None,
    *,
    speed: float | None,
    progress: bool,
    stop: threading.Event | None,
    after_each: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Send ``(key, value)`` messages to ``topic`` at most ``speed`` per second (None = max), with a
    progress bar, until done or ``stop`` is set; flush. ``after_each(sent)`` runs after each send."""
    bar = tqdm(total=total, unit="ev", desc="published", disable=not progress, position=0, leave=True)
    started = time.perf_counter()
    sent = 0
    try:
        for key, value in messages:
            publisher.send(topic, key, value)
            sent += 1
            if sent % 500 == 0:
                bar.update(500)
                if stop is not None and stop.is_set():
                    break
            if speed is not None and sent % 50 == 0:
                ahead = sent / speed - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if after_each is not None:
                after_each(sent)
        publisher.flush()
        bar.update(sent % 500)
    finally:
        bar.close()
    return ReplayReport(sent, time.perf_counter() - started)

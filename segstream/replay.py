"""Replay a purchase history into the ``purchases`` topic, paced and with progress."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pandas as pd
from tqdm import tqdm

from segstream.kafka_io import Publisher
from segstream.settings import Settings
from segstream.sources import wire_events
from streams.topics import PURCHASES

__all__ = ["ReplayReport", "replay_history"]


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
) -> ReplayReport:
    """Publish ``history`` rows in order, keyed by customer; ``speed`` caps events/s (None = max)."""
    rows = history if limit is None else history.head(limit)
    topic = settings.topic(PURCHASES)
    publisher = Publisher(settings)
    bar = tqdm(total=len(rows), unit="ev", desc="published", disable=not progress, position=0, leave=True)
    started = time.perf_counter()
    sent = 0
    try:
        for key, value in wire_events(rows):
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
        publisher.flush()
        bar.update(sent % 500)
    finally:
        bar.close()
        publisher.close()
    return ReplayReport(sent, time.perf_counter() - started)

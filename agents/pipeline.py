"""One input pipeline for every topic a worker consumes in batches: Faust stream in, a step per batch.

Purchases, campaign events, reviews, products and traits all run the same way: take up to
``SEGSTREAM_BATCH_SIZE`` messages, hand them as :class:`agents.ingest.RawMessage` to the topic's
step (validate, dead-letter, fold, record consumed), and let ``finish`` decide what a failure
does (the worker exits without committing, so the batch is redelivered).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from agents.ingest import DeadLetter, PublishDeadLetters, RawMessage
from agents.settings import Settings

__all__ = ["Finish", "Step", "batch_agent", "dead_letter_publisher", "raw_messages"]

Finish = Callable[[Awaitable[None]], Awaitable[None]]
"""Runs one batch's step; on a failure the worker stops without committing (``agents.worker``)."""
Step = Callable[[list[RawMessage]], Awaitable[None]]
"""What a topic does with one batch of raw messages."""


def raw_messages(
    events: Sequence[Any],
    wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    monotonic: Callable[[], float] = time.monotonic,
) -> list[RawMessage]:
    """Faust events (``stream.take_events``) as the plain messages the steps take.

    Each keeps when it arrived: Faust's monitor stamps ``message.time_in`` (monotonic) as the
    consumer hands the message to the stream, before it waits in the stream's buffer for a batch;
    that wait belongs to the receipt -> change latency, so it is converted to the wall clock here.
    """
    now_ms, now_mono = wall_ms(), monotonic()

    def arrived(time_in: float | None) -> int | None:
        return None if time_in is None else now_ms - round((now_mono - time_in) * 1000)

    return [
        RawMessage(
            e.message.topic,
            e.message.partition,
            e.message.offset,
            e.message.key,
            e.message.value,
            arrived(getattr(e.message, "time_in", None)),
        )
        for e in events
    ]


def dead_letter_publisher(topic: Any) -> PublishDeadLetters:
    """Publish dead letters to ``topic`` (a Faust topic) and return once Kafka acked every one."""

    async def publish(letters: Sequence[DeadLetter]) -> None:
        pending = [await topic.send(key=key, value=value) for key, value in letters]
        await asyncio.gather(*pending)

    return publish


def batch_agent(app: Any, source: Any, name: str, settings: Settings, step: Step, finish: Finish) -> None:
    """A Faust agent named ``name`` running ``step`` on each batch of ``source``, through ``finish``."""

    async def consume(stream: Any) -> None:  # faust.Stream; take_events is untyped
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            await finish(step(raw_messages(events)))

    app.agent(source, name=name)(consume)

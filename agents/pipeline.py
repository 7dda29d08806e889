"""One input pipeline for every topic a worker consumes in batches: Faust stream in, a step per batch.

Purchases, campaign events, reviews, products and traits all run the same way: take up to
``SEGSTREAM_BATCH_SIZE`` messages, hand them as :class:`agents.ingest.RawMessage` to the topic's
step (validate, dead-letter, fold, record consumed), and let ``finish`` decide what a failure
does (the worker exits without committing, so the batch is redelivered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from agents.ingest import DeadLetter, PublishDeadLetters, RawMessage
from agents.settings import Settings

__all__ = ["Finish", "Step", "batch_agent", "dead_letter_publisher", "raw_messages"]

Finish = Callable[[Awaitable[None]], Awaitable[None]]
"""Runs one batch's step; on a failure the worker stops without committing (``agents.worker``)."""
Step = Callable[[list[RawMessage]], Awaitable[None]]
"""What a topic does with one batch of raw messages."""


def raw_messages(events: Sequence[Any]) -> list[RawMessage]:
    """Faust events (``stream.take_events``) as the plain messages the steps take."""
    return [
        RawMessage(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
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

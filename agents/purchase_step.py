"""The ``purchases`` step: one batch validated, folded, answered with provisional changes, counted.

Built the same way wherever it runs: in the ingest process (``agents.ingest_process``, the
default) or in the worker's own process (``SEGSTREAM_INGEST_PROCESS=false``). Both build their
Redis stores, analytics counters, basket bound and provisional changes here, from the settings,
so the two are the same step with the same inputs: only where it computes differs.

What it publishes (dead letters, provisional changes) goes through ``publish``; what it observes
goes to ``observe`` (:class:`StepObserver`: the worker's ``/metrics``, directly or forwarded).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from agents import metrics
from agents.baskets import PairBound
from agents.batch_publish import Message
from agents.early import ProvisionalChanges
from agents.evaluation_setup import evaluator_config, output_topics, redis_stores
from agents.ingest import DeadLetter, RawMessage, ingest_batch
from agents.settings import Settings
from agents.tallies import build_talliers
from state.adapters.redis_baskets import RedisBaskets
from state.adapters.redis_catalogue import RedisCatalogue
from state.customer.profiles import Change
from state.customer.store import Outcome
from state.customer.tally import combine
from state.evaluator.messages import change_message
from streams import topics

__all__ = ["PurchaseStep", "StepObserver", "build_purchase_step"]

Publish = Callable[[Sequence[Message]], Awaitable[int]]
"""Publish ``(topic, key, value)`` messages; return once Kafka acked every one."""


@dataclass(frozen=True, slots=True)
class StepObserver:
    """Where the step's observations go: the worker's metrics unless told otherwise."""

    batch_wait: Callable[[Sequence[int | None], int], None] = metrics.observe_batch_wait
    provisional_latency: Callable[[Sequence[int], int], None] = metrics.observe_provisional_latency
    batch: Callable[[int, float, Sequence[Outcome], Sequence[str], int | None], None] = metrics.observe_batch
    retry: Callable[[str, Exception], None] = metrics.observe_retry


@dataclass(slots=True)
class PurchaseStep:
    """``step(messages)`` runs one batch; ``close()`` lets go of the Redis connections."""

    step: Callable[[list[RawMessage]], Awaitable[None]]
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in self.closers:
            await close()


def build_purchase_step(settings: Settings, publish: Publish, observe: StepObserver) -> PurchaseStep:
    """The step for ``settings``, publishing through ``publish`` and observing into ``observe``."""
    retry = settings.redis_retry
    store, profiles = redis_stores(settings, on_retry=observe.retry)
    catalogue = RedisCatalogue.connect(
        settings.redis_access, settings.redis_prefix, retry=retry, on_retry=observe.retry
    )
    tallier = combine(*build_talliers(settings, catalogue))
    baskets = RedisBaskets.connect(
        settings.redis_access, settings.redis_prefix, retry=retry, on_retry=observe.retry
    )
    pair_bound = PairBound(baskets, settings.basket_max_pairs)
    config = evaluator_config(settings)
    limits = settings.input_limits()
    dead_letter_topic = settings.topic(topics.PURCHASES_DLQ)
    changes_topic = output_topics(settings).changes

    async def publish_dead_letters(letters: Sequence[DeadLetter]) -> None:
        await publish([(dead_letter_topic, key, value) for key, value in letters])

    async def publish_provisional(changes: Sequence[Change]) -> None:
        """Provisional changes go to segment-changes only: customer-segments holds evaluated profiles."""
        await publish(
            [(changes_topic, c.customer_id.encode(), change_message(c, config.preset)) for c in changes]
        )

    provisional = ProvisionalChanges(
        config, store, profiles, publish_provisional, window_ms=round(settings.provisional_window_s * 1000)
    )

    async def step(messages: list[RawMessage]) -> None:
        started = time.perf_counter()
        result = await ingest_batch(messages, store, publish_dead_letters, limits=limits, tallier=tallier)
        observe.batch_wait([m.arrived_ms for m in messages], result.received_ms)
        applied = [
            (e, r)
            for e, r, o in zip(result.events, result.receipts, result.outcomes, strict=True)
            if o >= Outcome.APPLIED
        ]
        early = await provisional.after_batch([e for e, _ in applied], result.received_ms)
        if early:
            first_arrival: dict[str, int] = {}
            for e, r in applied:
                first_arrival[e.customer_id] = min(r, first_arrival.get(e.customer_id, r))
            observe.provisional_latency(
                [first_arrival[c.customer_id] for c in early], int(time.time() * 1000)
            )
        await pair_bound.after_batch()
        watermark = await store.watermark()
        observe.batch(
            len(messages), time.perf_counter() - started, result.outcomes, result.invalid_reasons, watermark
        )

    return PurchaseStep(step, [store.close, profiles.close, catalogue.close, baskets.close])

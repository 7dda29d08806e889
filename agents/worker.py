"""The Faust worker: the composition of topics, store and the ingest step.

Delivery guarantee: Faust acknowledges a ``take_events`` batch after the loop
body returns (and also when it raises or is cancelled), and commits acknowledged
offsets. So the body must never return early: a batch either finishes (state in
Redis, dead letters in Kafka) or the process exits without committing, and the
batch is redelivered; the store's fences make the redelivery harmless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import faust

from agents import metrics
from agents.evaluator import SegmentEvaluator
from agents.ingest import DeadLetter, RawMessage, ingest_batch, ingest_campaign_batch
from agents.web import register_pages, web_middlewares
from segstream.settings import Settings
from state.alerts import Alert
from state.evaluate import EvaluatorConfig
from state.profiles import Change
from state.redis_profiles import RedisProfileStore
from state.redis_store import RedisStore
from state.rfm import DAY_MS
from state.segments import load_preset
from streams import topics
from streams.outputs import (
    InvalidTick,
    alert_message,
    change_message,
    decode_tick,
    profile_message,
    tick_message,
)

__all__ = ["EXIT_BATCH_FAILED", "broker_credentials", "build_app", "run_worker"]

log = logging.getLogger(__name__)
EXIT_BATCH_FAILED = 70


def build_app(settings: Settings) -> faust.App:
    """Build the worker app for ``settings`` (nothing connects until it starts)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=settings.kafka_url,
        store="memory://",
        datadir=str(settings.data_dir),
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_host="127.0.0.1",
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_credentials=broker_credentials(settings),
        web_application_options={"middlewares": web_middlewares(settings.api_token)},
    )
    purchases = topics.declare(app, settings, topics.PURCHASES)
    dead_letters = topics.declare(app, settings, topics.PURCHASES_DLQ)
    clock = topics.declare(app, settings, topics.CLOCK)
    campaign_events = topics.declare(app, settings, topics.CAMPAIGN_EVENTS)
    campaign_dead_letters = topics.declare(app, settings, topics.CAMPAIGN_EVENTS_DLQ)
    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    preset = load_preset(settings.segment_preset)
    changes_topic, profiles_topic, alerts_topic = (
        settings.topic(topics.SEGMENT_CHANGES),
        settings.topic(topics.CUSTOMER_SEGMENTS),
        settings.topic(topics.ALERTS),
    )

    async def publish_changes(changes: Sequence[Change], alerts: Sequence[Alert]) -> None:
        """Every change to segment-changes, each customer's latest profile to customer-segments,
        every alert to alerts."""
        send = app.producer.send
        latest = {c.customer_id: c for c in changes}
        pending = [
            await send(changes_topic, c.customer_id.encode(), change_message(c, preset), None, None, None)
            for c in changes
        ]
        pending += [
            await send(profiles_topic, c.customer_id.encode(), profile_message(c, preset), None, None, None)
            for c in latest.values()
        ]
        pending += [
            await send(alerts_topic, a.customer_id.encode(), alert_message(a), None, None, None)
            for a in alerts
        ]
        await asyncio.gather(*pending)
        metrics.observe_changes([c.reason for c in changes])
        metrics.observe_alerts([a.kind for a in alerts])

    evaluator = SegmentEvaluator(
        EvaluatorConfig(preset, min_dwell_ms=round(settings.cluster_min_dwell_days * DAY_MS)),
        store,
        profiles,
        publish_changes,
        settings.topic(topics.PURCHASES),
        campaigns_topic=settings.topic(topics.CAMPAIGN_EVENTS),
    )

    async def publish_dead_letters(letters: Sequence[DeadLetter]) -> None:
        pending = [await dead_letters.send(key=key, value=value) for key, value in letters]
        await asyncio.gather(*pending)

    async def process(events: Sequence[Any]) -> None:
        started = time.perf_counter()
        messages = [
            RawMessage(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
            for e in events
        ]
        result = await ingest_batch(messages, store, publish_dead_letters)
        watermark = await store.watermark()
        metrics.observe_batch(
            len(messages), time.perf_counter() - started, result.outcomes, result.invalid_reasons, watermark
        )

    @app.agent(purchases, name="ingest")
    async def ingest(stream: Any) -> None:  # faust.Stream; take_events is untyped
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            await _finish_or_exit(process(events))

    async def publish_campaign_dead_letters(letters: Sequence[DeadLetter]) -> None:
        pending = [await campaign_dead_letters.send(key=key, value=value) for key, value in letters]
        await asyncio.gather(*pending)

    async def process_campaigns(events: Sequence[Any]) -> None:
        messages = [
            RawMessage(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
            for e in events
        ]
        result = await ingest_campaign_batch(messages, store, profiles, publish_campaign_dead_letters)
        metrics.observe_campaign_batch(result.added, result.invalid_reasons)

    @app.agent(campaign_events, name="campaigns")
    async def campaigns(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            await _finish_or_exit(process_campaigns(events))

    @app.agent(clock, name="evaluate")
    async def evaluate(stream: Any) -> None:
        async for events in stream.take_events(100, within=0.05):
            await _finish_or_exit(on_ticks(events))

    async def on_ticks(events: Sequence[Any]) -> None:
        for event in events:
            try:
                tick = decode_tick(event.message.value or b"")
            except InvalidTick:
                log.error("ignoring a clock message that is not a tick", exc_info=True)
                continue
            report = await evaluator.on_tick(tick)
            if report is not None:
                metrics.observe_tick(report.as_of_ms, report.seconds)
                log.info("%s", report)

    if settings.clock == "wall":
        clock_topic = settings.topic(topics.CLOCK)

        @app.timer(settings.clock_interval_s)  # type: ignore[untyped-decorator]  # every worker: extra ticks are no-ops
        async def wall_clock() -> None:
            """Live mode: the as-of time is now, less the lateness allowed for events in flight."""
            as_of_ms = int((time.time() - settings.clock_lateness_s) * 1000)
            await app.producer.send(clock_topic, None, tick_message(as_of_ms, {}, "wall"), None, None, None)

    register_pages(app, store, profiles)
    return app


def broker_credentials(settings: Settings) -> faust.SASLCredentials | None:
    """The Faust app's Kafka login, from the same kwargs as every kafka-python client.

    Faust hands them to every aiokafka consumer and producer it makes: ``security_protocol``
    SASL_SSL (because of the SSL context), the mechanism, user name, password and context.
    """
    kwargs = settings.kafka_client_kwargs()
    if kwargs["security_protocol"] == "PLAINTEXT":
        return None
    context = ssl.create_default_context(cafile=kwargs["ssl_cafile"])
    context.check_hostname = kwargs["ssl_check_hostname"]
    return faust.SASLCredentials(
        username=kwargs["sasl_plain_username"],
        password=kwargs["sasl_plain_password"],
        mechanism=kwargs["sasl_mechanism"],
        ssl_context=context,
    )


async def _finish_or_exit(batch: Awaitable[None]) -> None:
    """Run one batch to completion even if the agent is cancelled; exit the process if it fails."""
    task = asyncio.ensure_future(batch)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # Shutdown or rebalance: finish the in-flight batch before Faust acks it.
        await _finish_or_exit(task)
        raise
    except Exception:
        log.critical("batch failed; exiting without commit so Kafka redelivers it", exc_info=True)
        logging.shutdown()
        os._exit(EXIT_BATCH_FAILED)


def run_worker(settings: Settings) -> None:
    """Run one worker in the foreground until SIGINT/SIGTERM (uvloop event loop)."""
    import mode.loop

    mode.loop.use("uvloop")
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG so it can spin on every record:
    # aiokafka then builds a debug record per message sent (py-spy: 15% of a busy worker).
    worker.spinner = None
    worker.execute_from_commandline()

"""The Faust worker: the composition of topics, store and the ingest step.

Delivery guarantee: Faust acknowledges a ``take_events`` batch after the loop
body returns (and also when it raises or is cancelled), and commits acknowledged
offsets. For campaign events, reviews, the catalogue, the clock, and purchases folded in
the worker's own process (``SEGSTREAM_INGEST_PROCESS=false``), the body must never return
early: a batch either finishes (state in Redis, dead letters in Kafka) or the process exits
without committing, and the batch is redelivered; the store's fences make the redelivery
harmless. Purchases folded in the ingest process (the default) are acknowledged once handed
over (``agents.ingest_process`` says why that loses nothing).

Redis is the record of what was folded: at every partition assignment the worker resumes the
``purchases``, ``campaign-events`` and ``reviews`` partitions it got from the offsets Redis recorded as
consumed (``agents.resume``), not from Kafka's committed ones, which may be ahead of them when
Redis restarted and lost its last writes. Transient Redis errors are retried by the stores
(``SEGSTREAM_REDIS_RETRY_S``); only when that budget runs out does a batch fail.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.types import TP

from agents import metrics
from agents.analytics_web import register_analytics_pages
from agents.baskets import register_basket_pages
from agents.batch_publish import faust_batch_publisher
from agents.catalogue import register_catalogue, register_catalogue_pages
from agents.evaluation_process import EvaluationAborted, EvaluationProcess, TickEvaluator
from agents.evaluation_setup import (
    count_output,
    evaluated_publisher,
    evaluator_config,
    output_topics,
    redis_stores,
    split_rows,
)
from agents.evaluator import EvaluatorObserver, SegmentEvaluator, TickRefused, TickReport
from agents.fetch_wait import set_fetch_max_wait
from agents.host_pool import HostPool, install_hosts
from agents.ingest import DeadLetter, RawMessage, dead_letter_rejects, ingest_campaign_batch
from agents.ingest_process import IngestProcess
from agents.kafka_login import broker_credentials
from agents.loop_lag import watch_loop_lag
from agents.partition_resume import reread_from_offset_zero, resume_unless_reassigned
from agents.pipeline import Step, batch_agent, dead_letter_publisher
from agents.purchase_step import StepObserver, build_purchase_step
from agents.reviews import install_reviews
from agents.settings import Settings
from agents.web import register_pages, web_middlewares
from state.adapters.redis_baskets import RedisBaskets
from state.adapters.redis_catalogue import RedisCatalogue
from state.adapters.retry import StoreUnavailable
from state.evaluator.event_clock import WatermarkClock
from streams import topics
from streams.outputs import InvalidTick, Tick, decode_tick

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
        stream_buffer_maxsize=settings.stream_buffer,
        web_application_options={"middlewares": web_middlewares(settings.api_token)},
    )
    purchases = topics.declare(app, settings, topics.PURCHASES)
    clock = topics.declare(app, settings, topics.CLOCK)
    clock_dead_letters = topics.declare(app, settings, topics.CLOCK_DLQ)
    limits = settings.input_limits()
    campaign_events = topics.declare(app, settings, topics.CAMPAIGN_EVENTS)
    campaign_dead_letters = topics.declare(app, settings, topics.CAMPAIGN_EVENTS_DLQ)
    retry = settings.redis_retry
    store, profiles = redis_stores(settings)
    catalogue = RedisCatalogue.connect(
        settings.redis_access, settings.redis_prefix, retry=retry, on_retry=metrics.observe_retry
    )
    baskets = RedisBaskets.connect(
        settings.redis_access, settings.redis_prefix, retry=retry, on_retry=metrics.observe_retry
    )
    config = evaluator_config(settings)
    preset = config.preset
    # aiokafka batches with the same acks, partitions and security settings as Faust's producer
    publish_batched = faust_batch_publisher(app)

    async def end_offsets(topic: str, partitions: list[int]) -> dict[int, int]:
        try:
            ends = await app.consumer.highwaters(*(TP(topic, p) for p in partitions))
        except Exception:  # the check is a guard; the stall timeout still bounds the wait
            log.warning("could not read the end offsets of %s", topic, exc_info=True)
            return {}
        return {tp.partition: offset for tp, offset in ends.items()}

    def partition_count(topic: str) -> int | None:
        count: int | None = app.consumer.topic_partitions(topic)
        return count

    evaluator: TickEvaluator
    if settings.evaluator_process:  # the default: the clock's owner evaluates on a core of its own
        evaluator = evaluation = EvaluationProcess(
            settings,
            partition_count=partition_count,
            end_offsets=end_offsets,
            observe=EvaluatorObserver(),
            counted=count_output,
            # with hosts, a tick under way must not hold a rebalance (agents.evaluation_process)
            abort_when=(lambda: bool(app.rebalancing)) if settings.evaluation_hosts else lambda: False,
        )

        async def stop_evaluation(sender: Any, **kwargs: Any) -> None:
            await asyncio.to_thread(evaluation.close)

        app.on_before_shutdown.connect(cast(Any, stop_evaluation))
    else:  # the evaluator's bulk output on a producer of its own: provisional changes never queue behind it
        evaluator = SegmentEvaluator(
            config,
            store,
            profiles,
            evaluated_publisher(
                faust_batch_publisher(app, own_producer=True), preset, output_topics(settings), count_output
            ),
            settings.topic(topics.PURCHASES),
            campaigns_topic=settings.topic(topics.CAMPAIGN_EVENTS),
            partition_count=partition_count,
            end_offsets=end_offsets,
            wait_timeout_s=settings.tick_wait_timeout_s,
            split_rows=split_rows(settings),
        )

    def ingest_failed(text: str) -> None:
        log.critical("%s\nexiting; the next worker resumes from the offsets Redis recorded as consumed", text)
        logging.shutdown()
        os._exit(EXIT_BATCH_FAILED)

    if settings.evaluation_hosts:  # this worker evaluates the purchases partitions it owns
        rows = split_rows(settings)
        assert rows is not None  # hosts need the split (Settings checks)
        hosts = HostPool(
            settings,
            config,
            store,
            profiles,
            rows,
            evaluated_publisher(
                faust_batch_publisher(app, own_producer=True), preset, output_topics(settings), count_output
            ),
            on_failure=lambda text: ingest_failed(f"evaluation host: {text}"),
        )
        install_hosts(app, settings, hosts, _finish_or_exit)

    ingest: IngestProcess | None = None
    process: Step
    if settings.ingest_process:  # the default: purchases are folded on a core of their own
        ingest = IngestProcess(settings, on_failure=ingest_failed)
        process = ingest.submit

        async def stop_ingest(sender: Any, **kwargs: Any) -> None:
            assert ingest is not None
            await ingest.drain()
            await asyncio.to_thread(ingest.close)

        app.on_before_shutdown.connect(cast(Any, stop_ingest))
    else:
        purchase_step = build_purchase_step(settings, publish_batched, StepObserver())
        process = purchase_step.step

    batch_agent(app, purchases, "ingest", settings, process, _finish_or_exit)
    publish_campaign_dead_letters = dead_letter_publisher(campaign_dead_letters)

    async def process_campaigns(messages: list[RawMessage]) -> None:
        result = await ingest_campaign_batch(
            messages, store, profiles, publish_campaign_dead_letters, limits=limits
        )
        metrics.observe_campaign_batch(result.added, result.invalid_reasons)

    batch_agent(app, campaign_events, "campaigns", settings, process_campaigns, _finish_or_exit)

    @app.task  # type: ignore[untyped-decorator]
    async def loop_lag() -> None:
        await watch_loop_lag(metrics.EVENT_LOOP_LAG.observe)

    @app.agent(clock, name="evaluate")
    async def evaluate(stream: Any) -> None:
        async for events in stream.take_events(100, within=0.05):
            await _finish_or_exit(on_ticks(events))

    async def on_ticks(events: Sequence[Any]) -> None:
        """Each tick evaluated (or refused), then recorded in Redis as consumed.

        The clock topic resumes from Redis like the input topics (``fenced_topics``): a worker that
        takes the clock partition over from one killed mid-tick reads that tick again, whatever
        Kafka holds as committed for it (nothing, when it was the partition's first message).
        """
        for event in events:
            m = event.message
            try:
                report = await evaluator.on_tick(decode_tick(m.value or b"", limits))
            except EvaluationAborted:  # not recorded: the clock's next owner reads it again
                metrics.TICKS_ABANDONED.inc()
                log.warning("the clock tick at %s[%d]@%d was abandoned: a rebalance began", *m.tp, m.offset)
                return
            except (InvalidTick, TickRefused) as exc:
                await refuse_tick(RawMessage(m.topic, m.partition, m.offset, m.key, m.value), str(exc))
            else:
                observe_tick(report)
            await store.record_consumed({(m.topic, m.partition): m.offset + 1})

    async def publish_clock_dead_letters(letters: Sequence[DeadLetter]) -> None:
        pending = [await clock_dead_letters.send(key=key, value=value) for key, value in letters]
        await asyncio.gather(*pending)

    async def refuse_tick(message: RawMessage, reason: str) -> None:
        """A refused tick changes nothing: it goes to clock.dlq with the reason, and is counted."""
        log.error(
            "refused the clock tick at %s[%d]@%d: %s",
            message.topic,
            message.partition,
            message.offset,
            reason,
        )
        fresh = await dead_letter_rejects(
            [(message, reason)],
            store,
            publish_clock_dead_letters,
            datetime.now(UTC),
            limits,
            count_invalid=False,
        )
        metrics.TICKS_REFUSED.inc(len(fresh))

    clock_partition = TP(settings.topic(topics.CLOCK), 0)

    def owns_the_clock() -> bool:
        """Only the owner of the one ``clock`` partition evaluates: one clock, however many workers."""
        try:
            return clock_partition in app.consumer.assignment()
        except Exception:  # not connected yet
            return False

    if settings.evaluator_process:

        @app.timer(1.0)  # type: ignore[untyped-decorator]
        async def start_evaluation_early() -> None:
            """The clock's owner starts its evaluation process before a tick asks for it: the process's
            cold start (imports, connections) then overlaps the wait for events, not the first tick."""
            if owns_the_clock():
                evaluation.start()

    if settings.clock == "watermark":
        watermarks = WatermarkClock(
            lateness_ms=round(settings.clock_lateness_s * 1000), idle_s=settings.clock_idle_timeout_s
        )

        @app.timer(settings.clock_interval_s)  # type: ignore[untyped-decorator]
        async def watermark_clock() -> None:
            """Default: the events' own time moves the clock (no ticks needed), on the clock's owner only."""
            if not owns_the_clock():
                return
            activity = await store.consumed(settings.topic(topics.PURCHASES))
            as_of_ms = watermarks.observe(await store.watermarks(), activity, time.monotonic())
            await _finish_or_exit(evaluate_at(as_of_ms, "watermark"))

    async def evaluate_at(as_of_ms: int | None, source: str) -> None:
        """Move the clock to ``as_of_ms`` (None: it stays); if it did not move, sweep late events."""
        try:
            report = None if as_of_ms is None else await evaluator.on_tick(Tick(as_of_ms, {}, source))
            observe_tick(report or await evaluator.evaluate_late(source))
        except EvaluationAborted:  # a rebalance began: the clock's owner (maybe another) goes on
            metrics.TICKS_ABANDONED.inc()
            log.warning("the %s clock's evaluation was abandoned: a rebalance began", source)

    def observe_tick(report: TickReport | None) -> None:
        if report is not None:
            metrics.observe_tick(report.as_of_ms, report.seconds)
            log.info("%s", report)

    if settings.clock == "wall":

        @app.timer(settings.clock_interval_s)  # type: ignore[untyped-decorator]
        async def wall_clock() -> None:
            """Wall mode: the as-of time is now, less the lateness allowed for events in flight."""
            if owns_the_clock():
                await _finish_or_exit(
                    evaluate_at(int((time.time() - settings.clock_lateness_s) * 1000), "wall")
                )

    if settings.redis_cluster:  # review region counters need one Redis node: reviews wait in Kafka
        log.warning(
            "SEGSTREAM_REDIS_CLUSTER: basket counts are not kept and reviews are not consumed "
            "(their shared counters need a single Redis node); purchases, campaigns and segments run"
        )
        reviews_topic = None
    else:
        reviews_topic = install_reviews(
            app, settings, store, profiles, preset, retry, metrics.observe_retry, _finish_or_exit
        )
    register_catalogue(app, settings, store, catalogue, limits, _finish_or_exit)
    fenced_topics = (
        settings.topic(topics.CLOCK),
        settings.topic(topics.PURCHASES),
        settings.topic(topics.CAMPAIGN_EVENTS),
        settings.topic(topics.PRODUCTS),
        settings.topic(topics.CUSTOMER_TRAITS),
        *([reviews_topic] if reviews_topic is not None else []),
    )

    async def resume_from_store(sender: Any, **kwargs: Any) -> None:
        set_fetch_max_wait(
            app, settings.fetch_max_wait_ms
        )  # the consumer exists by now: shorten Faust's 1.5 s
        reread_from_offset_zero(app)
        if ingest is not None:  # Redis's consumed offsets must include every batch handed over
            ingest.start()  # its cold start overlaps the first fetches
            await ingest.drain()
        await _finish_or_exit(
            resume_unless_reassigned(app, store, fenced_topics), "resuming assigned partitions"
        )

    app.on_rebalance_complete.connect(cast(Any, resume_from_store))  # mode types async receivers loosely

    register_pages(app, store, profiles, catalogue)
    register_catalogue_pages(app, catalogue)
    register_analytics_pages(app, store, profiles, settings)  # /cohorts, /best-time
    register_basket_pages(app, store, profiles, baskets, settings)
    return app


async def _finish_or_exit(batch: Awaitable[None], what: str = "batch") -> None:
    """Run one batch to completion even if the agent is cancelled; exit the process if it fails."""
    task = asyncio.ensure_future(batch)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # Shutdown or rebalance: finish the in-flight batch before Faust acks it.
        await _finish_or_exit(task, what)
        raise
    except StoreUnavailable as exc:
        log.critical("%s failed: %s; exiting without commit so Kafka redelivers it", what, exc)
        logging.shutdown()
        os._exit(EXIT_BATCH_FAILED)
    except Exception:
        log.critical("%s failed; exiting without commit so Kafka redelivers it", what, exc_info=True)
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

"""The evaluator in a process of its own, started by the worker that owns the clock.

Why: a worker's ingest, its provisional changes and, on the clock's owner, the evaluation shared
one Python process, so one GIL: under live load (``bench/freshness.py``, a quarter of capacity,
2026-11-30) the owner's evaluation held the ingest of the purchases it was about to evaluate, and
the evaluated changes fell tens of seconds behind. In a process of its own the evaluation has a
core of its own and the worker's event loop serves ingest only.

What does not change: it is the same :class:`agents.evaluator.SegmentEvaluator` (same stores,
configuration and publisher, ``agents.evaluation_setup``), fed the same ticks in the same order by
the same clock owner; so the changes, alerts and saves are the same as in the worker's process
(``SEGSTREAM_EVALUATOR_PROCESS=false`` keeps it there). The worker sends one request at a time and
waits for its answer; meanwhile the process may ask it for what only the worker's Kafka consumer
knows (a topic's end offsets) and sends it what the worker's ``/metrics`` shows (latencies, the
churn AUC, the clock, counts of what it published). The partition counts of the input topics go
with each request.

Failure: the process dies with the worker (Linux ``PR_SET_PDEATHSIG``; a worker killed mid-tick
must not leave an orphan evaluating beside its successor); if the process fails or dies, the
request raises :class:`EvaluationFailed` and the worker exits as for a failed batch (it restarts
from the state last saved, the same recovery as before). It is started with ``spawn`` (the worker
has threads: forking it is unsafe), on the first tick, so a worker that never owns the clock never
starts one.

With evaluation hosts (``SEGSTREAM_EVALUATION_HOSTS``) the process runs the model owner
(``agents.partition_owner``) and the hosts run in the workers (``agents.host_pool``). A request
under way when a rebalance begins is then abandoned (:class:`EvaluationAborted`): its tick would
otherwise hold the rebalance (Faust waits for the event in hand before it lets partitions go) while
it waits for hosts and purchases the rebalance has stopped, until the group drops the worker with
its owner still running. The tick is not recorded as consumed, so the clock's next owner reads it
again.

Wire (pickles over a :func:`multiprocessing.Pipe`): worker -> process ``("tick", Tick, counts)``,
``("late", source, counts)``, ``("answer", ends)``, ``("abort",)`` (the request under way);
process -> worker ``("ask", topic, partitions)``, ``("observe", name, args)``, then one of
``("report", TickReport | None)``, ``("refused", reason)``, ``("failed", traceback)``,
``("aborted",)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Protocol

from agents.cancellation import cancel_until_done
from agents.child_process import start_child
from agents.evaluator import (
    CHUNK_STEPS,
    EndOffsets,
    EvaluatorObserver,
    PublishChanges,
    SegmentEvaluator,
    TickRefused,
    TickReport,
)
from agents.settings import Settings
from streams import topics
from streams.outputs import Tick

if TYPE_CHECKING:
    from agents.partition_link import PartitionLink
    from agents.partition_owner import EvaluationOwner
    from state.adapters.redis_partition_rows import RedisPartitionRows
    from state.adapters.redis_profiles import RedisProfileStore
    from state.adapters.redis_store import RedisStore
    from state.evaluator.config import EvaluatorConfig

__all__ = ["EvaluationAborted", "EvaluationFailed", "EvaluationProcess", "TickEvaluator"]

log = logging.getLogger(__name__)
_OBSERVATIONS = tuple(f.name for f in dataclasses.fields(EvaluatorObserver))
"""What an evaluator reports, each forwarded to the worker under its field's name."""


class TickEvaluator(Protocol):
    """What the worker's clock calls: :class:`SegmentEvaluator` or :class:`EvaluationProcess`."""

    async def on_tick(self, tick: Tick) -> TickReport | None: ...

    async def evaluate_late(self, source: str) -> TickReport | None: ...


class EvaluationFailed(Exception):
    """The evaluation process failed or ended; ``str()`` says how (its traceback when it has one)."""


class EvaluationAborted(Exception):
    """The request was abandoned because a rebalance began; nothing it did half-way is kept."""


class _Channel:
    """One end of the pipe, read in a thread so the event loop keeps running meanwhile (an
    ``add_reader`` on the pipe would let uvloop make it non-blocking, and a large message
    would then be read half)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def receive(self) -> Any:
        return await asyncio.to_thread(self.conn.recv)  # raises EOFError when the other end closed

    def send(self, message: tuple[Any, ...]) -> None:
        self.conn.send(message)


class EvaluationProcess:
    """The worker's side: starts the process (once the worker owns the clock, or on the first request)
    and answers what it asks."""

    def __init__(
        self,
        settings: Settings,
        *,
        partition_count: Callable[[str], int | None],
        end_offsets: EndOffsets,
        observe: EvaluatorObserver,
        counted: Callable[[Any], None],
        abort_when: Callable[[], bool] = lambda: False,
    ) -> None:
        """``abort_when``: polled while a request is under way; once true the request is abandoned."""
        self._settings = settings
        self._partition_count = partition_count
        self._end_offsets = end_offsets
        self._observed: dict[str, Callable[..., None]] = {  # every report the process forwards, by name
            **{name: getattr(observe, name) for name in _OBSERVATIONS},
            "output": counted,
        }
        self._inputs = (settings.topic(topics.PURCHASES), settings.topic(topics.CAMPAIGN_EVENTS))
        self._lock = asyncio.Lock()  # the clock topic's ticks and the watermark clock take turns
        self._process: Any = None  # multiprocessing.context.SpawnProcess once started
        self._channel: _Channel | None = None
        self._abort_when = abort_when
        self._receiving: asyncio.Future[Any] | None = None  # the pipe's next message, being read

    async def on_tick(self, tick: Tick) -> TickReport | None:
        return await self._request("tick", tick)

    async def evaluate_late(self, source: str) -> TickReport | None:
        return await self._request("late", source)

    def start(self) -> None:
        """Start the process now if it has not been (the first request would otherwise); from the loop's thread."""
        if self._channel is None:
            self._started()

    def close(self, timeout_s: float = 10.0) -> None:
        """Close the pipe (the process then ends after its current request) and wait for it."""
        if self._process is None or self._channel is None:
            return
        self._channel.conn.close()
        self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    async def _request(self, kind: str, argument: object) -> TickReport | None:
        async with self._lock:
            if self._abort_when():
                raise EvaluationAborted("a rebalance began; the request was not sent")
            channel = self._started()
            counts = {topic: self._partition_count(topic) for topic in self._inputs}
            channel.send((kind, argument, counts))
            aborting = False
            while True:
                if not aborting and self._abort_when():
                    channel.send(("abort",))
                    aborting = True
                if self._receiving is None:  # one read at a time, kept across polls
                    self._receiving = asyncio.ensure_future(channel.receive())
                done, _ = await asyncio.wait({self._receiving}, timeout=0.1)
                if not done:
                    continue
                received, self._receiving = self._receiving, None
                try:
                    message = received.result()
                except (EOFError, OSError) as exc:
                    raise EvaluationFailed(
                        f"the evaluation process ended (exit code {self._process.exitcode})"
                    ) from exc
                match message:
                    case ("ask", str(topic), list(partitions)):
                        channel.send(("answer", await self._end_offsets(topic, partitions)))
                    case ("observe", str(name), tuple(args)):
                        self._observed[name](*args)
                    case ("report", report):
                        return report if isinstance(report, TickReport) else None
                    case ("refused", str(reason)):
                        raise TickRefused(reason)
                    case ("failed", str(text)):
                        raise EvaluationFailed(text)
                    case ("aborted",):
                        raise EvaluationAborted("a rebalance began; the request was abandoned")
                    case _:
                        raise EvaluationFailed(f"unexpected message from the evaluation process: {message!r}")

    def _started(self) -> _Channel:
        if self._channel is not None:
            if not self._process.is_alive():
                raise EvaluationFailed(f"the evaluation process ended (exit code {self._process.exitcode})")
            return self._channel
        # Started from the event loop's thread, the worker's main thread: PR_SET_PDEATHSIG fires when
        # the thread that started the process ends, so a start from a pool thread would kill it early.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(
            target=serve,
            args=(self._settings.to_env(), theirs, os.getpid()),
            name="segstream-evaluator",
            daemon=True,
        )
        self._process.start()
        theirs.close()
        self._channel = _Channel(ours)
        log.info("evaluation process started (pid %d)", self._process.pid)
        return self._channel


def serve(env: dict[str, str], conn: Connection, worker_pid: int) -> None:
    """The process's entry point: evaluate the worker's requests until it closes the pipe."""
    settings = start_child("seg-evaluate", "evaluation", env, worker_pid)
    import uvloop  # the worker's loop too (mode.loop)

    uvloop.run(_serve(settings, _Channel(conn)))


async def _serve(settings: Settings, channel: _Channel) -> None:
    import faust

    from agents.batch_publish import faust_batch_publisher
    from agents.evaluation_setup import (
        evaluated_publisher,
        evaluator_config,
        output_topics,
        redis_stores,
        split_rows,
    )
    from agents.kafka_login import broker_credentials

    store, profiles = redis_stores(settings)
    rows = split_rows(settings)  # one client for the owner and the evaluator alike
    config = evaluator_config(settings)
    # an app never started: its producer settings (acks, SASL/TLS, partitioner) are the worker's
    app = faust.App(
        settings.app_id, broker=settings.kafka_url, broker_credentials=broker_credentials(settings)
    )
    counts: dict[str, int | None] = {}
    requests: asyncio.Queue[tuple[Any, ...] | None] = asyncio.Queue()
    answers: asyncio.Queue[Any] = asyncio.Queue()
    received = aborted = 0  # requests read from the pipe; the last one the worker abandoned
    current: asyncio.Task[TickReport | None] | None = None  # the request under way
    cancelling: set[asyncio.Future[bool]] = set()  # its cancellations (held: the loop keeps weak refs)

    async def read() -> None:
        """The pipe's messages: answers to asks, aborts of the request under way, requests."""
        nonlocal received, aborted
        while True:
            try:
                message = await channel.receive()
            except EOFError:  # the worker closed the pipe: it is stopping
                requests.put_nowait(None)
                return
            if message[0] == "answer":
                answers.put_nowait(message[1])
            elif message[0] == "abort":  # always of the last request read (the worker waits for it)
                aborted = received
                log.warning("abandoning request %d (%s)", received, "under way" if current else "not begun")
                if current is not None:
                    canceller = asyncio.ensure_future(cancel_until_done(current))
                    cancelling.add(canceller)
                    canceller.add_done_callback(cancelling.discard)
            else:
                received += 1
                requests.put_nowait(message)

    def forward(name: str) -> Callable[..., None]:
        return lambda *args: channel.send(("observe", name, args))

    async def end_offsets(topic: str, partitions: list[int]) -> dict[int, int]:
        channel.send(("ask", topic, partitions))
        return dict(await answers.get())

    evaluated = evaluated_publisher(
        faust_batch_publisher(app, own_producer=True),
        config.preset,
        output_topics(settings),
        forward("output"),
    )
    owner, link = await _owner(settings, store, profiles, rows, config, evaluated)
    evaluator = SegmentEvaluator(
        config,
        store,
        profiles,
        evaluated,
        settings.topic(topics.PURCHASES),
        campaigns_topic=settings.topic(topics.CAMPAIGN_EVENTS),
        partition_count=lambda topic: counts.get(topic),
        end_offsets=end_offsets,
        wait_timeout_s=settings.tick_wait_timeout_s,
        observe=EvaluatorObserver(**{name: forward(name) for name in _OBSERVATIONS}),
        split_rows=rows,
        owner=owner,
    )
    reader = asyncio.create_task(read())
    try:
        number = 0
        while (request := await requests.get()) is not None:
            kind, argument, counts_now = request
            number += 1
            counts.clear()
            counts.update(counts_now)
            if aborted == number:  # abandoned before it began
                channel.send(("aborted",))
                continue
            while not answers.empty():  # an answer to an ask of a request abandoned before it came
                answers.get_nowait()
            current = asyncio.ensure_future(
                evaluator.on_tick(argument) if kind == "tick" else evaluator.evaluate_late(argument)
            )
            try:
                report = await current
            except asyncio.CancelledError:
                if not current.cancelled():
                    raise  # this process is being stopped
                channel.send(("aborted",))
            except TickRefused as exc:
                channel.send(("refused", str(exc)))
            except Exception:
                channel.send(("failed", traceback.format_exc()))
                return  # the worker exits too; its successor restarts from the state saved
            else:
                channel.send(("report", report))
            finally:
                current = None
    finally:
        reader.cancel()
        if link is not None:
            with contextlib.suppress(Exception):
                await link.stop()
        with contextlib.suppress(Exception):
            await app.on_before_shutdown.send()  # stops the producer


async def _owner(
    settings: Settings,
    store: RedisStore,
    profiles: RedisProfileStore,
    rows: RedisPartitionRows | None,
    config: EvaluatorConfig,
    publish: PublishChanges,
) -> tuple[EvaluationOwner | None, PartitionLink | None]:
    """The model owner of the evaluation hosts and its link (``SEGSTREAM_EVALUATION_HOSTS``), or none;
    ``rows``: where the split saves its partitions' rows (None: not split)."""
    from agents.host_pool import evaluation_link
    from agents.partition_owner import EvaluationOwner

    if not settings.evaluation_hosts or rows is None:
        return None, None
    partitions = await store.eval_partitions()
    link = evaluation_link(settings, partitions=partitions)
    await link.start()
    owner = EvaluationOwner(
        config,
        partitions,
        store,
        profiles,
        rows,
        publish,
        link,
        chunk_steps=CHUNK_STEPS,
        wait_s=settings.evaluation_wait_s,
    )
    return owner, link

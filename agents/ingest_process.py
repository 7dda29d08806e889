"""The ``purchases`` step in a process of its own, fed by the worker's Faust agent (the default).

Why: Faust's per-message machinery fills one core by itself (``make bench``: a Faust agent doing
nothing), and in the worker's process every microsecond of the step (decoding, validating, the
analytics counters, packing the Redis fold, provisional changes) came on top of it, on the same
GIL. Here the worker's agent only hands each batch's raw messages over and takes the next one;
the step (``agents.purchase_step``: the very one the worker otherwise runs itself,
``SEGSTREAM_INGEST_PROCESS=false``) runs on another core, one batch after another in the order
they came. While it folds batch N, Faust reads batch N+1.

Delivery: Faust acknowledges a batch once it is handed over, before it is folded; so Kafka's
committed offsets may run ahead of what Redis holds. Redis is the record: at every assignment the
worker first waits for the batches it handed over (:meth:`IngestProcess.drain`), then resumes each
partition from the offset Redis recorded as consumed (``agents.partition_resume``). A worker that
dies with batches in flight is resumed from Redis's offsets by its successor, which reads them
again; the offset fences make what was folded meanwhile harmless. At most ``in_flight`` batches
are handed over and not yet folded (4 by default), and at most ``in_flight_bytes`` of their
payloads (64 MB; a batch is always let through when nothing is in flight), so a slow Redis or a
run of 1 MB payloads holds Faust back instead of filling the process's memory.

Failure: a batch that fails in the process (Redis unavailable beyond the retry budget, a bug)
ends the process, and the worker exits with it (``on_failure``), as when the step fails in the
worker's own process; the process dies with the worker (``agents.child_process``).

Wire (pickles over two one-way pipes): worker -> process ``("batch", [raw message tuples])``;
process -> worker ``("done", batches folded, [(observation, args), ...])`` after each step, or
``("failed", traceback)``. Observations are the step's :class:`agents.purchase_step.StepObserver` calls,
replayed into the worker's ``/metrics``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import threading
import traceback
from collections.abc import Awaitable, Callable, Collection
from multiprocessing.connection import Connection
from typing import Any

from agents.child_process import start_child
from agents.ingest import RawMessage
from agents.purchase_step import StepObserver, build_purchase_step
from agents.settings import Settings

__all__ = ["IngestProcess", "admits", "fold_in_order", "serve"]

log = logging.getLogger(__name__)
_OBSERVATIONS = tuple(f.name for f in dataclasses.fields(StepObserver))


def admits(in_flight: Collection[int], size: int, max_batches: int, max_bytes: int) -> bool:
    """Whether a batch of ``size`` payload bytes may be handed over beside the batches ``in_flight``
    (their sizes): fewer than ``max_batches`` and at most ``max_bytes`` in all, or nothing in flight."""
    return not in_flight or (len(in_flight) < max_batches and sum(in_flight) + size <= max_bytes)


class IngestProcess:
    """The worker's side: starts the process, hands it batches in order and replays what it observed."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_failure: Callable[[str], None],
        observe: StepObserver | None = None,
        in_flight: int = 4,
        in_flight_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._settings = settings
        self._on_failure = on_failure
        self._observe = observe or StepObserver()
        self._in_flight = in_flight
        self._in_flight_bytes = in_flight_bytes
        self._sizes: collections.deque[int] = collections.deque()  # payload bytes of each batch in flight
        self._moved: asyncio.Event | None = None  # set whenever a batch is folded
        self._process: Any = None  # multiprocessing.context.SpawnProcess once started
        self._batches: Connection | None = None
        self._closing = False

    def start(self) -> None:
        """Start the process if it has not been; from the event loop's thread (see ``agents.child_process``)."""
        if self._process is not None:
            return
        loop = asyncio.get_running_loop()
        self._moved = asyncio.Event()
        context = multiprocessing.get_context("spawn")
        batches_in, batches_out = context.Pipe(duplex=False)
        replies_in, replies_out = context.Pipe(duplex=False)
        self._process = context.Process(
            target=serve,
            args=(self._settings.to_env(), batches_in, replies_out, os.getpid()),
            name="segstream-ingest",
            daemon=True,
        )
        self._process.start()
        batches_in.close()
        replies_out.close()
        self._batches = batches_out
        threading.Thread(
            target=self._read_replies, args=(replies_in, loop), name="ingest-replies", daemon=True
        ).start()
        log.info("ingest process started (pid %d)", self._process.pid)

    async def submit(self, messages: list[RawMessage]) -> None:
        """Hand one batch over; returns at once unless ``in_flight`` batches are already waiting."""
        self.start()
        assert self._batches is not None
        size = sum(len(m.value or b"") + len(m.key or b"") for m in messages)
        await self._until(lambda: admits(self._sizes, size, self._in_flight, self._in_flight_bytes))
        self._sizes.append(size)
        self._batches.send(
            ("batch", [(m.topic, m.partition, m.offset, m.key, m.value, m.arrived_ms) for m in messages])
        )

    async def drain(self) -> None:
        """Return once every batch handed over has been folded (at once if none is in flight)."""
        await self._until(lambda: not self._sizes)

    def close(self, timeout_s: float = 10.0) -> None:
        """Close the batches' pipe (the process ends after the batches it has) and wait for it."""
        if self._process is None or self._batches is None:
            return
        self._closing = True
        self._batches.close()
        self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def _read_replies(self, replies: Connection, loop: asyncio.AbstractEventLoop) -> None:
        """The replies' reader thread: each reply is handled on the event loop, in order."""
        while True:
            try:
                reply = replies.recv()
            except (EOFError, OSError):
                loop.call_soon_threadsafe(self._ended)
                return
            loop.call_soon_threadsafe(self._on_reply, reply)

    def _on_reply(self, reply: Any) -> None:
        match reply:
            case ("done", int(batches), list(observations)):
                for name, args in observations:
                    if name in _OBSERVATIONS:
                        getattr(self._observe, name)(*args)
                for _ in range(batches):
                    self._sizes.popleft()
                assert self._moved is not None
                self._moved.set()
            case ("failed", str(text)):
                self._on_failure(f"a purchases batch failed in the ingest process:\n{text}")
            case _:
                self._on_failure(f"unexpected message from the ingest process: {reply!r}")

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            assert self._moved is not None  # started: something is in flight
            self._moved.clear()
            await self._moved.wait()

    def _ended(self) -> None:
        if not self._closing:
            self._process.join(1.0)  # its exit code, once the kernel has it
            self._on_failure(f"the ingest process ended (exit code {self._process.exitcode})")


def serve(env: dict[str, str], batches: Connection, replies: Connection, worker_pid: int) -> None:
    """The process's entry point: run the step on each batch until the worker closes the pipe."""
    settings = start_child("seg-ingest", "ingest", env, worker_pid)
    import uvloop  # the worker's loop too (mode.loop)

    uvloop.run(_serve(settings, batches, replies))


async def _serve(settings: Settings, batches: Connection, replies: Connection) -> None:
    import faust

    from agents.batch_publish import faust_batch_publisher
    from agents.kafka_login import broker_credentials

    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue[Any] = asyncio.Queue()

    def read_batches() -> None:  # a thread: the next batch crosses the pipe while this one folds
        while True:
            try:
                message = batches.recv()
            except (EOFError, OSError):
                loop.call_soon_threadsafe(arrived.put_nowait, None)
                return
            loop.call_soon_threadsafe(arrived.put_nowait, message)

    # an app never started: its producer settings (acks, SASL/TLS, partitioner) are the worker's
    app = faust.App(
        settings.app_id, broker=settings.kafka_url, broker_credentials=broker_credentials(settings)
    )
    observed: list[tuple[str, tuple[Any, ...]]] = []

    def record(name: str) -> Callable[..., None]:
        if name == "retry":  # an error's own attributes may not pickle: its text does
            return lambda operation, error: observed.append((name, (operation, RuntimeError(repr(error)))))
        return lambda *args: observed.append((name, args))

    step = build_purchase_step(
        settings,
        faust_batch_publisher(app, own_producer=True),
        StepObserver(**{name: record(name) for name in _OBSERVATIONS}),
    )
    threading.Thread(target=read_batches, name="ingest-batches", daemon=True).start()
    try:
        await fold_in_order(arrived, step.step, replies.send, observed)
    finally:
        with contextlib.suppress(Exception):
            await app.on_before_shutdown.send()  # stops the producer
        with contextlib.suppress(Exception):
            await step.close()


async def fold_in_order(
    arrived: asyncio.Queue[Any],
    step: Callable[[list[RawMessage]], Awaitable[None]],
    reply: Callable[[tuple[Any, ...]], None],
    observed: list[tuple[str, tuple[Any, ...]]],
) -> None:
    """Run ``step`` on the batches of ``arrived`` in order until a None (the pipe closed) or a failure.

    The batches that queued up while a step ran are folded as one: under a backlog the step's
    per-call costs (Redis round trips, the fold's call) are paid once for several batches, and a
    quiet stream's batch is folded alone, at once. Each step's reply says how many batches it
    folded and what it observed; a failure is replied with its traceback, and nothing after it runs.
    """
    ended = False
    while not ended:
        waiting = [await arrived.get()]
        while not arrived.empty():
            waiting.append(arrived.get_nowait())
        if waiting[-1] is None:
            ended = True
            waiting.pop()
        if not waiting:
            return
        try:
            await step([RawMessage(*m) for _, raw in waiting for m in raw])
        except Exception:
            reply(("failed", traceback.format_exc()))
            return  # the worker exits too; its successor resumes from Redis's consumed offsets
        reply(("done", len(waiting), observed[:]))
        observed.clear()

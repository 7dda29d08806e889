"""One clock tick in: profiles re-evaluated up to it, changes published, state saved.

Kept free of Faust (like ``agents.ingest``) so the unit tests drive it with the memory stores;
``agents.worker`` feeds it from the one-partition ``clock`` topic, so one worker at a time
evaluates. The order per tick makes a crash at any point harmless:

1. wait until the workers have processed every ``purchases`` message the tick covers;
2. advance the evaluator in chunks of ``CHUNK_STEPS`` grid steps (a long catch-up streams its
   changes out as it goes). For each chunk: read the agenda entries it covers and the logs of
   those customers, evaluate, publish its changes and alerts, save the state, then remove those
   agenda entries and compact those logs up to the clock. Memory holds one chunk's entries and
   logs, however long the catch-up.

A crash before a save re-runs that chunk from the saved state and republishes the same
changes and alerts (same ``change_id``, ``alert_id``): delivery to subscribers is at least once, content deterministic.
A crash after a save but before the removal re-evaluates those customers from their logs at the
saved clock, which changes nothing.

Two clock owners for a moment (a worker dropped from the group while its tick ran, and the worker
that took the clock over) cannot interleave their saves: each save follows the generation its
evaluator was loaded from or last saved, and is refused once another one saved
(``EvaluatorKeeper.save``); the refused one evaluates the tick again from that save, once
(``segstream_evaluator_saves_superseded``), then gives up like any failed tick.

With evaluation hosts (``SEGSTREAM_EVALUATION_HOSTS``) step 2 is the model owner's advance over
the hosts in the workers (:class:`agents.partition_owner.EvaluationOwner`, the same chunks in the
same order), and refit ticks are refused (the owner does not refit on request yet).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from agents import metrics
from agents.due_reads import read_due
from agents.evaluator_keeper import AnyEvaluator, EvaluatorKeeper, PublishChanges
from agents.partition_owner import EvaluationOwner
from agents.split_saves import PartitionRows
from state.customer.profile_store import ProfileStore, Superseded
from state.customer.profiles import Change
from state.customer.rfm import DAY_MS
from state.customer.store import CustomerStore, parse_agenda_member
from state.evaluator.config import EvaluatorConfig
from state.evaluator.instants import chunk_campaign_events, chunk_targets, first_due_ms
from state.evaluator.read_model import ChurnReport
from streams.outputs import Tick

__all__ = [
    "CHUNK_STEPS",
    "EndOffsets",
    "EvaluatorObserver",
    "PartitionCount",
    "PublishChanges",
    "SegmentEvaluator",
    "TickRefused",
    "TickReport",
]

log = logging.getLogger(__name__)
CHUNK_STEPS = 31
PartitionCount = Callable[[str], int | None]
"""How many partitions a topic has (None: not known yet)."""
EndOffsets = Callable[[str, list[int]], Awaitable[dict[int, int]]]
"""The end offset of each of these partitions of a topic (those it could learn)."""


async def _unknown_ends(_topic: str, _partitions: list[int]) -> dict[int, int]:
    return {}


class TickRefused(Exception):
    """A tick the evaluator will not act on; ``str()`` is the reason. Raised before anything changed."""


@dataclass(frozen=True, slots=True)
class TickReport:
    as_of_ms: int
    instants: int
    changes: int
    alerts: int
    customers_due: int | None  # None: counted by the evaluation hosts, not here
    seconds: float


@dataclass(frozen=True, slots=True)
class EvaluatorObserver:
    """Where an evaluator reports: the worker's metrics by default; the evaluation process
    (``agents.evaluation_process``) forwards each report to the worker that started it."""

    change_latency: Callable[[Sequence[int], Sequence[int], int], None] = metrics.observe_change_latency
    churn: Callable[[ChurnReport], None] = metrics.observe_churn
    clock: Callable[[int], None] = metrics.EVALUATOR_CLOCK.set
    superseded: Callable[[], None] = metrics.EVALUATOR_SAVES_SUPERSEDED.inc


class _Latency:
    """Receipt -> change and event time -> change of the purchases behind each published change."""

    def __init__(self, entries: Sequence[tuple[str, int]], received: dict[str, int]) -> None:
        self._by_customer: dict[str, list[tuple[int, int | None]]] = {}  # customer -> (score, receipt)
        for member, score in entries:
            self._by_customer.setdefault(parse_agenda_member(member), []).append(
                (score, received.get(member))
            )

    def published(
        self, changes: Sequence[Change], previous: int | None, target: int, observe: EvaluatorObserver
    ) -> None:
        """``changes`` are acked: observe the purchases of this chunk (agenda scores in (previous, target])."""
        now_ms = int(time.time() * 1000)
        received: list[int] = []
        occurred: list[int] = []
        for customer in {c.customer_id for c in changes}:
            for score, receipt in self._by_customer.get(customer, ()):
                if (previous is None or previous < score) and score <= target:
                    occurred.append(score - 1)  # agenda score = occurred_at_ms + 1
                    if receipt is not None:
                        received.append(receipt)
        observe.change_latency(received, occurred, now_ms)


class SegmentEvaluator:
    """Turns clock ticks into change events; caches the evaluator between ticks."""

    def __init__(
        self,
        config: EvaluatorConfig,
        store: CustomerStore,
        profiles: ProfileStore,
        publish: PublishChanges,
        purchases_topic: str,
        poll_s: float = 0.05,
        campaigns_topic: str = "campaign-events",
        partition_count: PartitionCount = lambda _topic: None,
        end_offsets: EndOffsets | None = None,
        wait_timeout_s: float = 120.0,
        observe: EvaluatorObserver | None = None,
        split_rows: PartitionRows | None = None,
        owner: EvaluationOwner | None = None,
    ) -> None:
        """``split_rows``: evaluate split (``SEGSTREAM_EVALUATION_SPLIT``, ``agents.split_saves``),
        each partition's rows saved there; None: the one evaluator. ``owner``: the model owner of
        the hosts in the workers (``SEGSTREAM_EVALUATION_HOSTS``), which then evaluates instead."""
        self.config = config
        self._store = store
        self._profiles = profiles
        self._publish = publish
        self._topic = purchases_topic
        self._campaigns_topic = campaigns_topic
        self._poll_s = poll_s
        self._partition_count = partition_count
        self._end_offsets = end_offsets or _unknown_ends
        self._wait_timeout_s = wait_timeout_s
        self._observe = observe or EvaluatorObserver()
        self._lock = asyncio.Lock()  # ticks from the clock topic and the watermark clock take turns
        self.owner = owner
        self.keeper = EvaluatorKeeper(
            config,
            store,
            profiles,
            publish,
            split_rows=split_rows,
            on_churn=self._observe.churn,
            on_clock=self._observe.clock,
        )

    async def on_tick(self, tick: Tick) -> TickReport | None:
        """Evaluate up to ``tick.as_of_ms``; None if the clock is already there.

        Raises :class:`TickRefused`, having changed nothing, when the tick names a partition the
        topic does not have or its offsets are not processed within ``wait_timeout_s``.
        """
        async with self._lock:
            return await self._again_if_superseded(lambda: self._on_tick(tick))

    async def evaluate_late(self, source: str) -> TickReport | None:
        """Evaluate events that arrived after the clock had passed them, if there are any.

        A late event waits for the next instant; when nothing newer comes (a backlog of old events
        folded after the clock caught up with the newest one), no instant would ever come, so the
        live clocks (watermark, wall) call this: it evaluates one instant 1 ms past the clock.
        Ticks mode does not: there only ticks move the clock.
        """
        async with self._lock:
            if self.owner is not None:
                clock = await self.owner.clock_ms()
            else:
                clock = (await self.keeper.current()).clock_ms
            if clock is None:
                return None
            if await self._store.earliest_due(clock) is None and not await self._profiles.campaign_due(clock):
                return None
            return await self._again_if_superseded(lambda: self._on_tick(Tick(clock + 1, {}, source)))

    async def _again_if_superseded(
        self, tick: Callable[[], Awaitable[TickReport | None]]
    ) -> TickReport | None:
        """Run ``tick``; if one of its saves was refused because another evaluator saved meanwhile
        (two clock owners for a moment: one replaced while its tick ran), run it once more from
        what that one saved (the keeper dropped this evaluator). Refused again, or with the model
        owner (whose epochs fence it): raised, and the worker exits as on any failed tick."""
        try:
            return await tick()
        except Superseded as exc:
            if self.owner is not None:
                raise
            self._observe.superseded()
            log.warning("%s; evaluating the tick again from that save", exc)
            return await tick()

    async def _on_tick(self, tick: Tick) -> TickReport | None:
        started = time.perf_counter()
        await self._check_partitions(self._topic, tick.offsets)
        await self._check_partitions(self._campaigns_topic, tick.campaign_offsets)
        await self._wait_until_consumed(self._topic, tick.offsets)
        await self._wait_until_consumed(self._campaigns_topic, tick.campaign_offsets)
        if self.owner is not None:
            return await self._owner_tick(self.owner, tick, started)
        evaluator = await self.keeper.current()
        if evaluator.clock_ms is not None and tick.as_of_ms <= evaluator.clock_ms:
            if not tick.refit:
                return None
            await self._refit(evaluator)
            return TickReport(evaluator.clock_ms, 0, 0, 0, 0, time.perf_counter() - started)
        earliest = await self._store.earliest_due(tick.as_of_ms)
        campaign = await self._profiles.campaign_due(tick.as_of_ms)
        instants = evaluator.instants(tick.as_of_ms, first_due_ms(earliest, campaign))
        targets = chunk_targets(instants, tick.as_of_ms, CHUNK_STEPS)
        customers_due: set[str] = set()
        try:
            total, alerted, previous = 0, 0, None
            for target in targets:
                # one chunk's agenda entries, receipts and logs at a time: a catch-up tick over
                # years of events holds a chunk's worth, not all of them (7.3 GB at 1M customers)
                due = await read_due(self._store, target, previous)
                entries = due.entries
                latency = _Latency(entries, await self._store.received([m for m, _ in entries]))
                events = chunk_campaign_events(campaign, previous, target, target == targets[-1])
                changes = await asyncio.to_thread(evaluator.advance, target, due.logs, events, due.bases)
                alerts = evaluator.take_alerts()
                await self._publish(changes, alerts)
                latency.published(changes, previous, target, self._observe)
                await self.keeper.save(evaluator)
                # evaluated and saved: a crash from here on re-evaluates these customers from their
                # logs at the saved clock, which changes nothing (the same as a late event)
                await self._store.done(entries)
                if evaluator.clock_ms is not None:  # the events the clock has passed need no log any more
                    await self._store.compact(due.customers, evaluator.clock_ms // DAY_MS * DAY_MS)
                customers_due.update(due.customers)
                total, alerted, previous = total + len(changes), alerted + len(alerts), target
            if tick.refit:
                await self._refit(evaluator)
        except BaseException:
            self.keeper.drop()  # the in-memory evaluator may be half-way: reload from the store
            raise
        await self._profiles.campaign_done(campaign)
        return TickReport(
            tick.as_of_ms, len(instants), total, alerted, len(customers_due), time.perf_counter() - started
        )

    async def _owner_tick(self, owner: EvaluationOwner, tick: Tick, started: float) -> TickReport | None:
        """Step 2 by the model owner and the hosts; None if the clock is already there."""
        clock = await owner.clock_ms()
        if tick.refit:
            raise TickRefused("a refit tick: the evaluation hosts' model owner does not refit on request yet")
        if clock is not None and tick.as_of_ms <= clock:
            return None
        advanced = await owner.advance(tick.as_of_ms)
        self._observe.clock(tick.as_of_ms)
        return TickReport(
            tick.as_of_ms,
            advanced.instants,
            advanced.changes,
            advanced.alerts,
            None,
            time.perf_counter() - started,
        )

    async def _refit(self, evaluator: AnyEvaluator) -> None:
        model = await asyncio.to_thread(evaluator.refit)
        log.info("lifetime model refitted on request: %s", model.describe() if model else "too little data")
        await self.keeper.save(evaluator)

    async def _check_partitions(self, topic: str, offsets: dict[int, int]) -> None:
        """Refuse offsets of partitions the topic does not have, or beyond a partition's end.

        Only offsets not processed yet are looked up (an end-offset request through Faust's
        consumer thread took ~1.5 s per topic in ``make bench-scale``); an offset the workers have
        processed is inside the log, and the tick has nothing to wait for there."""
        if not offsets:
            return
        count = self._partition_count(topic)
        unknown = sorted(p for p in offsets if count is not None and p >= count)
        if unknown:
            raise TickRefused(f"offsets name partition {unknown[0]} of {topic}, which has {count} partitions")
        consumed = await self._store.consumed(topic)
        pending = {p: o for p, o in offsets.items() if o > consumed.get(p, 0)}
        if not pending:  # processed already, so within the log: no round trip to the broker
            return
        ends = await self._end_offsets(topic, sorted(pending))
        beyond = sorted(p for p, o in pending.items() if p in ends and o > ends[p])
        if beyond:
            p = beyond[0]
            raise TickRefused(
                f"offset {offsets[p]:,} of {topic} partition {p} is beyond its end ({ends[p]:,})"
            )

    async def _wait_until_consumed(self, topic: str, offsets: dict[int, int]) -> None:
        """Wait until the workers processed ``offsets``; refuse the tick if they stall.

        A long backlog is fine as long as it moves: the tick is refused only when a partition it
        waits for has made no progress for ``wait_timeout_s``.
        """
        waited_since = time.monotonic()
        last_report = waited_since
        progress: dict[int, tuple[int, float]] = {}  # partition -> (processed, when that last moved)
        while True:
            consumed = await self._store.consumed(topic)
            behind = {p: o for p, o in offsets.items() if o > 0 and consumed.get(p, 0) < o}
            if not behind:
                return
            now = time.monotonic()
            for p in behind:
                seen = progress.get(p)
                if seen is None or seen[0] != consumed.get(p, 0):
                    progress[p] = (consumed.get(p, 0), now)
                elif now - seen[1] > self._wait_timeout_s:
                    raise TickRefused(
                        f"{topic} partition {p} made no progress towards offset {behind[p]:,} for "
                        f"{self._wait_timeout_s:g} s (processed: {seen[0]:,}; SEGSTREAM_TICK_WAIT_TIMEOUT_S)"
                    )
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                log.warning(
                    "clock tick waits for %s %s to be processed (partition: end offset) for %.0f s; consumed: %s",
                    topic,
                    behind,
                    last_report - waited_since,
                    consumed,
                )
            await asyncio.sleep(self._poll_s)

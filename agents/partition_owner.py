"""The model owner of the partitioned evaluation, over its Kafka link, and its epochs.

The owner (:func:`evaluate_up_to`) cuts an advance into the one evaluator's chunks and runs each
through its :class:`OwnerSide` with the partition hosts (``agents.partition_host``); when every
partition applied the last instant it publishes its own alerts and saves (:class:`OwnerSaves`),
sends :class:`Saved` and waits for every :class:`Closed`. This is ``agents/split_saves.py``'s
order across processes: the owner's save, then each partition's, then the closed churn batches'
parts dropped, so a host is at most one save behind the owner.

Restarts go by *epochs*. An owner (:class:`EvaluationOwner`) begins one from what is saved: it
loads the split (``agents.split_saves.load_split``: every partition's rows, a partition one save
behind caught up from the owner's versions log and its changes and alerts published again),
and saves it whole in a new epoch (a number larger than any before, taken first), so every
partition is at the owner's clock. Saves name their epoch and are refused (``Superseded``) once a
newer one began: an owner's against the namespace's last epoch, a host's against the epoch its
partition was last saved in; so an owner or host that was replaced but still runs cannot write
over its successor (a replaced owner's advance raises ``Superseded``). Every message carries its
epoch; the owner ignores answers of other epochs. An owner whose partitions stay silent for
``wait_s`` (a host died, or joined after the chunk began) begins a new epoch and runs the chunk
again, up to ``restarts`` times before it gives up with :class:`PartitionsSilent` naming them. So
a dead host's partition resumes wherever a host for it runs next, and a new owner resumes where
the last one saved. A chunk abandoned before the owner's save published nothing (hosts publish
at its end), so it is not published twice.

Campaign events due by an advance go with the chunk that covers them (a late one with the last),
to the instant after they occurred (:func:`instant_campaign_events`), as the one evaluator applies
them; they leave the agenda once the advance is saved everywhere. In the workers
(``SEGSTREAM_EVALUATION_HOSTS``) the clock's owner runs the owner in its evaluation process and
each worker hosts the ``purchases`` partitions it is assigned (``agents.host_pool``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from agents.evaluator_keeper import PublishChanges
from agents.partition_link import Link, LinkTimeout
from agents.split_saves import PartitionRows, load_split, owner_form, save_owner, save_split, split_form
from state.customer.partitions import customer_partition
from state.customer.profile_store import ProfileStore
from state.customer.store import CustomerStore
from state.evaluator.config import EvaluatorConfig
from state.evaluator.instants import chunk_campaign_events, due_at_instants, first_due_ms
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_protocol import Chunk, Message, OwnerSide, cut_chunks
from state.models.alerts import Alert
from streams.campaign_contract import CampaignEvent

__all__ = [
    "Advanced",
    "EvaluationOwner",
    "OwnerSaves",
    "PartitionsSilent",
    "RedisOwnerSaves",
    "evaluate_up_to",
    "instant_campaign_events",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Advanced:
    """What an advance did: chunks and instants evaluated, changes and alerts published."""

    chunks: int
    instants: int
    changes: int
    alerts: int


class PartitionsSilent(Exception):
    """The owner waited ``wait_s`` for partitions that did not answer; ``str()`` names them."""


class OwnerSaves(Protocol):
    """The owner's end of a chunk."""

    async def save(self, chunk: Chunk, alerts: Sequence[Alert]) -> None:
        """Publish the owner's ``alerts`` of the chunk, then save the owner (before any partition)."""

    async def closed(self, chunk: Chunk) -> None:
        """Every partition saved the chunk: what waits for that (the closed churn batches' parts)."""


class RedisOwnerSaves:
    """The owner's saves in Redis, as ``agents/split_saves.py``'s (its own part only), in ``epoch``."""

    def __init__(
        self,
        owner: ModelOwner,
        partitions: int,
        profiles: ProfileStore,
        rows: PartitionRows,
        publish: PublishChanges,
        epoch: int | None = None,
    ) -> None:
        self._owner, self._partitions, self._epoch = owner, partitions, epoch
        self._profiles, self._rows, self._publish = profiles, rows, publish
        self._removed: Sequence[int] = ()  # the churn batches the last save closed

    async def save(self, chunk: Chunk, alerts: Sequence[Alert]) -> None:
        await self._publish([], alerts)
        partition_of = partial(customer_partition, partitions=self._partitions)
        form = await asyncio.to_thread(owner_form, self._owner, partition_of, self._partitions)
        await save_owner(form, self._owner.clock_ms or 0, self._profiles, self._rows, self._epoch)
        self._removed = form.parts.batches_removed

    async def closed(self, chunk: Chunk) -> None:
        if self._removed:
            await self._rows.drop_batch_parts(self._partitions, self._removed)
        self._removed = ()


def instant_campaign_events(
    chunk: Chunk, last: bool, events: Sequence[CampaignEvent]
) -> dict[int, list[CampaignEvent]]:
    """The campaign events of ``events`` that ``chunk`` applies (the ``last`` of an advance also
    the late ones: ``state.evaluator.instants.chunk_campaign_events``, as the one evaluator cuts
    them), by the instant that applies each: the first after it occurred."""
    mine = chunk_campaign_events(events, chunk.after_ms, chunk.up_to_ms, last)
    if not mine:
        return {}
    return {
        at: applied for at, _, applied in due_at_instants(chunk.instants, [], mine, chunk.up_to_ms) if applied
    }


async def evaluate_up_to(
    link: Link,
    epoch: int,
    owner: ModelOwner,
    partitions: int,
    to_ms: int,
    earliest_event_ms: int | None,
    chunk_steps: int,
    wait_s: float,
    saves: OwnerSaves,
    campaign_events: Sequence[CampaignEvent] = (),
) -> Advanced:
    """Advance every partition to ``to_ms`` chunk by chunk (``earliest_event_ms``: the earliest
    event due, for a first evaluation), each chunk saved and closed everywhere before the next;
    ``campaign_events``: those due by ``to_ms`` (``ProfileStore.campaign_due``)."""
    chunks = cut_chunks(owner.instants(to_ms, earliest_event_ms), to_ms, chunk_steps)
    changes = alerts = 0
    for chunk in chunks:
        events = instant_campaign_events(chunk, chunk is chunks[-1], campaign_events)
        side = OwnerSide(owner, partitions, chunk, events)
        await _exchange(link, epoch, side, side.start(), lambda s: s.done, wait_s)
        await saves.save(chunk, side.alerts)
        await _exchange(link, epoch, side, side.close(), lambda s: s.closed, wait_s)
        await saves.closed(chunk)
        published = side.published
        changes, alerts = changes + published[0], alerts + published[1] + len(side.alerts)
    return Advanced(len(chunks), sum(len(c.instants) for c in chunks), changes, alerts)


async def _exchange(
    link: Link,
    epoch: int,
    side: OwnerSide,
    first: list[Message],
    until: Callable[[OwnerSide], bool],
    wait_s: float,
) -> None:
    """Send ``first``, then take the hosts' answers of ``epoch`` and send the owner's until ``until(side)``."""
    for message in first:
        await link.send(epoch, message)
    deadline = asyncio.get_running_loop().time() + wait_s
    while not until(side):
        try:
            answered, message = await link.receive(max(0.001, deadline - asyncio.get_running_loop().time()))
        except LinkTimeout:
            raise PartitionsSilent(
                f"no answer from partitions {side.waiting_for()} for {wait_s:g} s "
                f"(chunk up to {side.chunk.up_to_ms})"
            ) from None
        if answered != epoch:
            continue  # a host's answer to an owner before
        for answer in side.receive(message):
            await link.send(epoch, answer)
        deadline = asyncio.get_running_loop().time() + wait_s  # the hosts are answering


class EvaluationOwner:
    """The model owner of the partitioned evaluation in a process: (re)starts an epoch from what is
    saved and advances every partition over ``link``."""

    def __init__(
        self,
        config: EvaluatorConfig,
        partitions: int,
        store: CustomerStore,
        profiles: ProfileStore,
        rows: PartitionRows,
        publish: PublishChanges,
        link: Link,
        *,
        chunk_steps: int,
        wait_s: float,
        restarts: int = 3,
    ) -> None:
        self.config, self.partitions = config, partitions
        self._store, self._profiles, self._rows, self._publish = store, profiles, rows, publish
        self._link, self._chunk_steps, self._wait_s, self._restarts = link, chunk_steps, wait_s, restarts
        self.owner: ModelOwner | None = None  # None: an epoch is to begin
        self.epoch = 0
        self.epochs = 0  # how many this owner began

    async def begin_epoch(self) -> None:
        """Load the split as saved, partitions one save behind caught up (their changes and alerts
        published again), save it whole, and take a new epoch."""
        epoch = await self._profiles.next_epoch()  # from here an older owner's saves are refused
        split = await load_split(self.config, self.partitions, self._store, self._profiles, self._rows)
        caught_up, alerts = split.caught_up, split.take_alerts()
        if caught_up or alerts:
            await self._publish(caught_up, alerts)
        if split.clock_ms is not None:  # every partition at the owner's clock, and in this epoch
            form = await asyncio.to_thread(split_form, split)
            await save_split(form, split.clock_ms, self._profiles, self._rows, epoch)
        self.owner, self.epoch = split.owner, epoch
        self.epochs += 1

    async def clock_ms(self) -> int | None:
        """The clock as saved (an epoch begun first when none runs)."""
        if self.owner is None:
            await self.begin_epoch()
        assert self.owner is not None
        return self.owner.clock_ms

    async def advance(self, to_ms: int) -> Advanced:
        """Evaluate every partition up to ``to_ms``, with the campaign events due. Begins a new
        epoch first when none runs, and again when partitions stay silent (up to ``restarts`` times)."""
        restarts = 0
        while True:
            if self.owner is None:
                await self.begin_epoch()
            owner = self.owner
            assert owner is not None
            earliest = await self._store.earliest_due(to_ms)  # agenda score: occurred + 1
            campaign = await self._profiles.campaign_due(to_ms)
            saves = RedisOwnerSaves(
                owner, self.partitions, self._profiles, self._rows, self._publish, self.epoch
            )
            try:
                advanced = await evaluate_up_to(
                    self._link,
                    self.epoch,
                    owner,
                    self.partitions,
                    to_ms,
                    first_due_ms(earliest, campaign),
                    self._chunk_steps,
                    self._wait_s,
                    saves,
                    campaign,
                )
            except PartitionsSilent as exc:
                self.owner = None  # half-way through a chunk: begin again from what is saved
                restarts += 1
                if restarts > self._restarts:
                    raise
                log.warning("%s; beginning a new epoch from what is saved (after epoch %d)", exc, self.epoch)
            except BaseException:
                self.owner = None  # abandoned half-way (cancelled, or a save failed): reload next time
                raise
            else:
                await self._profiles.campaign_done(campaign)
                return advanced

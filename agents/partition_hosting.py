"""The owner's and the hosts' loops of the partitioned evaluation, over their Kafka links.

A host (:class:`PartitionHost`) answers the owner's messages: at a new :class:`Chunk` it reads its
own partition's agenda entries and their customers' logs from the store (``agents.due_reads``) and
folds them instant by instant (``state.evaluator.instants``); advances and versions go to its
:class:`HostSide`, and what that answers goes back on the link; at :class:`Saved` it publishes its
changes and alerts, saves its rows and takes its entries out, then answers :class:`Closed`. The
owner (:func:`evaluate_up_to`) cuts an advance into the one evaluator's chunks and runs each
through its :class:`OwnerSide`; when every partition applied the last instant it publishes its
own alerts and saves (:class:`OwnerSaves`), sends :class:`Saved` and waits for every
:class:`Closed`. This is ``agents/split_saves.py``'s order across processes: the owner's save,
then each partition's, then the closed churn batches' parts dropped, so a host is at most one save
behind the owner.

Restarts go by *epochs*. An owner (:class:`EvaluationOwner`) begins one from what is saved: it
loads the split (``agents.split_saves.load_split``: every partition's rows, a partition one save
behind caught up from the owner's versions log and its changes and alerts published again),
and saves it whole in a new epoch (a number larger than any before, taken first), so every
partition is at the owner's clock. Saves name their epoch and are refused (``Superseded``) once a
newer one began: an owner's against the namespace's last epoch, a host's against the epoch its
partition was last saved in; so an owner or host that was replaced but still runs cannot write
over its successor (a replaced owner's advance raises ``Superseded``; a replaced host drops what
it holds and waits for the new epoch). Every message carries its epoch; a host loads its partition's rows and
the owner's saved versions at the first chunk of a newer epoch, drops what it held, and ignores
older epochs' messages; the owner ignores answers of other epochs. An owner whose partitions stay
silent for ``wait_s`` (a host died, or joined after the chunk began) begins a new epoch and runs
the chunk again, up to ``restarts`` times before it gives up with :class:`PartitionsSilent`
naming them. So a dead host's partition resumes wherever a host for it runs next, and a new
owner resumes where the last one saved. A chunk abandoned before the owner's save published
nothing (hosts publish at its end), so it is not published twice.

What this does not do yet (stage three's next steps, ``docs/design-notes.md``): run inside the
workers that own the ``purchases`` partitions.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from agents.due_reads import DueChunk, read_due
from agents.partition_link import LinkTimeout
from agents.split_saves import PartitionRows, load_split, owner_form, save_owner, save_split, split_form
from state.customer.partitions import customer_partition
from state.customer.profile_store import ProfileStore, Superseded
from state.customer.profiles import Change
from state.customer.rfm import DAY_MS, CustomerState
from state.customer.store import CustomerStore
from state.evaluator.config import EvaluatorConfig
from state.evaluator.instants import due_at_instants, log_folds
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_evaluator import PartitionEvaluator
from state.evaluator.partition_messages import VersionsLog
from state.evaluator.partition_protocol import (
    Chunk,
    Closed,
    HostSide,
    Message,
    OwnerSide,
    Saved,
    cut_chunks,
)
from state.models.alerts import Alert
from state.models.clusters import SegmentModel

__all__ = [
    "Advanced",
    "EvaluationOwner",
    "OwnerSaves",
    "PartitionHost",
    "PartitionsSilent",
    "RedisOwnerSaves",
    "chunk_states",
    "evaluate_up_to",
]

Publish = Callable[[Sequence[Change], Sequence[Alert]], Awaitable[None]]

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


class Link(Protocol):
    """What the loops use of :class:`agents.partition_link.PartitionLink`."""

    async def send(self, epoch: int, message: Message) -> None: ...

    async def receive(self, timeout_s: float) -> tuple[int, Message]: ...


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
        publish: Publish,
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


async def chunk_states(
    store: CustomerStore, partition: int, chunk: Chunk
) -> tuple[DueChunk, dict[int, list[CustomerState]]]:
    """Partition ``partition``'s entries of ``chunk`` read from ``store``, and its customers' states
    due at each instant."""
    due = await read_due(store, chunk.up_to_ms, chunk.after_ms, partition=partition)
    folds = log_folds(due.logs, due.bases)
    states = {at: mine for at, mine, _ in due_at_instants(chunk.instants, folds, (), chunk.up_to_ms)}
    return due, states


class PartitionHost:
    """Partition ``partition``'s host: loads its partition at each new epoch, reads its own entries,
    answers the owner, and at the end of each chunk publishes, saves its rows and takes its entries out."""

    def __init__(
        self,
        config: EvaluatorConfig,
        partition: int,
        store: CustomerStore,
        profiles: ProfileStore,
        rows: PartitionRows,
        publish: Publish,
    ) -> None:
        self.config, self.partition = config, partition
        self._store, self._profiles, self._rows, self._publish = store, profiles, rows, publish
        self.epoch: int | None = None  # the owner's epoch this host loaded at (None: not loaded)
        self.side: HostSide | None = None
        self._due: DueChunk | None = None  # the chunk in progress's entries and logs
        self._published = (0, 0)  # changes and alerts published at the last chunk's end

    async def serve(self, link: Link, poll_s: float = 1.0) -> None:
        """Answer the owner on ``link`` until cancelled."""
        while True:
            try:
                epoch, message = await link.receive(poll_s)
            except LinkTimeout:
                continue  # a quiet owner: between ticks
            for answer in await self.answer(epoch, message):
                await link.send(epoch, answer)

    async def answer(self, epoch: int, message: Message) -> list[Message]:
        """What the host sends back for ``message`` of ``epoch``, having done what it asks."""
        if self.epoch is None or epoch > self.epoch:
            if not isinstance(message, Chunk) or not await self._load(epoch):
                return []  # an epoch begun without this host: its next one will have it
        elif epoch < self.epoch:
            return []  # an owner's before the last
        side = self.side
        assert side is not None  # loaded
        if isinstance(message, Chunk):
            if side.begin(message):
                self._due, states = await chunk_states(self._store, self.partition, message)
                side.states_at = states.__getitem__
            return []
        if isinstance(message, Saved):
            if side.closes(message):
                try:
                    self._published = await self._close(side, message.up_to_ms)
                except Superseded as exc:  # a newer owner began from what was saved: drop what we hold
                    log.warning("partition %d: %s; waiting for the new epoch", self.partition, exc)
                    self.epoch, self.side, self._due = None, None, None
                    return []
            return [Closed(self.partition, message.up_to_ms, *self._published)]
        return side.receive(message)

    async def _load(self, epoch: int) -> bool:
        """The partition as saved, with the owner's models; False if its rows are not at the owner's
        clock (the owner catches them up at its next epoch)."""
        saved = await self._profiles.load(with_rows=False)
        clock, records = await self._rows.load(self.partition)
        log_bytes = saved.versions_log if saved is not None else None
        if clock != (saved.clock_ms if saved is not None else None) or (saved is not None and not log_bytes):
            log.warning(
                "partition %d saved at %s, not at the owner's clock: waiting for its next epoch",
                self.partition,
                clock,
            )
            return False
        evaluator = PartitionEvaluator.restore(
            self.config, self.partition, records, None, None, SegmentModel(self.config.cluster)
        )
        if log_bytes:
            versions: VersionsLog = pickle.loads(log_bytes)
            for adopted in [versions.base, *versions.instants]:
                if adopted is not None:
                    evaluator.adopt(adopted)
        self.epoch, self.side, self._due = epoch, HostSide(evaluator), None
        return True

    async def _close(self, side: HostSide, up_to_ms: int) -> tuple[int, int]:
        """Publish, save the rows, take the entries out: the order of ``agents/split_saves.py``;
        how many changes and alerts were published."""
        due = self._due
        assert due is not None  # a chunk was begun (HostSide.closes checked it)
        changes, side.changes = side.changes, []
        alerts = side.take_alerts()
        await self._publish(changes, alerts)
        await self._rows.save(self.partition, up_to_ms, side.evaluator.take_dirty(), self.epoch)
        await self._store.done(due.entries)  # evaluated and saved: the one evaluator's step
        await self._store.compact(due.customers, up_to_ms // DAY_MS * DAY_MS)
        self._due = None
        return len(changes), len(alerts)


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
) -> Advanced:
    """Advance every partition to ``to_ms`` chunk by chunk (``earliest_event_ms``: the earliest
    event due, for a first evaluation), each chunk saved and closed everywhere before the next."""
    chunks = cut_chunks(owner.instants(to_ms, earliest_event_ms), to_ms, chunk_steps)
    changes = alerts = 0
    for chunk in chunks:
        side = OwnerSide(owner, partitions, chunk)
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
        publish: Publish,
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

    async def advance(self, to_ms: int) -> Advanced:
        """Evaluate every partition up to ``to_ms``. Begins a new epoch first when none runs, and
        again when partitions stay silent (up to ``restarts`` times)."""
        restarts = 0
        while True:
            if self.owner is None:
                await self.begin_epoch()
            owner = self.owner
            assert owner is not None
            earliest = await self._store.earliest_due(to_ms)  # agenda score: occurred + 1
            saves = RedisOwnerSaves(
                owner, self.partitions, self._profiles, self._rows, self._publish, self.epoch
            )
            try:
                return await evaluate_up_to(
                    self._link,
                    self.epoch,
                    owner,
                    self.partitions,
                    to_ms,
                    None if earliest is None else earliest - 1,
                    self._chunk_steps,
                    self._wait_s,
                    saves,
                )
            except PartitionsSilent as exc:
                self.owner = None  # half-way through a chunk: begin again from what is saved
                restarts += 1
                if restarts > self._restarts:
                    raise
                log.warning("%s; beginning epoch %d from what is saved", exc, self.epoch + 1)

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
behind the owner. A partition silent for ``wait_s`` stops the owner with
:class:`PartitionsSilent`, naming who it waited for.

What this does not do yet (stage three's next steps, ``docs/design-notes.md``): run inside the
workers that own the ``purchases`` partitions, and restart or move a partition's host (a host
catching up from the owner's versions log, the owner rebuilding its replica).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Protocol

from agents.due_reads import DueChunk, read_due
from agents.partition_link import LinkTimeout
from agents.split_saves import PartitionRows, owner_form, save_owner
from state.customer.partitions import customer_partition
from state.customer.profile_store import ProfileStore
from state.customer.profiles import Change
from state.customer.rfm import DAY_MS, CustomerState
from state.customer.store import CustomerStore
from state.evaluator.instants import due_at_instants, log_folds
from state.evaluator.model_owner import ModelOwner
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

__all__ = [
    "OwnerSaves",
    "PartitionHost",
    "PartitionsSilent",
    "RedisOwnerSaves",
    "chunk_states",
    "evaluate_up_to",
]

Publish = Callable[[Sequence[Change], Sequence[Alert]], Awaitable[None]]


class PartitionsSilent(Exception):
    """The owner waited ``wait_s`` for partitions that did not answer; ``str()`` names them."""


class Link(Protocol):
    """What the loops use of :class:`agents.partition_link.PartitionLink`."""

    async def send(self, message: Message) -> None: ...

    async def receive(self, timeout_s: float) -> Message: ...


class OwnerSaves(Protocol):
    """The owner's end of a chunk."""

    async def save(self, chunk: Chunk, alerts: Sequence[Alert]) -> None:
        """Publish the owner's ``alerts`` of the chunk, then save the owner (before any partition)."""

    async def closed(self, chunk: Chunk) -> None:
        """Every partition saved the chunk: what waits for that (the closed churn batches' parts)."""


class RedisOwnerSaves:
    """The owner's saves in Redis, as ``agents/split_saves.py``'s (its own part only)."""

    def __init__(
        self,
        owner: ModelOwner,
        partitions: int,
        profiles: ProfileStore,
        rows: PartitionRows,
        publish: Publish,
    ) -> None:
        self._owner, self._partitions = owner, partitions
        self._profiles, self._rows, self._publish = profiles, rows, publish
        self._removed: Sequence[int] = ()  # the churn batches the last save closed

    async def save(self, chunk: Chunk, alerts: Sequence[Alert]) -> None:
        await self._publish([], alerts)
        partition_of = partial(customer_partition, partitions=self._partitions)
        form = await asyncio.to_thread(owner_form, self._owner, partition_of, self._partitions)
        await save_owner(form, self._owner.clock_ms or 0, self._profiles, self._rows)
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
    """Partition ``side.evaluator.partition``'s host: reads its own entries, answers the owner,
    and at the end of each chunk publishes, saves its rows and takes its entries out."""

    def __init__(self, side: HostSide, store: CustomerStore, rows: PartitionRows, publish: Publish) -> None:
        self.side = side
        self._store, self._rows, self._publish = store, rows, publish
        self._due: DueChunk | None = None  # the chunk in progress's entries and logs

    async def serve(self, link: Link, poll_s: float = 1.0) -> None:
        """Answer the owner on ``link`` until cancelled."""
        while True:
            try:
                message = await link.receive(poll_s)
            except LinkTimeout:
                continue  # a quiet owner: between ticks
            for answer in await self.answer(message):
                await link.send(answer)

    async def answer(self, message: Message) -> list[Message]:
        """What the host sends back for ``message``, having done what it asks."""
        side, partition = self.side, self.side.evaluator.partition
        if isinstance(message, Chunk):
            if side.begin(message):
                self._due, states = await chunk_states(self._store, partition, message)
                side.states_at = states.__getitem__
            return []
        if isinstance(message, Saved):
            if side.closes(message):
                await self._close(message.up_to_ms)
            return [Closed(partition, message.up_to_ms)]
        return side.receive(message)

    async def _close(self, up_to_ms: int) -> None:
        """Publish, save the rows, take the entries out: the order of ``agents/split_saves.py``."""
        side, due = self.side, self._due
        assert due is not None  # a chunk was begun (HostSide.closes checked it)
        changes, side.changes = side.changes, []
        await self._publish(changes, side.take_alerts())
        await self._rows.save(side.evaluator.partition, up_to_ms, side.evaluator.take_dirty())
        await self._store.done(due.entries)  # evaluated and saved: the one evaluator's step
        await self._store.compact(due.customers, up_to_ms // DAY_MS * DAY_MS)
        self._due = None


async def evaluate_up_to(
    link: Link,
    owner: ModelOwner,
    partitions: int,
    to_ms: int,
    earliest_event_ms: int | None,
    chunk_steps: int,
    wait_s: float,
    saves: OwnerSaves,
) -> int:
    """Advance every partition to ``to_ms`` chunk by chunk (``earliest_event_ms``: the earliest
    event due, for a first evaluation), each chunk saved and closed everywhere before the next;
    the number of chunks."""
    chunks = cut_chunks(owner.instants(to_ms, earliest_event_ms), to_ms, chunk_steps)
    for chunk in chunks:
        side = OwnerSide(owner, partitions, chunk)
        await _exchange(link, side, side.start(), lambda s: s.done, wait_s)
        await saves.save(chunk, side.alerts)
        await _exchange(link, side, side.close(), lambda s: s.closed, wait_s)
        await saves.closed(chunk)
    return len(chunks)


async def _exchange(
    link: Link, side: OwnerSide, first: list[Message], until: Callable[[OwnerSide], bool], wait_s: float
) -> None:
    """Send ``first``, then take the hosts' answers and send the owner's until ``until(side)``."""
    for message in first:
        await link.send(message)
    while not until(side):
        try:
            message = await link.receive(wait_s)
        except LinkTimeout:
            raise PartitionsSilent(
                f"no answer from partitions {side.waiting_for()} for {wait_s:g} s "
                f"(chunk up to {side.chunk.up_to_ms})"
            ) from None
        for answer in side.receive(message):
            await link.send(answer)

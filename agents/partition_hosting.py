"""The owner's and the hosts' loops of the partitioned evaluation, over their Kafka links.

A host (:func:`serve_partition`) answers the owner's messages: at a new :class:`Chunk` it reads its
own partition's agenda entries and their customers' logs from the store (``agents.due_reads``) and
folds them instant by instant (``state.evaluator.instants``); every other message goes to its
:class:`HostSide`, and what that answers goes back on the link. The owner (:func:`evaluate_up_to`)
cuts an advance into the one evaluator's chunks and runs each through its :class:`OwnerSide`
until every partition applied every instant; a partition silent for ``wait_s`` stops it with
:class:`PartitionsSilent`, naming who it waited for.

What this does not do yet (stage three's next steps, ``docs/design-notes.md``): publish and save
at the end of a chunk, run inside the workers that own the ``purchases`` partitions, and move a
partition's host on a rebalance.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from agents.due_reads import read_due
from agents.partition_link import LinkTimeout
from state.customer.rfm import CustomerState
from state.customer.store import CustomerStore
from state.evaluator.instants import due_at_instants, log_folds
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_protocol import Chunk, HostSide, Message, OwnerSide, cut_chunks
from state.models.alerts import Alert

__all__ = ["PartitionsSilent", "chunk_states", "evaluate_up_to", "serve_partition"]


class PartitionsSilent(Exception):
    """The owner waited ``wait_s`` for partitions that did not answer; ``str()`` names them."""


class Link(Protocol):
    """What the loops use of :class:`agents.partition_link.PartitionLink`."""

    async def send(self, message: Message) -> None: ...

    async def receive(self, timeout_s: float) -> Message: ...


async def chunk_states(store: CustomerStore, partition: int, chunk: Chunk) -> dict[int, list[CustomerState]]:
    """Partition ``partition``'s customers' states due at each instant of ``chunk``, read from ``store``."""
    due = await read_due(store, chunk.up_to_ms, chunk.after_ms, partition=partition)
    folds = log_folds(due.logs, due.bases)
    return {at: states for at, states, _ in due_at_instants(chunk.instants, folds, (), chunk.up_to_ms)}


async def serve_partition(link: Link, side: HostSide, store: CustomerStore, poll_s: float = 1.0) -> None:
    """Answer the owner on ``link`` as partition ``side.evaluator.partition``'s host, until cancelled."""
    partition = side.evaluator.partition
    while True:
        try:
            message = await link.receive(poll_s)
        except LinkTimeout:
            continue  # a quiet owner: between ticks
        if isinstance(message, Chunk):
            if side.begin(message):
                side.states_at = (await chunk_states(store, partition, message)).__getitem__
            continue
        for answer in side.receive(message):
            await link.send(answer)


async def evaluate_up_to(
    link: Link,
    owner: ModelOwner,
    partitions: int,
    to_ms: int,
    earliest_event_ms: int | None,
    chunk_steps: int,
    wait_s: float,
    on_chunk: Callable[[Chunk], Awaitable[None]] | None = None,
) -> list[Alert]:
    """Advance every partition to ``to_ms`` chunk by chunk (``earliest_event_ms``: the earliest
    event due, for a first evaluation); the drift alerts the owner raised. ``on_chunk`` runs after
    each chunk, once every partition applied its last instant."""
    alerts: list[Alert] = []
    for chunk in cut_chunks(owner.instants(to_ms, earliest_event_ms), to_ms, chunk_steps):
        side = OwnerSide(owner, partitions, chunk)
        for message in side.start():
            await link.send(message)
        while not side.done:
            try:
                message = await link.receive(wait_s)
            except LinkTimeout:
                raise PartitionsSilent(
                    f"no answer from partitions {side.waiting_for()} for {wait_s:g} s "
                    f"(chunk up to {chunk.up_to_ms})"
                ) from None
            for answer in side.receive(message):
                await link.send(answer)
        alerts += side.alerts
        if on_chunk is not None:
            await on_chunk(chunk)
    return alerts

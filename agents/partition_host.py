"""A partition host of the partitioned evaluation: partition ``n``'s evaluator, wherever it runs.

A host (:class:`PartitionHost`) answers the model owner's messages on its link
(``agents.partition_link``): at a new :class:`Chunk` it reads its own partition's agenda entries and
their customers' logs from the store (``agents.due_reads``) and folds them instant by instant
(``state.evaluator.instants``); advances and versions go to its :class:`HostSide`, and what that
answers goes back on the link; at :class:`Saved` (the owner saved) it publishes its changes and
alerts, saves its rows and takes its entries out, then answers :class:`Closed`
(``agents/split_saves.py``'s order across processes). It loads its partition's rows and the
owner's saved versions at the first chunk of each newer epoch, drops what it held, and ignores
older epochs' messages; a save refused because its epoch was superseded (``Superseded``) makes it
drop what it holds and wait for the new epoch. The owner's side and the epochs:
``agents.partition_owner``.
"""

from __future__ import annotations

import logging
import pickle

from agents.due_reads import DueChunk, read_due
from agents.evaluator_keeper import PublishChanges
from agents.partition_link import Link, LinkTimeout
from agents.split_saves import PartitionRows
from state.customer.profile_store import ProfileStore, Superseded
from state.customer.rfm import DAY_MS, CustomerState
from state.customer.store import CustomerStore
from state.evaluator.config import EvaluatorConfig
from state.evaluator.instants import due_at_instants, log_folds
from state.evaluator.partition_evaluator import PartitionEvaluator
from state.evaluator.partition_messages import VersionsLog
from state.evaluator.partition_protocol import Chunk, Closed, HostSide, Message, Saved
from state.models.clusters import SegmentModel

__all__ = ["PartitionHost", "chunk_states"]

log = logging.getLogger(__name__)


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
        publish: PublishChanges,
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

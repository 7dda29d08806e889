"""The split evaluator's save and load: the model owner's save first, then each partition's rows.

With ``SEGSTREAM_EVALUATION_SPLIT`` the evaluation process runs
:class:`state.evaluator.partitioned.PartitionedEvaluator` (a model owner and one partition
evaluator per evaluation partition, ``docs/design-notes.md``, "Partitioned evaluation") in place
of the one evaluator: the same changes, alerts and models, with each partition's rows saved
under its own hash tag, so no key gathers every customer's row.

A save is the owner's first (its models, clock, cut-points, open churn batches, versions log and
the partition count, one ``MULTI``: :meth:`RedisProfileStore.save
<state.adapters.redis_profiles.RedisProfileStore.save>` with no rows), then each partition's
changed rows and clock (:class:`~state.adapters.redis_partition_rows.RedisPartitionRows`, one
``MULTI`` per partition). A crash between them leaves partitions one save behind the owner, never
ahead. An open churn batch is saved cut too (:mod:`state.evaluator.batch_parts`): its head with
the owner, each partition's part under the partition's tag, written before the owner's save
that names the batch, deleted after the one that closes it. A load restores the partitions from
their own rows and lets them catch up alone from the owner's versions log, with the logs of the
customers due since the log's base (still on the agenda: entries leave it only after every
save); their changes and alerts of those instants are published again (at least once, as after
any crash before a save), their rows saved, and the owner's replica is rebuilt from every
partition's rows.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from state.customer.partitions import customer_partition
from state.customer.profile_store import ProfileStore
from state.customer.store import CustomerStore, parse_agenda_member
from state.evaluator.batch_parts import join_batch, split_batch
from state.evaluator.config import EvaluatorConfig
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_messages import VersionsLog
from state.evaluator.partitioned import PartitionedEvaluator, SplitSave
from state.evaluator.read_model import Summary, summary_record
from state.evaluator.saved import SavedParts
from state.models.online_logistic import PendingBatch

__all__ = [
    "OwnerForm",
    "PartitionRows",
    "SplitForm",
    "load_split",
    "owner_form",
    "save_owner",
    "save_split",
    "split_form",
]


class PartitionRows(Protocol):
    """Where partition evaluators keep their rows and the churn batches' parts (:class:`RedisPartitionRows`)."""

    async def save(
        self, partition: int, clock_ms: int, records: Sequence[Mapping[str, object]], epoch: int | None = None
    ) -> int: ...

    async def load(self, partition: int) -> tuple[int | None, list[dict[str, object]]]: ...

    async def save_batch_parts(self, made_at_ms: int, parts: Sequence[bytes]) -> None: ...

    async def load_batch_parts(self, made_at_ms: int, partitions: int) -> list[bytes | None]: ...

    async def drop_batch_parts(self, partitions: int, made_at: Iterable[int]) -> None: ...

    async def keep_batch_parts(self, partitions: int, open_made_at: Iterable[int]) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class OwnerForm:
    """What a save writes of the model owner, noted as written (built off the event loop)."""

    cutpoints_json: str | None
    parts: SavedParts  # its batches_added are the batches' heads
    batch_parts: list[tuple[int, list[bytes]]]  # the added batches' parts, by partition
    summary: Summary
    summary_record: dict[str, Any]
    log: bytes
    partitions: int


@dataclass(frozen=True, slots=True)
class SplitForm:
    """What a save writes of a split in one process: the owner's, and each partition's changed rows."""

    owner: OwnerForm
    dirty: list[list[dict[str, object]]]  # by partition


def owner_form(owner: ModelOwner, partition_of: Callable[[str], int], partitions: int) -> OwnerForm:
    """The owner's save: a new churn batch is cut by ``partition_of`` into ``partitions`` parts."""
    parts = owner.take_saved_parts()
    batches = {b.made_at_ms: b for b in owner.batches}
    heads, batch_parts = [], []
    for made_at_ms, _ in parts.batches_added:  # a new batch, cut by partition (every 28 days)
        batch = batches[made_at_ms]
        ids = owner.population.ids
        partition = np.fromiter(
            (partition_of(ids[r]) for r in batch.rows.tolist()), np.int64, batch.rows.size
        )
        head, cut = split_batch(batch, partition, partitions)
        heads.append((made_at_ms, _pickle(head)))
        batch_parts.append((made_at_ms, [_pickle(part) for part in cut]))
    return OwnerForm(
        owner.cutpoints.to_json() if owner.cutpoints else None,
        parts._replace(batches_added=heads),
        batch_parts,
        summary := owner.summary(),
        summary_record(summary),
        _pickle(owner.take_log()),
        partitions,
    )


def split_form(split: PartitionedEvaluator) -> SplitForm:
    return SplitForm(owner_form(split.owner, split.partition_of, len(split.partitions)), split.take_dirty())


def _pickle(value: object) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


async def save_owner(
    form: OwnerForm,
    clock_ms: int,
    profiles: ProfileStore,
    rows: PartitionRows,
    epoch: int | None = None,
    *,
    after_generation: int | None = None,
) -> int:
    """The owner's save, a new churn batch's parts first (the save then names it); the new generation.
    Every partition's save comes after it, and a closed batch's parts are dropped after those.
    ``epoch``: refused (``Superseded``) unless it is the namespace's last; ``after_generation``:
    unless the last save is still that one (``ProfileStore.save``)."""
    for made_at_ms, parts in form.batch_parts:
        await rows.save_batch_parts(made_at_ms, parts)
    return await profiles.save(
        clock_ms,
        form.cutpoints_json,
        form.parts.model,
        [],
        form.summary_record,
        batches_added=form.parts.batches_added,
        batches_removed=form.parts.batches_removed,
        versions_log=form.log,
        partitions=form.partitions,
        epoch=epoch,
        after_generation=after_generation,
    )


async def save_split(
    form: SplitForm,
    clock_ms: int,
    profiles: ProfileStore,
    rows: PartitionRows,
    epoch: int | None = None,
    *,
    after_generation: int | None = None,
) -> int:
    """The owner's save, then every partition's (the order a load relies on); the new generation.
    ``epoch``: every part saved in it (a partition saved in it refuses older epochs' saves);
    ``after_generation``: nothing saved (``Superseded``) unless the last save is still that one."""
    generation = await save_owner(
        form.owner, clock_ms, profiles, rows, epoch, after_generation=after_generation
    )
    for partition, records in enumerate(form.dirty):
        await rows.save(partition, clock_ms, records, epoch)
    if form.owner.parts.batches_removed:
        await rows.drop_batch_parts(form.owner.partitions, form.owner.parts.batches_removed)
    return generation


async def load_split(
    config: EvaluatorConfig,
    partitions: int,
    store: CustomerStore,
    profiles: ProfileStore,
    rows: PartitionRows,
) -> PartitionedEvaluator:
    """The split as saved (new if never saved), partitions one save behind caught up: their
    changes in ``caught_up`` and alerts in ``take_alerts`` (to publish again), rows not saved yet."""
    saved = await profiles.load(with_rows=False)
    if saved is None:
        return PartitionedEvaluator(config, partitions)
    loaded = [await rows.load(p) for p in range(partitions)]
    clocks = [clock for clock, _ in loaded]
    log: VersionsLog | None = pickle.loads(saved.versions_log) if saved.versions_log else None
    behind = {p for p, clock in enumerate(clocks) if clock != saved.clock_ms}
    logs, bases = {}, {}
    if behind and saved.clock_ms is not None:
        after = log.base.at_ms if log is not None and log.base is not None else None
        entries = await store.due(saved.clock_ms, after_ms=after)
        due = {parse_agenda_member(m) for m, _ in entries}
        chunk = await store.logs(sorted(c for c in due if customer_partition(c, partitions) in behind))
        logs = {c: chunk_log.entries for c, chunk_log in chunk.items()}
        bases = {c: chunk_log.base for c, chunk_log in chunk.items() if chunk_log.base is not None}
    batches = [(m, _pickle(await _joined(m, head, partitions, rows))) for m, head in saved.batches]
    await rows.keep_batch_parts(partitions, [m for m, _ in saved.batches])  # a crash's leftovers
    split_save = SplitSave(
        saved.clock_ms, saved.cutpoints_json, saved.model, batches, [r for _, r in loaded], clocks, log
    )
    return PartitionedEvaluator.restore(config, split_save, logs=logs, bases=bases)


async def _joined(made_at_ms: int, head: bytes, partitions: int, rows: PartitionRows) -> PendingBatch:
    """The open churn batch made at ``made_at_ms``: the owner's head and every partition's part."""
    parts = await rows.load_batch_parts(made_at_ms, partitions)
    missing = [p for p, part in enumerate(parts) if part is None]
    if missing:
        raise RuntimeError(f"churn batch made at {made_at_ms}: partitions {missing} hold no part of it")
    return join_batch(pickle.loads(head), [pickle.loads(part) for part in parts if part is not None])

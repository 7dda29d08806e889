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
ahead. A load restores them from their own rows and lets them catch up alone from the owner's
versions log, with the logs of the customers due since the log's base (still on the agenda:
entries leave it only after every save); their changes and alerts of those instants are
published again (at least once, as after any crash before a save), their rows saved, and the
owner's replica is rebuilt from every partition's rows.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from state.customer.partitions import customer_partition
from state.customer.profile_store import ProfileStore
from state.customer.store import CustomerStore, parse_agenda_member
from state.evaluator.config import EvaluatorConfig
from state.evaluator.partition_messages import VersionsLog
from state.evaluator.partitioned import PartitionedEvaluator, SplitSave
from state.evaluator.read_model import Summary, summary_record
from state.evaluator.saved import SavedParts

__all__ = ["PartitionRows", "SplitForm", "load_split", "save_split", "split_form"]


class PartitionRows(Protocol):
    """Where partition evaluators keep their rows (:class:`RedisPartitionRows`)."""

    async def save(self, partition: int, clock_ms: int, records: Sequence[Mapping[str, object]]) -> int: ...

    async def load(self, partition: int) -> tuple[int | None, list[dict[str, object]]]: ...


@dataclass(frozen=True, slots=True)
class SplitForm:
    """What a save writes of a split, noted as written (built off the event loop)."""

    cutpoints_json: str | None
    parts: SavedParts
    dirty: list[list[dict[str, object]]]  # by partition
    summary: Summary
    summary_record: dict[str, Any]
    log: bytes


def split_form(split: PartitionedEvaluator) -> SplitForm:
    owner = split.owner
    return SplitForm(
        owner.cutpoints.to_json() if owner.cutpoints else None,
        owner.take_saved_parts(),
        split.take_dirty(),
        summary := owner.summary(),
        summary_record(summary),
        pickle.dumps(owner.take_log(), protocol=pickle.HIGHEST_PROTOCOL),
    )


async def save_split(form: SplitForm, clock_ms: int, profiles: ProfileStore, rows: PartitionRows) -> int:
    """The owner's save, then every partition's (the order a load relies on); the new generation."""
    generation = await profiles.save(
        clock_ms,
        form.cutpoints_json,
        form.parts.model,
        [],
        form.summary_record,
        batches_added=form.parts.batches_added,
        batches_removed=form.parts.batches_removed,
        versions_log=form.log,
        partitions=len(form.dirty),
    )
    for partition, records in enumerate(form.dirty):
        await rows.save(partition, clock_ms, records)
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
    split_save = SplitSave(
        saved.clock_ms, saved.cutpoints_json, saved.model, saved.batches, [r for _, r in loaded], clocks, log
    )
    return PartitionedEvaluator.restore(config, split_save, logs=logs, bases=bases)

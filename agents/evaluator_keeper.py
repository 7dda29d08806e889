"""The worker's evaluator between ticks: reloaded when the store's save moved on, saved after each chunk.

Part of :class:`agents.evaluator.SegmentEvaluator`. The evaluator in memory is the one the store's
last save (its generation) holds; a worker that takes the clock over, or whose save failed (it
drops the evaluator: :meth:`EvaluatorKeeper.drop`), reloads it. A save writes what changed since
the last one: rows, churn batches made and closed, the snapshot if its bytes moved. The one
evaluator saves in one ``MULTI`` (``RedisProfileStore.save``); the split one
(``SEGSTREAM_EVALUATION_SPLIT``) the owner's part first and then each partition's
(``agents.split_saves``), and its load lets partitions a save behind catch up, publishing their
chunk again. A namespace keeps the kind it was first evaluated with (:class:`LayoutMismatch`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from agents.split_saves import PartitionRows, load_split, save_split, split_form
from state.customer.profile_store import ProfileStore
from state.customer.profiles import Change
from state.customer.store import CustomerStore
from state.evaluator.config import EvaluatorConfig
from state.evaluator.evaluate import Evaluator
from state.evaluator.partitioned import PartitionedEvaluator
from state.evaluator.read_model import ChurnReport, Summary, summary_record
from state.evaluator.saved import SavedParts
from state.models.alerts import Alert

__all__ = ["AnyEvaluator", "EvaluatorKeeper", "LayoutMismatch", "PublishChanges"]

AnyEvaluator = Evaluator | PartitionedEvaluator
PublishChanges = Callable[[Sequence[Change], Sequence[Alert]], Awaitable[None]]
"""Publish changes (segment-changes, customer-segments) and alerts; return once Kafka acked them."""


class LayoutMismatch(Exception):
    """The namespace was saved by the other kind of evaluator (one, or split); ``str()`` says which."""


class _SavedForm(NamedTuple):
    cutpoints_json: str | None
    parts: SavedParts
    dirty: list[dict[str, object]]
    summary: Summary
    summary_record: dict[str, Any]


def _saved_form(evaluator: Evaluator) -> _SavedForm:
    """What a save writes of ``evaluator``, noted as written (see ``Evaluator.take_dirty``)."""
    return _SavedForm(
        evaluator.cutpoints.to_json() if evaluator.cutpoints else None,
        evaluator.take_saved_parts(),
        evaluator.take_dirty(),
        summary := evaluator.summary(),
        summary_record(summary),
    )


class EvaluatorKeeper:
    """Loads, caches and saves the worker's evaluator (the one evaluator, or split)."""

    def __init__(
        self,
        config: EvaluatorConfig,
        store: CustomerStore,
        profiles: ProfileStore,
        publish: PublishChanges,
        *,
        split_rows: PartitionRows | None,
        on_churn: Callable[[ChurnReport], None],
        on_clock: Callable[[int], None],
    ) -> None:
        self.config = config
        self._store = store
        self._profiles = profiles
        self._publish = publish
        self._split_rows = split_rows
        self._on_churn = on_churn
        self._on_clock = on_clock
        self.cached: tuple[int, AnyEvaluator] | None = None  # (generation, evaluator)

    def drop(self) -> None:
        """Forget the evaluator in memory (half-way through a chunk): the next use reloads it."""
        self.cached = None

    async def save(self, evaluator: AnyEvaluator) -> None:
        """Save what changed since the last save: rows, batches made and resolved, the snapshot if it
        changed. If the save fails the evaluator is dropped (it noted those parts as written) and the
        next tick reloads from the store.

        A save follows the generation this evaluator was loaded from or last saved: if another
        evaluator saved meanwhile (a clock owner replaced while its tick ran, and its successor),
        it is refused with :class:`state.customer.profile_store.Superseded`, nothing written, so
        the store always holds one evaluator's whole save, never two interleaved."""
        assert self.cached is not None and self.cached[1] is evaluator, "save the evaluator current() gave"
        after = self.cached[0]
        try:
            if isinstance(evaluator, PartitionedEvaluator):
                assert self._split_rows is not None
                split = await asyncio.to_thread(split_form, evaluator)  # pickles and records: off the loop
                generation = await save_split(
                    split, evaluator.clock_ms or 0, self._profiles, self._split_rows, after_generation=after
                )
                summary = split.owner.summary
            else:
                form = await asyncio.to_thread(_saved_form, evaluator)
                generation = await self._profiles.save(
                    evaluator.clock_ms or 0,
                    form.cutpoints_json,
                    form.parts.model,
                    form.dirty,
                    form.summary_record,
                    batches_added=form.parts.batches_added,
                    batches_removed=form.parts.batches_removed,
                    after_generation=after,
                )
                summary = form.summary
        except BaseException:
            self.cached = None
            raise
        self._on_churn(summary.churn)
        self.cached = (generation, evaluator)
        if evaluator.clock_ms is not None:
            self._on_clock(evaluator.clock_ms)  # progress within a long tick

    async def current(self) -> AnyEvaluator:
        """The evaluator as last saved: the cached one while the store's generation is its save's."""
        generation = await self._profiles.generation()
        if self.cached is not None and self.cached[0] == generation:
            return self.cached[1]
        split = await self._profiles.split_partitions() if generation else None
        if generation and (split is not None) != (self._split_rows is not None):
            saved_by = f"split into {split} partitions" if split else "one evaluator"
            raise LayoutMismatch(
                f"this namespace's evaluator state was saved by {saved_by}; set SEGSTREAM_EVALUATION_SPLIT="
                f"{'true' if split else 'false'} (or evaluate into a new namespace)"
            )
        if self._split_rows is not None:
            return await self._load_split(generation)
        saved = await self._profiles.load()
        if saved is None:
            evaluator = Evaluator(self.config)
        else:
            evaluator = Evaluator.restore(
                self.config, saved.clock_ms, saved.cutpoints_json, saved.model, saved.records, saved.batches
            )
        self.cached = (generation, evaluator)
        return evaluator

    async def _load_split(self, generation: int) -> PartitionedEvaluator:
        """The split as saved; a partition one save behind catches up, its changes and alerts of
        those instants published again and its rows saved (``agents.split_saves``)."""
        assert self._split_rows is not None
        partitions = await self._store.eval_partitions()
        split = await load_split(self.config, partitions, self._store, self._profiles, self._split_rows)
        if split.caught_up or split.alerts:
            await self._publish(split.caught_up, split.take_alerts())
            split.caught_up = []
            clock = split.clock_ms or 0
            for partition, records in enumerate(split.take_dirty()):
                await self._split_rows.save(partition, clock, records)
        self.cached = (generation, split)
        return split

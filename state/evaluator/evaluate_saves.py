"""The evaluator's saves and reports: rows and learned models for the store, restore, the summary.

Part of :class:`state.evaluator.evaluate.Evaluator` (:class:`EvaluatorSaves`): what the store must
write since the last save (changed rows, the models' snapshot, the open churn batches; the saved
form itself is :mod:`state.evaluator.saved`'s), an evaluator restored from what the store holds,
and the summary every reader gets (:mod:`state.evaluator.summary`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Self

from state.evaluator.config import EvaluatorConfig
from state.evaluator.evaluate_state import EvaluatorState
from state.evaluator.read_model import Summary
from state.evaluator.saved import (
    BatchEntry,
    SavedModels,
    SavedParts,
    SaveLedger,
    batch_entry,
    models_blob,
    open_batches,
    read_models,
    read_population,
)
from state.evaluator.summary import evaluator_summary
from state.models.clusters import SegmentModel
from state.segments.cutpoints import CutPoints

__all__ = ["EvaluatorSaves"]


class EvaluatorSaves(EvaluatorState):
    """The evaluator's state as the store saves it, restored from it, and summarised."""

    def take_dirty(self) -> list[dict[str, object]]:
        """The rows changed since the last call, as records for the store (clears the set)."""
        records = [self.record(row) for row in sorted(self.dirty)]
        self.dirty.clear()
        return records

    def record(self, row: int) -> dict[str, object]:
        """Row ``row`` as the store keeps it."""
        return self.population.record(row)

    def take_saved_parts(self) -> SavedParts:
        """What the store must write of the learned state since the last call (:class:`SaveLedger`):
        the snapshot if its bytes changed, the churn batches made and those resolved."""
        return self.ledger.take(self.snapshot(), self.batches)

    def snapshot(self) -> bytes:
        """The learned models (clusters, churn, lifetime...) as one blob for the store, without the
        open churn batches (saved apart: :meth:`batch_entries`)."""
        return models_blob(
            SavedModels(
                self.model,
                self.churn,
                (),
                self.lifetime,
                self.campaigns,
                dict(self.held_back),
                self.drift,
                self.cluster_quality,
            )
        )

    def batch_entries(self) -> list[BatchEntry]:
        """Every open churn batch as the store keeps it, oldest first."""
        return [batch_entry(b) for b in self.batches]

    @classmethod
    def restore(
        cls,
        config: EvaluatorConfig,
        clock_ms: int | None,
        cutpoints_json: str | None,
        model: bytes | None,
        records: Sequence[Mapping[str, object]],
        batches: Sequence[BatchEntry] = (),
    ) -> Self:
        """The evaluator saved as ``take_dirty`` records plus clock, cut-points, :meth:`snapshot` and
        the open churn ``batches`` (:meth:`batch_entries`; a snapshot of an older version holds its own).

        The snapshot and the batches are pickles: load only what segstream itself saved.
        """
        saved = read_models(model)
        evaluator = cls(
            config,
            clock_ms=clock_ms,
            cutpoints=CutPoints.from_json(cutpoints_json) if cutpoints_json else None,
            model=saved.segment_model if saved.segment_model is not None else SegmentModel(config.cluster),
            population=read_population(records),
            churn=saved.churn,
            batches=open_batches(saved.batches, batches),
            lifetime=saved.lifetime,
            campaigns=saved.campaigns,
            drift=saved.drift,
        )
        evaluator.held_back.update(saved.held_back)
        evaluator.cluster_quality = saved.cluster_quality
        evaluator.ledger = SaveLedger(batches={made_at_ms for made_at_ms, _ in batches})
        return evaluator

    def summary(self) -> Summary:
        """Every named segment's and cluster's size and profile, with the versions (``GET /segments``);
        ``state.evaluator.read_model.summary_record`` turns it into the document the store saves."""
        return evaluator_summary(
            self.config,
            clock_ms=self.clock_ms,
            cutpoints=self.cutpoints,
            model=self.model,
            churn=self.churn,
            lifetime=self.lifetime,
            book=self.campaigns,
            cluster_quality=self.cluster_quality,
            held_back=self.held_back,
            population=self.population,
        )

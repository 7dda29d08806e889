"""The global half of an instant: one process learns the models from a replica of every buyer's columns.

Partitioned evaluation (``state.evaluator.partition_messages`` says who sends what) leaves to one
:class:`ModelOwner` the steps of :meth:`state.evaluator.evaluate.Evaluator.step` that read the
whole population: the cut-points, the cluster model's learning walk and the assessment of its
versions, the lifetime refits, the churn batches (made and labelled), the uplift figures, the
campaign book and the drift monitors. None of them reads a customer's event log; all of them read
a customer's row. So the owner keeps a *replica* of every row in the one evaluator's row order
(first appearance: instant, then customer id), fed by the partitions' deltas, and runs those
steps unchanged on it: the same models, versions and figures, bit for bit, however the customers
are spread over partitions.

An instant in two calls: :meth:`state_step` with every partition's :class:`StateDelta` (rows
stored, cut-points, learning, refits, churn batches labelled) returns the :class:`Versions`;
:meth:`profile_step` with every partition's :class:`RowUpdates` runs what reads the new profiles
(churn batch, uplift figures, campaign events, drift). The owner is an
:class:`~state.evaluator.evaluate_saves.EvaluatorSaves`, so its summary and snapshot are the one
evaluator's, and runs the one evaluator's own code for the learning, refits and labelling
(:class:`~state.evaluator.evaluate_predictions.EvaluatorPredictions`); its per-customer
predictions are the partitions'.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping, Sequence
from typing import Self, TypeVar

from state.campaigns.descriptors import descriptor_features
from state.evaluator.campaign_step import campaign_step
from state.evaluator.candidates import store_states
from state.evaluator.config import EvaluatorConfig
from state.evaluator.evaluate_predictions import EvaluatorPredictions
from state.evaluator.evaluate_saves import EvaluatorSaves
from state.evaluator.partition_messages import RowUpdates, StateDelta, Versions, VersionsLog, apply_updates
from state.evaluator.prediction_step import (
    churn_batch,
    drift_alerts,
    responder_features,
    scored,
    segment_names,
)
from state.evaluator.saved import BatchEntry
from state.models.alerts import Alert
from state.segments.cutpoints import cutpoints_of
from streams.campaign_contract import CampaignEvent

__all__ = ["ModelOwner"]

T = TypeVar("T")


def _copy(model: T) -> T:
    """``model`` as a partition evaluator receives it: through its serialised form, never shared."""
    copied: T = pickle.loads(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    return copied


class ModelOwner(EvaluatorPredictions, EvaluatorSaves):
    """The models and a replica of every row, advanced by the partitions' deltas (pure: no I/O)."""

    _sent: tuple[int, int, int, bytes] | None = None  # (cluster, churn, response versions, reference)
    _base: Versions | None = None  # every model as of the last take_log (None: none taken yet)
    _log: list[Versions] | None = None  # the Versions sent since the last take_log

    def take_log(self) -> VersionsLog:
        """The versions since the last call (:class:`VersionsLog`), taken with a save of the owner;
        the next log starts from every model as they are now."""
        log = VersionsLog(self._base, tuple(self._log or ()))
        self._base, self._log = self._full_versions(), []
        return log

    def _full_versions(self) -> Versions | None:
        """Every model as of the clock, whether sent since or not (None before the first instant)."""
        if self.clock_ms is None:
            return None
        book = self.campaigns
        return Versions(
            self.clock_ms,
            self.cutpoints,
            False,
            self.model.published_view(),
            self.lifetime,
            _copy(self.churn),
            _copy(book.response),
            descriptor_features([book.reference]),
        )

    def state_step(self, at_ms: int, deltas: Iterable[StateDelta]) -> Versions:
        """Store every partition's states of instant ``at_ms``; learn and publish the instant's versions."""
        pop, stats, old_cp = self.population, self._sorted_columns(), self.cutpoints
        if store_states(pop, stats, [s for d in deltas for s in d.states]).bought:
            version = 1 if old_cp is None else old_cp.version + 1
            self.cutpoints = cutpoints_of(stats, as_of_ms=at_ms, version=version)
        self.clock_ms = at_ms
        model_moved = False
        if self.cutpoints is not None:
            buyers = pop.buyers()
            model_moved = self._learn_clusters(at_ms, buyers)
            self._refit_and_label(at_ms, buyers)
        versions = self._versions(at_ms, model_moved)
        if self._log is None:
            self._log = []
        self._log.append(versions)  # until the next take_log (a save): a chunk's instants
        return versions

    def profile_step(
        self, at_ms: int, updates: Sequence[RowUpdates], campaign_events: Sequence[CampaignEvent] = ()
    ) -> list[Alert]:
        """Apply the rows the partitions wrote at ``at_ms``; run the steps that read profiles.

        Returns the drift alerts of the instant (the partitions raise the customers' alerts).
        """
        if self.cutpoints is None:  # nothing scored yet: as the one evaluator, nothing to do
            return []
        pop, cfg = self.population, self.config
        apply_updates(pop, updates)
        on_grid = at_ms % cfg.step_ms == 0
        buyers = pop.buyers()
        book, churn = self.campaigns, self.churn
        if on_grid and self.lifetime is not None and buyers.size:
            batch_due = at_ms % cfg.churn_every_ms == 0
            uplift = book.response.version and book.uplift is not None and book.uplift.version
            if batch_due or uplift:
                now = scored(pop, self.lifetime, churn, self._segment_index, buyers, at_ms)
                if batch_due:  # raw scores rank; served ones and bands are shown
                    bands = pop.column("band")[buyers].copy()
                    self.batches.append(
                        churn_batch(at_ms, buyers, now, churn, bands, cfg.churn_learn_per_batch)
                    )
                if uplift:
                    reference = book.reference_features(buyers.size)
                    xr = responder_features(at_ms, now, reference, len(churn.segments))
                    book.note_population(at_ms, xr, segment_names(now.segment, churn.segments))
        index = self._segment_index
        campaign_step(at_ms, campaign_events, book, pop, self.lifetime, churn, index)
        if not on_grid:
            return []
        names, segments = self.model.cluster_names(), cfg.preset.segments
        return drift_alerts(at_ms, pop, index, segments, names, self.drift)

    @classmethod
    def rebuild(
        cls,
        config: EvaluatorConfig,
        clock_ms: int | None,
        cutpoints_json: str | None,
        model: bytes | None,
        records: Iterable[Mapping[str, object]],
        batches: Sequence[BatchEntry] = (),
    ) -> Self:
        """The owner restored from its saved models and every partition's rows, read once: the
        replica's rows in the one evaluator's order, the instant each row was created and then
        the customer id (``PartitionEvaluator.take_dirty``'s ``seen_ms``), whatever partition
        holds them; the open churn ``batches`` name rows in that order."""
        ordered = sorted(records, key=lambda r: (int(str(r["seen_ms"])), str(r["customer_id"])))
        rows = [{**r, "row": i} for i, r in enumerate(ordered)]
        owner = cls.restore(config, clock_ms, cutpoints_json, model, rows, batches)
        owner._base, owner._log = owner._full_versions(), []  # the next log starts at the save
        return owner

    def _versions(self, at_ms: int, model_moved: bool) -> Versions:
        """The instant's versions, with each model only if it changed since last sent."""
        book = self.campaigns
        reference = descriptor_features([book.reference])
        now = (self.model.version, self.churn.version, book.response.version, reference.tobytes())
        sent = self._sent
        self._sent = now
        return Versions(
            at_ms,
            self.cutpoints,
            model_moved,
            self.model.published_view() if sent is None or sent[0] != now[0] else None,
            self.lifetime,
            _copy(self.churn) if sent is None or sent[1] != now[1] else None,
            _copy(book.response) if sent is None or sent[2:] != now[2:] else None,
            reference if sent is None or sent[2:] != now[2:] else None,
        )

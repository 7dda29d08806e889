"""The segment evaluator: profiles re-evaluated at event-time instants, one pure step each.

Why instants: scores rank a customer against the population, so evaluating in arrival order
would make the change events depend on the order events arrived in. The evaluator instead
moves an event-time clock over a fixed grid (every ``step_ms``, UTC midnights by default) plus
the instant each clock tick names. At instant ``E`` it sees exactly the events that occurred
before ``E``, so any arrival order (sorted, shuffled, resent) that delivered the same history
before the tick gives the same profiles and the same change events.

At each instant, in this order (:meth:`Evaluator.step`, the coordinator; each step's module says more):

1. customers with events newly before ``E`` get their state from their event log (``purchase``;
   ``state.evaluator.instants`` says who is due at which instant);
2. customers whose R score fell under the current cut-points as time passed are found by a
   range query over the buyers' values kept sorted, not by a scan (``recency_decay``);
3. if any buyer's state changed, a new cut-point version is computed at ``E`` from four ranks of
   each sorted column, and only the buyers it moves across a threshold are re-scored
   (``cutpoint_update``; ``state.evaluator.candidates`` shows why no other score can move);
4. the cluster model learns from the purchasing customers (customer-id order); when it
   publishes a new version everyone is re-assigned (``model_update``); customers keep their
   cluster for ``min_dwell_ms`` of event time before they may switch (hysteresis);
5. every customer whose profile changed yields one :class:`~state.customer.profiles.Change`
   (steps 2 to 5: ``state.evaluator.rescore``);
6. predictions and alerts (``state.evaluator.prediction_step``): lifetime refit, churn batches
   labelled and made, churn bands, overdue buyers and likely responders; for every buyer at a
   grid instant, between grid instants only for the buyers whose state or profile changed;
7. campaign events that occurred before the instant (``state.evaluator.campaign_step``); then, on
   grid instants, segment and cluster drift.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from state.campaigns.campaign_book import CampaignBook
from state.campaigns.response import ResponseModel, response_feature_names
from state.customer.event_log import LogBase, LogEntry, LogFold
from state.customer.profiles import Change
from state.customer.rfm import DAY_MS, CustomerState
from state.evaluator.campaign_step import campaign_step
from state.evaluator.candidates import decayed, threshold_moves
from state.evaluator.cluster_quality import assess_version, keep_latest
from state.evaluator.config import EvaluatorConfig, segment_lookups
from state.evaluator.instants import due_at_instants, evaluation_instants
from state.evaluator.predict import LifetimeModel
from state.evaluator.prediction_step import (
    churn_bands,
    churn_batch,
    drift_alerts,
    likely_responders,
    overdue,
    refit_lifetime,
    resolve_due,
    scored,
    segment_names,
)
from state.evaluator.read_model import AlertGate, Summary
from state.evaluator.rescore import EMPTY, learn, rescore
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
from state.evaluator.summary import alert_gates, evaluator_summary
from state.models.alert_rules import RuleOutcome
from state.models.alerts import Alert, AlertKind
from state.models.churn import ChurnModel
from state.models.churn_features import churn_feature_names
from state.models.clusters import SegmentModel
from state.models.online_logistic import PendingBatch
from state.segments.cutpoints import CutPoints, cutpoints_of
from state.segments.drift import DriftMonitor
from state.segments.order_stats import SortedColumns, Values
from state.segments.population import Population
from streams.campaign_contract import CampaignEvent

__all__ = ["Evaluator", "buyer_values"]

IntArray = npt.NDArray[np.int64]


def buyer_values(population: Population, row: int) -> Values | None:
    """Row ``row``'s (last purchase, frequency, net spend) if a buyer (in the scored population), else None."""
    frequency = int(population.column("frequency")[row])
    if frequency <= 0:
        return None
    return int(population.column("last_ms")[row]), frequency, int(population.column("monetary_cents")[row])


class Evaluator:
    """Profiles of the whole population, advanced by :meth:`advance` (pure: no I/O).

    The coordinator of an instant's steps: it owns the state (population, models, open churn
    batches, alerts raised, rows to save) and calls the steps in order, each in its own module
    with the state it reads passed in, applying what they return.
    """

    def __init__(
        self,
        config: EvaluatorConfig,
        *,
        clock_ms: int | None = None,
        cutpoints: CutPoints | None = None,
        model: SegmentModel | None = None,
        population: Population | None = None,
        churn: ChurnModel | None = None,
        batches: Sequence[PendingBatch] = (),
        lifetime: LifetimeModel | None = None,
        campaigns: CampaignBook | None = None,
        drift: tuple[DriftMonitor, DriftMonitor] | None = None,
    ) -> None:
        self.config = config
        self.clock_ms = clock_ms
        self.cutpoints = cutpoints
        self.model = model or SegmentModel(config.cluster)
        segments = tuple(config.preset.segments)
        self.churn = churn or ChurnModel(names=churn_feature_names(segments), segments=segments)
        # churn predictions awaiting their labels, oldest first
        self.batches: list[PendingBatch] = list(batches)
        self.lifetime = lifetime
        self.campaigns = campaigns or CampaignBook(
            ResponseModel(
                names=response_feature_names(segments), segments=segments, window_ms=config.response_window_ms
            )
        )
        self.population = population or Population()
        # (named segments, clusters): a CUSUM per group and figure on the per-day series
        self.drift = drift or (DriftMonitor(config.drift), DriftMonitor(config.drift))
        self.dirty: set[int] = set()  # rows changed since the store last saved them
        self.ledger = SaveLedger()  # what the store holds of the snapshot and the open batches
        self.alerts: list[Alert] = []  # raised since the last take_alerts
        self.held_back: Counter[str] = Counter()  # crossings a shut model gate kept from alerting
        self.cluster_quality: list[dict[str, object]] = []  # the latest cluster model versions' figures
        self._stats: SortedColumns | None = (
            None  # the buyers' R, F, M values sorted (built when first needed)
        )
        self._names = self.model.cluster_names()  # the names current profiles were published with
        # each (r, f, m) triple's named segment, and as an index into the preset's segments
        self._segment, self._segment_index = segment_lookups(config.preset)

    # ------------------------------------------------------------------ the clock

    def advance(
        self,
        to_ms: int,
        logs: Mapping[str, Sequence[LogEntry]],
        campaign_events: Sequence[CampaignEvent] = (),
        bases: Mapping[str, LogBase] | None = None,
    ) -> list[Change]:
        """Evaluate every instant up to ``to_ms`` given the event logs of the customers due.

        ``logs`` holds, for every customer with an event not yet evaluated, their logged events
        after their compacted log base in ``bases`` if they have one (all their events if not);
        ``campaign_events`` the campaign events not yet evaluated that occurred before
        ``to_ms``, each applied at the first instant after it occurred (a late one at the first
        instant). Returns the changes in instant order, customers in id order within an instant.
        """
        bases = bases or {}
        customers = sorted({c for c, log in logs.items() if log} | set(bases))
        folds = [LogFold(c, logs.get(c, ()), bases.get(c)) for c in customers]
        starts = [at for f in folds if (at := f.next_event_ms()) is not None]
        instants = self.instants(to_ms, min(starts, default=None))
        changes: list[Change] = []
        for at_ms, states, events in due_at_instants(instants, folds, campaign_events, to_ms):
            changes += self.step(at_ms, states, events)
        return changes

    def instants(self, to_ms: int, earliest_event_ms: int | None) -> list[int]:
        """The instants :meth:`advance` evaluates up to ``to_ms``: from the clock, or before a first
        evaluation from the earliest event due (none if there is neither)."""
        start = self.clock_ms if self.clock_ms is not None else earliest_event_ms
        return [] if start is None else evaluation_instants(start, to_ms, self.config.step_ms)

    # ------------------------------------------------------------------ one instant

    def step(
        self, at_ms: int, states: Sequence[CustomerState], campaign_events: Sequence[CampaignEvent] = ()
    ) -> list[Change]:
        """Evaluate instant ``at_ms`` after the customers' ``states`` (as of ``at_ms``) changed."""
        pop, previous, old_cp = self.population, self.clock_ms, self.cutpoints
        stats = self._sorted_columns()
        bought: list[int] = []
        for state in sorted(states, key=lambda s: s.customer_id):
            known = pop.index.get(state.customer_id)
            before = None if known is None else buyer_values(pop, known)
            row, changed = pop.upsert(state)
            if changed:
                self.dirty.add(row)
                stats.update(row, before, buyer_values(pop, row))
                if state.frequency > 0:
                    bought.append(row)
        decayed_rows = EMPTY
        if old_cp is not None and previous is not None:
            decayed_rows = decayed(stats, old_cp.max_age_ms, previous, at_ms)
        buyers = pop.buyers()
        if bought:
            version = 1 if old_cp is None else old_cp.version + 1
            self.cutpoints = cutpoints_of(stats, as_of_ms=at_ms, version=version)
        self.clock_ms = at_ms
        if self.cutpoints is None:
            return []
        bought_rows = np.asarray(bought, dtype=np.int64)
        model_moved = learn(self.model, pop, buyers, at_ms, self.config)
        if model_moved:  # once per new cluster model version
            quality = assess_version(at_ms, pop, self.model, self.campaigns.exposures, self.config.quality)
            self.cluster_quality = keep_latest(
                self.cluster_quality, quality, self.config.quality.versions_kept
            )
        # everyone under a first cut-point version or a new model; otherwise only the buyers whose
        # scores can move (state.evaluator.candidates): the buyers, the decayed, those the cut-points crossed
        if old_cp is None or model_moved:
            candidates = buyers
        else:
            moved = threshold_moves(stats, old_cp, self.cutpoints, at_ms) if bought else EMPTY
            candidates = np.unique(np.concatenate([bought_rows, decayed_rows, moved])).astype(np.int64)
        done = rescore(
            pop,
            self.cutpoints,
            self.model,
            self._segment,
            self._names,
            at_ms,
            candidates,
            bought_rows,
            decayed_rows,
            model_moved=model_moved,
            min_dwell_ms=self.config.min_dwell_ms,
        )
        self.dirty.update(done.written)
        self._names = done.names
        if at_ms % self.config.step_ms == 0:  # a grid instant: the predictions of every buyer
            self._predictions(at_ms, buyers, bought_rows)
        else:  # between grid instants, of the buyers whose state or profile changed
            touched = np.union1d(bought_rows, np.asarray(done.written, dtype=np.int64)).astype(np.int64)
            self._predictions(at_ms, touched, bought_rows)
        index = self._segment_index  # (r, f, m) -> named segment
        campaign_step(at_ms, campaign_events, self.campaigns, pop, self.lifetime, self.churn, index)
        if at_ms % self.config.step_ms == 0:
            names, segments = self.model.cluster_names(), self.config.preset.segments
            self.alerts += drift_alerts(at_ms, pop, index, segments, names, self.drift)
        return done.changes

    def _sorted_columns(self) -> SortedColumns:
        """The buyers' values kept sorted; built from the population the first time (after a restore)."""
        if self._stats is None:
            pop, rows = self.population, self.population.buyers()
            cols = [pop.column(n)[rows] for n in ("last_ms", "frequency", "monetary_cents")]
            self._stats = SortedColumns.of(rows, *cols)
        return self._stats

    # ------------------------------------------------------------------ predictions and alerts

    def _predictions(self, at_ms: int, buyers: IntArray, bought: IntArray) -> None:
        """Refit, label the churn batches due, score ``buyers``, move their bands and raise alerts.

        ``buyers`` is everyone at a grid instant and only the buyers whose state or profile changed
        between grid instants, so a live instant costs what changed: a silent customer's P(alive)
        and churn band move with the clock once per grid step (a UTC day by default).
        """
        cfg, pop, churn, book = self.config, self.population, self.churn, self.campaigns
        on_grid = at_ms % cfg.step_ms == 0
        # refit on schedule; until a first fit succeeds, try weekly
        first_try = self.lifetime is None and at_ms % (7 * DAY_MS) == 0
        if on_grid and (first_try or at_ms % cfg.refit_every_ms == 0):
            self._refit(at_ms, buyers, warm=True)
        resolve_due(self.batches, churn, pop, at_ms, cfg.churn_horizon_ms)
        self._apply(buyers, overdue(pop, at_ms, buyers, bought, cfg.alerts), "overdue")
        if self.lifetime is None or buyers.size == 0:
            return
        now = scored(pop, self.lifetime, churn, self._segment_index, buyers, at_ms)
        if churn.version:  # bands once the model has learned from a resolved batch
            self._apply(buyers, churn_bands(at_ms, buyers, now, pop, churn, cfg.alerts), "churn_risk")
        if on_grid and at_ms % cfg.churn_every_ms == 0:  # raw scores rank; served ones and bands are shown
            bands = pop.column("band")[buyers].copy()
            self.batches.append(churn_batch(at_ms, buyers, now, churn, bands, cfg.churn_learn_per_batch))
        if book.response.version:  # likely responders once the model learned a window
            responders = likely_responders(at_ms, buyers, now, pop, book, len(churn.segments), cfg.alerts)
            self._apply(buyers, responders.outcome, "likely_responder")
            if book.uplift is not None and book.uplift.version and on_grid:
                book.note_population(at_ms, responders.features, segment_names(now.segment, churn.segments))

    def segment_index(self, cols: Mapping[str, IntArray]) -> IntArray:
        """Each row's named segment as an index into the preset's segments (-1: no profile yet)."""
        return np.asarray(self._segment_index[cols["r"], cols["f"], cols["m"]], dtype=np.int64)

    def _apply(self, rows: IntArray, outcome: RuleOutcome, kind: AlertKind) -> None:
        """Write a rule's flag columns for ``rows``, keep its alerts, count what its gate held back."""
        for name, (at, values) in outcome.columns.items():
            self.population.column(name)[rows[at]] = values
            self.dirty.update(rows[at].tolist())
        self.alerts += outcome.alerts
        if outcome.held_back:
            self.held_back[kind] += outcome.held_back

    def _refit(self, at_ms: int, buyers: IntArray, *, warm: bool) -> bool:
        """A new lifetime model version fitted at ``at_ms``; False (version kept) if the data cannot."""
        refit = refit_lifetime(self.population, buyers, at_ms, self.lifetime, warm=warm)
        if refit is not None:
            self.lifetime = refit
        return refit is not None

    def refit(self) -> LifetimeModel | None:
        """Refit the lifetime model at the clock now, full maximum likelihood (``segstream fit``).

        Returns the new version, or None when there is no clock yet or too little data.
        """
        if self.clock_ms is None or not self._refit(self.clock_ms, self.population.buyers(), warm=False):
            return None
        return self.lifetime

    def alert_gates(self) -> dict[str, AlertGate]:
        """Each model-backed alert kind's gate: the model's recent figures, open or shut, alerts held back."""
        return alert_gates(self.config.alerts, self.churn, self.campaigns, self.held_back)

    def take_alerts(self) -> list[Alert]:
        """The alerts raised since the last call, in instant order (clears them)."""
        alerts, self.alerts = self.alerts, []
        return alerts

    # ------------------------------------------------------------------ profiles

    # ------------------------------------------------------------------ persistence and reports

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
    ) -> Evaluator:
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

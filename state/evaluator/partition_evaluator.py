"""The per-customer half of an instant, for the customers of one ``purchases`` partition.

A :class:`PartitionEvaluator` holds its customers' rows (their own :class:`Population`, rows in
first-appearance order like the one evaluator's, so its order is the global order restricted to
the partition) and the buyers' values kept sorted. At each instant it does, for its customers
only, what :meth:`state.evaluator.evaluate.Evaluator.step` does for everyone, apart from the
global steps the :class:`~state.evaluator.model_owner.ModelOwner` runs:

* :meth:`fold`: store the states folded at the instant and say them (:class:`StateDelta`);
* :meth:`apply`: with the owner's :class:`Versions` of the instant, find the rows whose scores
  can move (decayed by the clock, crossed by the new cut-points, buyers; everyone under a first
  cut-point version or a new cluster model), re-score them, predict, run the alert rules, and
  return the changes with the :class:`RowUpdates` of the rows written.

Every step is a range query on this partition's sorted values or a vector operation on its rows:
the same arithmetic row by row as the one evaluator, so the union of the partitions' changes and
alerts is the one evaluator's (``tests/unit/test_partitioned_evaluation.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from state.campaigns.response import ResponseModel
from state.customer.event_log import LogFold
from state.customer.profiles import Change
from state.customer.rfm import CustomerState
from state.evaluator.candidates import buyer_columns, decayed, store_states, to_rescore
from state.evaluator.config import EvaluatorConfig, segment_lookups
from state.evaluator.instants import due_at_instants
from state.evaluator.partition_messages import RowUpdates, StateDelta, Versions, row_updates
from state.evaluator.predict import LifetimeModel
from state.evaluator.prediction_step import churn_bands, likely_responders, overdue, scored, write_flags
from state.evaluator.rescore import EMPTY, rescore
from state.evaluator.saved import read_population
from state.models.alert_rules import RuleOutcome
from state.models.alerts import RULE_ORDER, Alert, AlertKind
from state.models.churn import ChurnModel
from state.models.clusters import SegmentModel
from state.segments.cutpoints import CutPoints
from state.segments.order_stats import SortedColumns
from state.segments.population import Population

__all__ = ["PartitionEvaluator"]

IntArray = npt.NDArray[np.int64]


class PartitionEvaluator:
    """The rows, profiles, predictions and alerts of one partition's customers (pure: no I/O)."""

    def __init__(self, config: EvaluatorConfig, partition: int) -> None:
        self.config = config
        self.partition = partition
        self.population = Population()
        self.stats = SortedColumns()
        self.clock_ms: int | None = None
        self.cutpoints: CutPoints | None = None
        # the owner's models as last sent (the first Versions carries every one)
        self.clusters = SegmentModel(config.cluster)
        self.lifetime: LifetimeModel | None = None
        self.churn: ChurnModel | None = None
        self.response: ResponseModel | None = None
        self.reference: npt.NDArray[np.float64] | None = None
        self.alerts: list[Alert] = []  # raised since the last take_alerts
        # crossings a shut model gate kept from alerting, since the driver took them
        self.held_back: Counter[str] = Counter()
        self.dirty: set[int] = set()  # rows changed since the store last saved them
        # the instant each row was created: with the customer id, the owner's order (restore, rebuild)
        self.seen_ms: list[int] = []
        self._names = self.clusters.cluster_names()
        self._segment, self._segment_index = segment_lookups(config.preset)
        self._bought: list[int] = []  # buyers' rows whose state changed at the instant in progress
        self._written: set[int] = set()  # rows whose profile or flags were written at it

    def fold(self, at_ms: int, states: Sequence[CustomerState]) -> StateDelta:
        """Store this partition's ``states`` folded at ``at_ms``; the delta the owner needs of them."""
        stored = store_states(self.population, self.stats, states)
        self.seen_ms += [at_ms] * len(stored.new)
        self.dirty.update(stored.new, stored.changed)  # a new row is saved even if its state is empty
        self._bought = stored.bought
        return StateDelta(self.partition, at_ms, tuple(sorted(states, key=lambda s: s.customer_id)))

    def apply(self, versions: Versions) -> tuple[list[Change], RowUpdates]:
        """Re-score, predict and alert at the instant of ``versions`` (after :meth:`fold` of it).

        Returns the changes in row order and the rows written, for the owner's replica.
        """
        at_ms, pop, stats = versions.at_ms, self.population, self.stats
        old_cp, previous = self.cutpoints, self.clock_ms
        self._adopt(versions)
        decayed_rows = EMPTY
        if old_cp is not None and previous is not None:
            decayed_rows = decayed(stats, old_cp.max_age_ms, previous, at_ms)
        self.clock_ms, self.cutpoints = at_ms, versions.cutpoints
        if self.cutpoints is None:
            return [], row_updates(pop, [])
        buyers = pop.buyers()
        bought_rows = np.asarray(self._bought, dtype=np.int64)
        # a partition whose customers did not buy still looks for crossings when the version moved
        cp, moved = self.cutpoints, versions.model_moved
        candidates = to_rescore(
            stats, buyers, bought_rows, decayed_rows, old_cp, cp, at_ms, model_moved=moved
        )
        done = rescore(
            pop,
            cp,
            self.clusters,
            self._segment,
            self._names,
            at_ms,
            candidates,
            bought_rows,
            decayed_rows,
            model_moved=moved,
            min_dwell_ms=self.config.min_dwell_ms,
        )
        self._names = done.names
        self._written = set(done.written)
        if at_ms % self.config.step_ms == 0:  # a grid instant: the predictions of every buyer
            self._predictions(at_ms, buyers, bought_rows)
        else:  # between grid instants, of the buyers whose state or profile changed
            touched = np.union1d(bought_rows, np.asarray(done.written, dtype=np.int64)).astype(np.int64)
            self._predictions(at_ms, touched, bought_rows)
        self.dirty |= self._written
        return done.changes, row_updates(pop, sorted(self._written))

    def adopt(self, versions: Versions) -> None:
        """Take the models, cut-points and instant of ``versions`` without evaluating: a restored
        partition evaluator passing an instant its saved rows already include (a
        :class:`~state.evaluator.partition_messages.VersionsLog`'s base, or its instants when the
        partition saved with the owner)."""
        self._adopt(versions)
        self.clock_ms, self.cutpoints = versions.at_ms, versions.cutpoints
        self._names = self.clusters.cluster_names()

    def _adopt(self, versions: Versions) -> None:
        """Take the models the owner sent (those not sent are unchanged)."""
        if versions.clusters is not None:
            self.clusters = versions.clusters
        self.lifetime = versions.lifetime
        if versions.churn is not None:
            self.churn = versions.churn
        if versions.response is not None:
            self.response, self.reference = versions.response, versions.reference

    def _predictions(self, at_ms: int, rows: IntArray, bought: IntArray) -> None:
        """The per-customer part of step 6: overdue, churn bands and likely responders over ``rows``
        (the refits, churn batches and uplift figures are the owner's)."""
        cfg, pop, churn = self.config, self.population, self.churn
        if churn is None or self.response is None or self.reference is None:
            raise RuntimeError("the owner's first Versions carries the churn and response models")
        self._apply(rows, overdue(pop, at_ms, rows, bought, cfg.alerts), "overdue")
        if self.lifetime is None or rows.size == 0:
            return
        now = scored(pop, self.lifetime, churn, self._segment_index, rows, at_ms)
        if churn.version:
            self._apply(rows, churn_bands(at_ms, rows, now, pop, churn, cfg.alerts), "churn_risk")
        if self.response.version:
            reference = np.repeat(self.reference, rows.size, axis=0)
            segments = len(churn.segments)
            outcome = likely_responders(at_ms, rows, now, pop, self.response, reference, segments, cfg.alerts)
            self._apply(rows, outcome.outcome, "likely_responder")

    def _apply(self, rows: IntArray, outcome: RuleOutcome, kind: AlertKind) -> None:
        """Write a rule's flag columns for ``rows``, keep its alerts, count what its gate held back."""
        self._written.update(write_flags(self.population, rows, outcome))
        self.alerts += outcome.alerts
        if outcome.held_back:
            self.held_back[kind] += outcome.held_back

    def catch_up(self, instants: Sequence[Versions], folds: Sequence[LogFold]) -> list[Change]:
        """Re-run ``instants`` (a :class:`~state.evaluator.partition_messages.VersionsLog`'s) for this
        partition's customers alone: fold each instant's states from ``folds`` and apply its
        versions, as the instants ran the first time. Returns the changes; the alerts wait for
        :meth:`take_alerts`, each instant's in the one evaluator's order. What the gates held back
        is dropped: the owner counted it the first time."""
        changes: list[Change] = []
        at = [v.at_ms for v in instants]
        alerts, self.alerts = self.alerts, []
        if at:
            for versions, (at_ms, states, _) in zip(
                instants, due_at_instants(at, folds, (), at[-1]), strict=True
            ):
                self.fold(at_ms, states)
                changes += self.apply(versions)[0]
                alerts += sorted(self.take_alerts(), key=lambda a: (RULE_ORDER[a.kind], a.customer_id))
        self.alerts = alerts
        self.held_back.clear()
        return changes

    def records(self) -> list[dict[str, object]]:
        """Every row as :meth:`take_dirty` gives the changed ones (the owner rebuilds from them)."""
        pop, seen = self.population, self.seen_ms
        return [{**pop.record(row), "seen_ms": seen[row]} for row in range(len(pop))]

    def take_dirty(self) -> list[dict[str, object]]:
        """The rows changed since the last call, as records for the store, each with the instant its
        row was created (``seen_ms``); clears the set."""
        pop, seen = self.population, self.seen_ms
        records = [{**pop.record(row), "seen_ms": seen[row]} for row in sorted(self.dirty)]
        self.dirty.clear()
        return records

    @classmethod
    def restore(
        cls,
        config: EvaluatorConfig,
        partition: int,
        records: Sequence[Mapping[str, object]],
        clock_ms: int | None,
        cutpoints: CutPoints | None,
        clusters: SegmentModel,
    ) -> PartitionEvaluator:
        """The partition evaluator saved as :meth:`take_dirty` records (the latest of each row),
        at the owner's clock and cut-points, with the cluster model its profiles were published
        with (its names); the other models come with the owner's next :class:`Versions`."""
        part = cls(config, partition)
        part.population = read_population(records)
        part.seen_ms = [int(str(r["seen_ms"])) for r in sorted(records, key=lambda r: int(str(r["row"])))]
        part.stats = buyer_columns(part.population)
        part.clock_ms, part.cutpoints = clock_ms, cutpoints
        part.clusters, part._names = clusters, clusters.cluster_names()
        return part

    def take_alerts(self) -> list[Alert]:
        """The alerts raised since the last call (clears them)."""
        alerts, self.alerts = self.alerts, []
        return alerts

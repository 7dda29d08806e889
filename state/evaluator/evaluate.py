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

The coordinator is one class assembled from its parts, each in its own module: the state it owns
(:mod:`state.evaluator.evaluate_state`), the predictions and alerts of step 6 and the lifetime
refits (:mod:`state.evaluator.evaluate_predictions`), the saves, restore and summary
(:mod:`state.evaluator.evaluate_saves`). This module moves the clock and runs an instant's steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from state.customer.event_log import LogBase, LogEntry
from state.customer.profiles import Change
from state.customer.rfm import CustomerState
from state.evaluator.campaign_step import campaign_step
from state.evaluator.candidates import decayed, store_states, to_rescore
from state.evaluator.evaluate_predictions import EvaluatorPredictions
from state.evaluator.evaluate_saves import EvaluatorSaves
from state.evaluator.instants import due_at_instants, log_folds
from state.evaluator.prediction_step import drift_alerts
from state.evaluator.rescore import EMPTY, rescore
from state.segments.cutpoints import cutpoints_of
from streams.campaign_contract import CampaignEvent

__all__ = ["Evaluator"]


class Evaluator(EvaluatorPredictions, EvaluatorSaves):
    """Profiles of the whole population, advanced by :meth:`advance` (pure: no I/O).

    The coordinator of an instant's steps: it owns the state (population, models, open churn
    batches, alerts raised, rows to save: :class:`state.evaluator.evaluate_state.EvaluatorState`)
    and calls the steps in order, each in its own module with the state it reads passed in,
    applying what they return.
    """

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
        folds = log_folds(logs, bases or {})
        starts = [at for f in folds if (at := f.next_event_ms()) is not None]
        instants = self.instants(to_ms, min(starts, default=None))
        changes: list[Change] = []
        for at_ms, states, events in due_at_instants(instants, folds, campaign_events, to_ms):
            changes += self.step(at_ms, states, events)
        return changes

    # ------------------------------------------------------------------ one instant

    def step(
        self, at_ms: int, states: Sequence[CustomerState], campaign_events: Sequence[CampaignEvent] = ()
    ) -> list[Change]:
        """Evaluate instant ``at_ms`` after the customers' ``states`` (as of ``at_ms``) changed."""
        pop, previous, old_cp = self.population, self.clock_ms, self.cutpoints
        stats = self._sorted_columns()
        stored = store_states(pop, stats, states)
        self.dirty.update(stored.changed)
        bought = stored.bought
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
        model_moved = self._learn_clusters(at_ms, buyers)
        # everyone under a first cut-point version or a new model; otherwise only the buyers whose
        # scores can move (state.evaluator.candidates): the buyers, the decayed, those the cut-points crossed
        cp = self.cutpoints
        candidates = to_rescore(
            stats, buyers, bought_rows, decayed_rows, old_cp, cp, at_ms, model_moved=model_moved
        )
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

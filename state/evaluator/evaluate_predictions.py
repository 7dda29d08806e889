"""The evaluator's predictions and alerts at an instant, and the lifetime model's refits.

Part of :class:`state.evaluator.evaluate.Evaluator` (:class:`EvaluatorPredictions`): step 6 of an
instant as the coordinator runs it (the pure steps are :mod:`state.evaluator.prediction_step`'s):
which buyers are scored, the churn batches made and labelled, the alert rules' flag columns
written, the alerts kept and what the model gates held back.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from state.customer.rfm import DAY_MS
from state.evaluator.evaluate_state import EvaluatorState
from state.evaluator.predict import LifetimeModel
from state.evaluator.prediction_step import (
    churn_bands,
    churn_batch,
    likely_responders,
    overdue,
    refit_lifetime,
    resolve_due,
    scored,
    segment_names,
    write_flags,
)
from state.evaluator.read_model import AlertGate
from state.evaluator.summary import alert_gates
from state.models.alert_rules import RuleOutcome
from state.models.alerts import Alert, AlertKind

__all__ = ["EvaluatorPredictions", "IntArray"]

IntArray = npt.NDArray[np.int64]


class EvaluatorPredictions(EvaluatorState):
    """Predictions, alerts and refits of the evaluator's state."""

    def _predictions(self, at_ms: int, buyers: IntArray, bought: IntArray) -> None:
        """Refit, label the churn batches due, score ``buyers``, move their bands and raise alerts.

        ``buyers`` is everyone at a grid instant and only the buyers whose state or profile changed
        between grid instants, so a live instant costs what changed: a silent customer's P(alive)
        and churn band move with the clock once per grid step (a UTC day by default).
        """
        cfg, pop, churn, book = self.config, self.population, self.churn, self.campaigns
        on_grid = at_ms % cfg.step_ms == 0
        self._refit_and_label(at_ms, buyers)
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
            reference = book.reference_features(buyers.size)
            segments = len(churn.segments)
            responders = likely_responders(
                at_ms, buyers, now, pop, book.response, reference, segments, cfg.alerts
            )
            self._apply(buyers, responders.outcome, "likely_responder")
            if book.uplift is not None and book.uplift.version and on_grid:
                book.note_population(at_ms, responders.features, segment_names(now.segment, churn.segments))

    def _refit_and_label(self, at_ms: int, buyers: IntArray) -> None:
        """The lifetime refit on its schedule (over ``buyers``, everyone at a grid instant) and the
        churn batches whose horizon ended: the part of the predictions that reads only the buyers'
        states, so the model owner of a partitioned evaluation runs it before the re-scoring."""
        cfg = self.config
        # refit on schedule; until a first fit succeeds, try weekly
        first_try = self.lifetime is None and at_ms % (7 * DAY_MS) == 0
        if at_ms % cfg.step_ms == 0 and (first_try or at_ms % cfg.refit_every_ms == 0):
            self._refit(at_ms, buyers, warm=True)
        resolve_due(self.batches, self.churn, self.population, at_ms, cfg.churn_horizon_ms)

    def segment_index(self, cols: Mapping[str, IntArray]) -> IntArray:
        """Each row's named segment as an index into the preset's segments (-1: no profile yet)."""
        return np.asarray(self._segment_index[cols["r"], cols["f"], cols["m"]], dtype=np.int64)

    def _apply(self, rows: IntArray, outcome: RuleOutcome, kind: AlertKind) -> None:
        """Write a rule's flag columns for ``rows``, keep its alerts, count what its gate held back."""
        self.dirty.update(write_flags(self.population, rows, outcome))
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

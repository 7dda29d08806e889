"""The segment evaluator: profiles re-evaluated at event-time instants, one pure step each.

Why instants: scores rank a customer against the population, so evaluating in arrival order
would make the change events depend on the order events arrived in. The evaluator instead
moves an event-time clock over a fixed grid (every ``step_ms``, UTC midnights by default) plus
the instant each clock tick names. At instant ``E`` it sees exactly the events that occurred
before ``E``, so any arrival order (sorted, shuffled, resent) that delivered the same history
before the tick gives the same profiles and the same change events.

At each instant, in this order (:meth:`Evaluator.step`):

1. customers with events newly before ``E`` get their state from their event log (``purchase``);
2. customers whose R score fell under the current cut-points as time passed are found by a
   range query over the sorted last-purchase times, not by a scan (``recency_decay``);
3. if any buyer's state changed, a new cut-point version is computed at ``E`` and every buyer
   is re-scored in one vector operation (``cutpoint_update`` for those it moves);
4. the cluster model learns from the purchasing customers (customer-id order); when it
   publishes a new version everyone is re-assigned (``model_update``); customers keep their
   cluster for ``min_dwell_ms`` of event time before they may switch (hysteresis);
5. every customer whose profile changed yields one :class:`~state.profiles.Change`;
6. churn predictions resolve (``state.churn``): those of customers whose last purchase is
   now a horizon old as positives, those of customers who bought as negatives (test, then
   train), and every customer who bought gets a new scored prediction.
"""

from __future__ import annotations

import bisect
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from state.churn import ChurnModel, Pending, churn_features
from state.clusters import ClusterConfig, SegmentModel
from state.cutpoints import CutPoints, compute_cutpoints
from state.features import FEATURE_NAMES
from state.population import NO_CLUSTER, NO_TIME, Population, feature_matrix, summarize
from state.profiles import Change, LogEntry, LogFold, Profile, Reason
from state.rfm import DAY_MS, CustomerState
from state.segments import Preset

__all__ = ["NEVER", "Evaluator", "EvaluatorConfig", "evaluation_instants"]

IntArray = npt.NDArray[np.int64]
_EMPTY: IntArray = np.zeros(0, dtype=np.int64)


NEVER = 2**62


def _evaluator_clusters() -> ClusterConfig:
    # the evaluator publishes on an event-time schedule (``publish_every_ms``), not by count
    return ClusterConfig(k_max=6, publish_every=NEVER)


@dataclass(frozen=True)
class EvaluatorConfig:
    preset: Preset
    cluster: ClusterConfig = field(default_factory=_evaluator_clusters)
    min_dwell_ms: int = 7 * DAY_MS
    step_ms: int = DAY_MS
    learn_per_step: int = 100  # customers of the population the cluster model learns from per instant
    publish_every_ms: int = 28 * DAY_MS  # the cluster model republishes at these grid instants
    churn_horizon_ms: int = 90 * DAY_MS  # silent this long after the last purchase = churned


def evaluation_instants(after_ms: int, to_ms: int, step_ms: int) -> list[int]:
    """Grid instants in ``(after_ms, to_ms)`` and ``to_ms`` itself.

    >>> evaluation_instants(0, 25, 10), evaluation_instants(5, 20, 10), evaluation_instants(9, 9, 10)
    ([10, 20, 25], [10, 20], [])
    """
    if to_ms <= after_ms:
        return []
    first = (after_ms // step_ms + 1) * step_ms
    return [*range(first, to_ms, step_ms), to_ms]


class Evaluator:
    """Profiles of the whole population, advanced by :meth:`advance` (pure: no I/O)."""

    def __init__(
        self,
        config: EvaluatorConfig,
        *,
        clock_ms: int | None = None,
        cutpoints: CutPoints | None = None,
        model: SegmentModel | None = None,
        population: Population | None = None,
        churn: ChurnModel | None = None,
        pending: Mapping[int, Pending] | None = None,
    ) -> None:
        self.config = config
        self.clock_ms = clock_ms
        self.cutpoints = cutpoints
        self.model = model or SegmentModel(config.cluster)
        self.churn = churn or ChurnModel()
        self.pending: dict[int, Pending] = dict(pending or {})  # row -> churn prediction awaiting its label
        self.population = population or Population()
        self.dirty: set[int] = set()  # rows changed since the store last saved them
        self._sorted_last: tuple[IntArray, IntArray] | None = None  # (last times ascending, rows)
        self._names = self.model.cluster_names()  # the names current profiles were published with
        self._segment = {  # all 125 triples, looked up once
            (r, f, m): config.preset.segment_for(r, f, m).segment
            for r in range(1, 6)
            for f in range(1, 6)
            for m in range(1, 6)
        }

    # ------------------------------------------------------------------ the clock

    def advance(self, to_ms: int, logs: Mapping[str, Sequence[LogEntry]]) -> list[Change]:
        """Evaluate every instant up to ``to_ms`` given the full event logs of the customers due.

        ``logs`` holds, for every customer with an event not yet evaluated, all their logged
        events. Returns the changes in instant order, customers in id order within an instant.
        """
        folds = [LogFold(c, log) for c, log in sorted(logs.items()) if log]
        instants = self.instants(to_ms, min((f.log[0].occurred_at_ms for f in folds), default=None))
        due: dict[int, list[LogFold]] = {}
        for fold in folds:
            pending = fold.next_event_ms()
            if pending is not None and instants:
                first = min(bisect.bisect_right(instants, pending), len(instants) - 1)
                due.setdefault(first, []).append(fold)
        changes: list[Change] = []
        for i, at_ms in enumerate(instants):
            states = []
            for fold in due.pop(i, []):
                state = fold.advance(at_ms)
                if state is not None:
                    states.append(state)
                pending = fold.next_event_ms()
                if pending is not None and pending < to_ms:
                    due.setdefault(bisect.bisect_right(instants, pending), []).append(fold)
            changes += self.step(at_ms, states)
        return changes

    def instants(self, to_ms: int, earliest_event_ms: int | None) -> list[int]:
        """The instants :meth:`advance` evaluates up to ``to_ms``: from the clock, or before a first
        evaluation from the earliest event due (none if there is neither)."""
        start = self.clock_ms if self.clock_ms is not None else earliest_event_ms
        return [] if start is None else evaluation_instants(start, to_ms, self.config.step_ms)

    # ------------------------------------------------------------------ one instant

    def step(self, at_ms: int, states: Sequence[CustomerState]) -> list[Change]:
        """Evaluate instant ``at_ms`` after the customers' ``states`` (as of ``at_ms``) changed."""
        pop, previous, old_cp = self.population, self.clock_ms, self.cutpoints
        bought: list[int] = []
        for state in sorted(states, key=lambda s: s.customer_id):
            row, changed = pop.upsert(state)
            if changed:
                self.dirty.add(row)
                if state.frequency > 0:
                    bought.append(row)
        decayed = self._decayed(previous, at_ms) if old_cp is not None and previous is not None else _EMPTY
        buyers = pop.buyers()
        if bought:
            self._sorted_last = None
            last, freq, money = (pop.column(n)[buyers] for n in ("last_ms", "frequency", "monetary_cents"))
            version = 1 if old_cp is None else old_cp.version + 1
            self.cutpoints = compute_cutpoints(last, freq, money, as_of_ms=at_ms, version=version)
        self.clock_ms = at_ms
        if self.cutpoints is None:
            return []
        bought_rows = np.asarray(bought, dtype=np.int64)
        model_moved = self._learn(at_ms, buyers)
        # everyone is re-scored under new cut-points or a new model; otherwise the due and the decayed
        candidates = buyers if bought or model_moved else np.union1d(decayed, bought_rows).astype(np.int64)
        changes = self._rescore(at_ms, candidates, bought_rows, decayed, model_moved)
        if previous is not None:
            self._resolve_churned(previous, at_ms)
        self._predict(at_ms, bought)
        return changes

    def _resolve_churned(self, previous: int, at_ms: int) -> None:
        """Positives: customers whose last purchase became ``churn_horizon_ms`` old in ``(previous, at_ms]``."""
        horizon, pop = self.config.churn_horizon_ms, self.population
        times, rows = self._sorted_buyers()
        lo, hi = np.searchsorted(times, [previous - horizon, at_ms - horizon], "right")
        for row in sorted(rows[lo:hi].tolist(), key=lambda r: pop.ids[r]):
            if (pending := self.pending.pop(row, None)) is not None:
                self.churn.resolve(pending, churned=True)
                self.dirty.add(row)

    def _predict(self, at_ms: int, bought: Sequence[int]) -> None:
        """Negatives for the customers who bought (before the horizon), then their new predictions."""
        pop = self.population
        for row in bought:  # customer-id order
            if (pending := self.pending.pop(row, None)) is not None:
                self.churn.resolve(pending, churned=False)
            profile = pop.profiles[row]
            if profile is None:
                continue
            x = churn_features(pop.state(row), profile, at_ms)
            self.pending[row] = Pending(x, self.churn.score(x), profile.rfm_segment, at_ms)
            self.dirty.add(row)

    def _sorted_buyers(self) -> tuple[IntArray, IntArray]:
        """(last purchase times ascending, their rows), cached until a purchase changes them."""
        if self._sorted_last is None:
            rows = self.population.buyers()
            last = self.population.column("last_ms")[rows]
            order = np.argsort(last, kind="stable")
            self._sorted_last = (last[order], rows[order])
        return self._sorted_last

    def _learn(self, at_ms: int, buyers: IntArray) -> bool:
        """Learn from the next ``learn_per_step`` buyers, walking round the population.

        The model sees the population as it is at each instant, customers of every age, not
        only the ones buying. The walk starts at (points learned so far) mod (buyers), so it
        needs no state of its own. Returns whether a new model version was published.
        """
        before = self.model.version
        count = min(self.config.learn_per_step, buyers.size)
        if count:
            start = self.model.learned % buyers.size
            picked = np.take(buyers, np.arange(start, start + count), mode="wrap")
            for row in feature_matrix(self.population, picked, at_ms).tolist():
                self.model.learn(dict(zip(FEATURE_NAMES, row, strict=True)))
        if self.model.is_ready and at_ms % self.config.publish_every_ms == 0:
            self.model.publish()
        return self.model.version != before

    def _rescore(
        self, at_ms: int, rows: IntArray, bought: IntArray, decayed: IntArray, model_moved: bool
    ) -> list[Change]:
        pop, cp = self.population, self.cutpoints
        assert cp is not None
        if rows.size == 0:
            return []
        age = at_ms - pop.column("last_ms")[rows]
        r = 1 + (age[:, None] <= np.asarray(cp.max_age_ms)[None, :]).sum(axis=1)
        f = 1 + (pop.column("frequency")[rows][:, None] >= np.asarray(cp.min_frequency)[None, :]).sum(axis=1)
        m = 1 + (pop.column("monetary_cents")[rows][:, None] >= np.asarray(cp.min_monetary_cents)).sum(axis=1)
        old_r, old_f, old_m, old_cluster = (pop.column(n)[rows] for n in ("r", "f", "m", "cluster"))
        scores_moved = (r != old_r) | (f != old_f) | (m != old_m)
        # clusters follow an RFM evaluation (purchase, decay, new scores) or a new model, not the
        # mere drift of recency with time, so a quiet day does not reshuffle clusters
        evaluate = scores_moved | model_moved | np.isin(rows, bought) | np.isin(rows, decayed)
        cluster, since = self._clusters(at_ms, rows, evaluate)
        names = self.model.cluster_names()
        changes: list[Change] = []
        bought_set, decayed_set = set(bought.tolist()), set(decayed.tolist())
        moved = scores_moved | (cluster != old_cluster)
        if model_moved:  # a republished model may rename a cluster its members stay in
            renamed = [cid for cid, name in names.items() if self._names.get(cid, name) != name]
            moved |= np.isin(cluster, np.asarray(renamed, dtype=np.int64))
            self._names = names
        for j in np.flatnonzero(moved).tolist():
            row = int(rows[j])
            cid = int(cluster[j])
            rfm = (int(r[j]), int(f[j]), int(m[j]))
            after = Profile(
                *rfm,
                self._segment[rfm],
                None if cid == NO_CLUSTER else cid,
                None if cid == NO_CLUSTER else names[cid],
            )
            before = pop.profiles[row]
            if after == before:
                continue
            reason: Reason
            if row in bought_set:
                reason = "purchase"
            elif row in decayed_set and before is not None and after.r_score != before.r_score:
                reason = "recency_decay"
            elif before is None or rfm != before[:3]:
                reason = "cutpoint_update"
            else:
                reason = "model_update"
            pop.set_profile(row, after, int(since[j]))
            self.dirty.add(row)
            changes.append(Change(pop.ids[row], at_ms, reason, before, after, cp.version, self.model.version))
        return changes

    def _clusters(
        self, at_ms: int, rows: IntArray, evaluate: npt.NDArray[np.bool_]
    ) -> tuple[IntArray, IntArray]:
        """Cluster and since-when of ``rows`` at ``at_ms`` (only ``evaluate`` rows may move), held by the dwell."""
        pop = self.population
        current, since = pop.column("cluster")[rows].copy(), pop.column("since_ms")[rows].copy()
        if not self.model.is_ready or not evaluate.any():
            return current, since
        at = np.flatnonzero(evaluate)
        proposed = self.model.assign_rows(feature_matrix(pop, rows[at], at_ms))
        retired = ~np.isin(current[at], np.asarray(sorted(self.model.cluster_names()), dtype=np.int64))
        dwelt = (since[at] == NO_TIME) | (at_ms - since[at] >= self.config.min_dwell_ms)
        switch = (proposed != current[at]) & (retired | dwelt)
        current[at] = np.where(switch, proposed, current[at])
        since[at] = np.where(switch, at_ms, since[at])
        return current, since

    def _decayed(self, previous: int, at_ms: int) -> IntArray:
        """Buyers whose R score fell in ``(previous, at_ms]`` under the current cut-points.

        R >= s while ``age <= max_age[s]``: the customers crossing a threshold between the two
        instants have their last purchase in ``[previous - max_age, at_ms - max_age)``, a range
        of the sorted last-purchase times, so only they are touched.
        """
        assert self.cutpoints is not None
        times, rows = self._sorted_buyers()
        found = [
            rows[
                np.searchsorted(times, previous - limit, "left") : np.searchsorted(
                    times, at_ms - limit, "left"
                )
            ]
            for limit in self.cutpoints.max_age_ms
        ]
        return np.unique(np.concatenate(found)) if found else _EMPTY

    # ------------------------------------------------------------------ persistence and reports

    def take_dirty(self) -> list[dict[str, object]]:
        """The rows changed since the last call, as records for the store (clears the set)."""
        records = [self.record(row) for row in sorted(self.dirty)]
        self.dirty.clear()
        return records

    def record(self, row: int) -> dict[str, object]:
        """Row ``row`` with its pending churn prediction, as the store keeps it."""
        pending = self.pending.get(row)
        churn = None
        if pending is not None:
            churn = {
                "features": pending.features,
                "score": pending.score,
                "segment": pending.segment,
                "made_at_ms": pending.made_at_ms,
            }
        return {**self.population.record(row), "churn": churn}

    def snapshot(self) -> bytes:
        """The learned models (clusters and churn) as one blob for the store."""
        return pickle.dumps({"segment_model": self.model.snapshot(), "churn_model": self.churn})

    @classmethod
    def restore(
        cls,
        config: EvaluatorConfig,
        clock_ms: int | None,
        cutpoints_json: str | None,
        model: bytes | None,
        records: Sequence[Mapping[str, object]],
    ) -> Evaluator:
        """The evaluator saved as ``take_dirty`` records plus clock, cut-points and :meth:`snapshot`.

        The snapshot is a pickle: load only what segstream itself saved.
        """
        population = Population()
        pending: dict[int, Pending] = {}
        for record in sorted(records, key=lambda r: int(str(r["row"]))):
            population.load_record(dict(record))
            churn = record.get("churn")
            if isinstance(churn, dict):
                row = int(str(record["row"]))
                pending[row] = Pending(
                    dict(churn["features"]),
                    float(churn["score"]),
                    str(churn["segment"]),
                    int(churn["made_at_ms"]),
                )
        models = pickle.loads(model) if model else {}
        return cls(
            config,
            clock_ms=clock_ms,
            cutpoints=CutPoints.from_json(cutpoints_json) if cutpoints_json else None,
            model=SegmentModel.restore(models["segment_model"]) if models else SegmentModel(config.cluster),
            population=population,
            churn=models.get("churn_model"),
            pending=pending,
        )

    def summary(self) -> dict[str, object]:
        """Every named segment's and cluster's size and profile, with the versions (``GET /segments``)."""
        return {
            "as_of_ms": self.clock_ms or 0,
            "cutpoint_version": self.cutpoints.version if self.cutpoints else 0,
            "model_version": self.model.version,
            "preset": self.config.preset.name,
            "churn": {"horizon_days": self.config.churn_horizon_ms / DAY_MS, **self.churn.report()},
            **summarize(
                self.population, self.clock_ms or 0, self.config.preset.segments, self.model.cluster_names()
            ),
        }

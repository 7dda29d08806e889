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
5. every customer whose profile changed yields one :class:`~state.customer.profiles.Change`;
6. predictions (``state.evaluator.predict``): the lifetime model (BG/NBD + Gamma-Gamma) is refitted
   every ``refit_every_ms``; churn prediction batches whose horizon ended get their labels
   (``state.models.churn``: test, then train); every ``churn_every_ms`` all buyers are scored into a
   new batch; every buyer's churn band moves (with hysteresis) and alerts are raised
   (``state.models.alert_rules``);
7. campaign events that occurred before the instant (``state.campaigns.response``): response windows
   that ended get their labels (test, then train); new exposures are scored from the
   customer's features now and the variant; responses mark their exposure; the counters feed
   the A/B readout (``state.campaigns.abtest``); buyers whose response propensity rose past the
   threshold get a ``likely_responder`` alert (with hysteresis). The uplift model
   (``state.campaigns.uplift``) scores and learns the same exposures; on grid instants every buyer's
   estimated uplift for the last described campaign gives the per-segment uplift and the
   suggested target list (``CampaignBook.note_population``).
"""

from __future__ import annotations

import bisect
import contextlib
import pickle
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt

from state.campaigns.campaign_book import CampaignBook
from state.campaigns.descriptors import descriptor_features, descriptor_json
from state.campaigns.prior_features import prior_features
from state.campaigns.response import ResponseModel, response_feature_names, response_features
from state.customer import snapshots
from state.customer.event_log import LogBase, LogEntry, LogFold
from state.customer.profiles import Change, Profile, Reason
from state.customer.rfm import DAY_MS, CustomerState
from state.evaluator.cluster_quality import QualityConfig, assess_version, keep_latest
from state.evaluator.predict import LifetimeModel, alive_and_expected, fit_lifetime
from state.models.alert_rules import RuleOutcome, churn_band_rule, drift_alert, overdue_rule, responder_rule
from state.models.alerts import Alert, AlertConfig, AlertKind
from state.models.churn import ChurnModel, PendingBatch, churn_feature_names, churn_matrix
from state.models.clusters import ClusterConfig, SegmentModel
from state.models.model_health import gate_open
from state.segments.cutpoints import CutPoints, compute_cutpoints
from state.segments.drift import DriftConfig, DriftMonitor
from state.segments.features import FEATURE_NAMES
from state.segments.population import NO_CLUSTER, NO_TIME, Population, feature_matrix, summarize
from state.segments.segments import Preset
from streams.campaign_contract import CONTROL, CampaignEvent

__all__ = ["NEVER", "Evaluator", "EvaluatorConfig", "evaluation_instants"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
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
    churn_horizon_ms: int = 90 * DAY_MS  # no purchase for this long after a prediction = churned
    churn_every_ms: int = 28 * DAY_MS  # every buyer gets a churn prediction at these grid instants
    churn_learn_per_batch: int = 2000  # the churn model learns from this many of each batch
    refit_every_ms: int = 28 * DAY_MS  # the lifetime model is refitted at these grid instants
    response_window_ms: int = 30 * DAY_MS  # a response this long after an exposure is its label
    alerts: AlertConfig = field(default_factory=AlertConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)  # segment_drift alerts (state.segments.drift)
    quality: QualityConfig = field(
        default_factory=QualityConfig
    )  # per model version (state.evaluator.cluster_quality)


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
        self.batches: list[PendingBatch] = list(
            batches
        )  # churn predictions awaiting their labels, oldest first
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
        self.alerts: list[Alert] = []  # raised since the last take_alerts
        self.held_back: Counter[str] = Counter()  # crossings a shut model gate kept from alerting
        self.cluster_quality: list[dict[str, object]] = []  # the latest cluster model versions' figures
        self._sorted_last: tuple[IntArray, IntArray] | None = None  # (last times ascending, rows)
        self._names = self.model.cluster_names()  # the names current profiles were published with
        self._segment = {  # all 125 triples, looked up once
            (r, f, m): config.preset.segment_for(r, f, m).segment
            for r in range(1, 6)
            for f in range(1, 6)
            for m in range(1, 6)
        }
        self._segment_index = np.full((6, 6, 6), -1, dtype=np.int64)  # (r, f, m) -> index in segments
        for (r, f, m), name in self._segment.items():
            self._segment_index[r, f, m] = segments.index(name)

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
        due: dict[int, list[LogFold]] = {}
        for fold in folds:
            pending = fold.next_event_ms()
            if pending is not None and instants:
                first = min(bisect.bisect_right(instants, pending), len(instants) - 1)
                due.setdefault(first, []).append(fold)
        campaign: dict[int, list[CampaignEvent]] = {}
        for event in sorted(campaign_events, key=lambda e: (e.occurred_at_ms, e.event_id)):
            if instants:
                index = min(bisect.bisect_right(instants, event.occurred_at_ms), len(instants) - 1)
                campaign.setdefault(index, []).append(event)
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
            changes += self.step(at_ms, states, campaign.pop(i, ()))
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
        if model_moved:  # once per new cluster model version
            quality = assess_version(at_ms, pop, self.model, self.campaigns.exposures, self.config.quality)
            self.cluster_quality = keep_latest(
                self.cluster_quality, quality, self.config.quality.versions_kept
            )
        # everyone is re-scored under new cut-points or a new model; otherwise the due and the decayed
        candidates = buyers if bought or model_moved else np.union1d(decayed, bought_rows).astype(np.int64)
        changes = self._rescore(at_ms, candidates, bought_rows, decayed, model_moved)
        self._predictions(at_ms, buyers, bought_rows)
        self._campaign_step(at_ms, campaign_events)
        if at_ms % self.config.step_ms == 0:
            self._drift(at_ms)
        return changes

    # ------------------------------------------------------------------ predictions and alerts

    def _predictions(self, at_ms: int, buyers: IntArray, bought: IntArray) -> None:
        """Refit, label the churn batches due, score everyone, move bands and raise alerts."""
        cfg, pop = self.config, self.population
        on_grid = at_ms % cfg.step_ms == 0
        # refit on schedule; until a first fit succeeds, try weekly
        first_try = self.lifetime is None and at_ms % (7 * DAY_MS) == 0
        if on_grid and (first_try or at_ms % cfg.refit_every_ms == 0):
            self._refit(at_ms, buyers, warm=True)
        while self.batches and self.batches[0].made_at_ms + cfg.churn_horizon_ms <= at_ms:
            batch = self.batches.pop(0)
            self.churn.resolve(batch, pop.column("last_ms")[batch.rows] < batch.made_at_ms)
        self._overdue(at_ms, buyers, bought)
        if self.lifetime is None or buyers.size == 0:
            return
        cols, alive, expected, segment, x, probability = self._scored(buyers, at_ms)
        if self.churn.version:  # bands once the model has learned from a resolved batch
            banded = churn_band_rule(
                at_ms, self._id_of(buyers), cols, probability, alive, self.churn.health(), cfg.alerts
            )
            self._apply(buyers, banded, "churn_risk")
        if on_grid and at_ms % cfg.churn_every_ms == 0:  # raw scores rank; served ones and bands are shown
            raw, bands = self.churn.raw_scores(x), pop.column("band")[buyers].copy()
            batch = PendingBatch.make(
                at_ms, buyers, raw, segment, x, cfg.churn_learn_per_batch, served=probability, bands=bands
            )
            self.batches.append(batch)
        if self.campaigns.response.version:  # likely responders once the model learned a window
            treated = np.ones(buyers.size, dtype=np.bool_)
            book, n = self.campaigns, len(self.churn.segments)
            reference = book.reference_features(buyers.size)  # the last campaign described
            xr = response_features(cols, at_ms, alive, expected, probability, segment, n, treated, reference)
            responders = responder_rule(
                at_ms,
                self._id_of(buyers),
                cols,
                book.response.scores(xr),
                probability,
                book.response.health(),
                cfg.alerts,
            )
            self._apply(buyers, responders, "likely_responder")
            if book.uplift is not None and book.uplift.version and on_grid:
                names = self.churn.segments
                book.note_population(at_ms, xr, [names[i] if i >= 0 else "unknown" for i in segment.tolist()])

    def segment_index(self, cols: Mapping[str, IntArray]) -> IntArray:
        """Each row's named segment as an index into the preset's segments (-1: no profile yet)."""
        return np.asarray(self._segment_index[cols["r"], cols["f"], cols["m"]], dtype=np.int64)

    def _scored(
        self, rows: IntArray, at_ms: int
    ) -> tuple[dict[str, IntArray], FloatArray, FloatArray, IntArray, FloatArray, FloatArray]:
        """Columns, P(alive), expected purchases, segment index, churn features and probability of ``rows``."""
        assert self.lifetime is not None
        cols = self.population.columns(rows)
        alive, expected = alive_and_expected(self.lifetime, cols, at_ms)
        segment = self.segment_index(cols)
        x = churn_matrix(cols, at_ms, alive, expected, segment, len(self.churn.segments))
        return cols, alive, expected, segment, x, self.churn.scores(x)

    def _campaign_step(self, at_ms: int, events: Sequence[CampaignEvent]) -> None:
        """Label the exposures whose window ended, score the new ones, mark the responses."""
        book, pop = self.campaigns, self.population
        book.resolve_due(at_ms)
        fresh: list[tuple[int, CampaignEvent]] = []
        for event in events:
            if event.type != "exposure":
                continue
            row = pop.index.get(event.customer_id, -1)
            profile = pop.profiles[row] if row >= 0 else None
            key = book.add_exposure(event, profile.rfm_segment if profile else "unknown")
            if key is not None:
                fresh.append((key, event))
        for event in events:
            if event.type == "response":
                book.add_response(event)
        if not fresh:
            return
        keys = np.array([k for k, _ in fresh], dtype=np.int64)
        rows = np.array([pop.index.get(e.customer_id, -1) for _, e in fresh], dtype=np.int64)
        known = rows >= 0
        n = len(fresh)
        cols = {name: np.zeros(n, dtype=np.int64) for name in pop.columns(_EMPTY)}
        alive, expected, probability = np.zeros(n), np.zeros(n), np.zeros(n)
        segment = np.full(n, -1, dtype=np.int64)
        if known.any() and self.lifetime is not None:
            k_cols, k_alive, k_expected, k_segment, _, k_probability = self._scored(rows[known], at_ms)
            for name, column in k_cols.items():
                cols[name][known] = column
            alive[known], expected[known], segment[known] = k_alive, k_expected, k_segment
            probability[known] = k_probability
        elif known.any():  # before the first lifetime fit: behaviour only
            for name, column in pop.columns(rows[known]).items():
                cols[name][known] = column
            segment[known] = self._segment_index[cols["r"][known], cols["f"][known], cols["m"][known]]
        treated = np.array([e.variant != CONTROL for _, e in fresh], dtype=np.bool_)
        descriptors = [e.descriptor for _, e in fresh]
        x = response_features(
            cols,
            at_ms,
            alive,
            expected,
            probability,
            segment,
            len(self.churn.segments),
            treated,
            descriptor_features(descriptors),
            prior_features([e.prior for _, e in fresh]),
        )
        book.score(at_ms, keys, x, segment, descriptors)

    def _apply(self, rows: IntArray, outcome: RuleOutcome, kind: AlertKind) -> None:
        """Write a rule's flag columns for ``rows``, keep its alerts, count what its gate held back."""
        for name, (at, values) in outcome.columns.items():
            self.population.column(name)[rows[at]] = values
            self.dirty.update(rows[at].tolist())
        self.alerts += outcome.alerts
        if outcome.held_back:
            self.held_back[kind] += outcome.held_back

    def _id_of(self, rows: IntArray) -> Callable[[int], str]:
        ids = self.population.ids
        return lambda j: ids[int(rows[j])]

    def _refit(self, at_ms: int, buyers: IntArray, *, warm: bool) -> bool:
        """A new lifetime model version fitted at ``at_ms``; False (version kept) if the data cannot."""
        version = (self.lifetime.version if self.lifetime else 0) + 1
        with contextlib.suppress(ValueError):  # a likelihood that is not finite: keep the version
            previous = self.lifetime if warm else None
            cols = self.population.columns(buyers)
            refit = fit_lifetime(cols, at_ms, previous, version=version, polish=not warm)
            if refit is not None:
                self.lifetime = refit
                return True
        return False

    def refit(self) -> LifetimeModel | None:
        """Refit the lifetime model at the clock now, full maximum likelihood (``segstream fit``).

        Returns the new version, or None when there is no clock yet or too little data.
        """
        if self.clock_ms is None or not self._refit(self.clock_ms, self.population.buyers(), warm=False):
            return None
        return self.lifetime

    def _overdue(self, at_ms: int, rows: IntArray, bought: IntArray) -> None:
        pop = self.population
        days, first, last, flag = (
            pop.column(n)[rows] for n in ("purchase_days", "first_ms", "last_ms", "overdue")
        )
        bought_now = np.zeros(len(pop), dtype=np.bool_)  # O(population), as the rule itself;
        bought_now[bought] = True  # np.isin would sort or loop over the buyers at every instant
        bought_now = bought_now[rows]
        outcome = overdue_rule(
            at_ms, self._id_of(rows), flag, bought_now, days, first, last, self.config.alerts
        )
        self._apply(rows, outcome, "overdue")

    def alert_gates(self) -> dict[str, dict[str, object]]:
        """Each model-backed alert kind's gate: the model's recent figures, open or shut, alerts held back."""
        cfg = self.config.alerts
        gates: dict[str, dict[str, object]] = {}
        for kind, health in (
            ("churn_risk", self.churn.health()),
            ("likely_responder", self.campaigns.response.health()),
        ):
            gates[kind] = {
                **health.to_json(),
                "open": gate_open(health, cfg.min_auc, cfg.max_ece),
                "held_back": self.held_back[kind],
            }
        return gates

    def _drift(self, at_ms: int) -> None:
        """Segment and cluster drift at a grid instant: a ``segment_drift`` alert per group that drifted.

        The alert's ``customer_id`` names the group, ``segment:<name>`` or ``cluster:<id>``.
        """
        pop = self.population
        r, f, m = pop.column("r"), pop.column("f"), pop.column("m")
        money = pop.column("monetary_cents") / 100
        profiled = r > 0
        segment = np.where(profiled, self._segment_index[r, f, m], -1).astype(np.int64)
        cluster = np.where(profiled, pop.column("cluster"), NO_CLUSTER).astype(np.int64)
        segments, names = self.config.preset.segments, self.model.cluster_names()
        segment_monitor, cluster_monitor = self.drift
        id_of = pop.ids.__getitem__
        for event in segment_monitor.update(at_ms, segment, money, r, f, m):
            self.alerts.append(drift_alert(event, "segment", segments[event.key], id_of))
        for event in cluster_monitor.update(at_ms, cluster, money, r, f, m):
            self.alerts.append(
                drift_alert(event, "cluster", names.get(event.key, f"cluster {event.key}"), id_of)
            )

    def take_alerts(self) -> list[Alert]:
        """The alerts raised since the last call, in instant order (clears them)."""
        alerts, self.alerts = self.alerts, []
        return alerts

    def _sorted_buyers(self) -> tuple[IntArray, IntArray]:
        """(last purchase times ascending, their rows), cached until a purchase changes them."""
        if self._sorted_last is None:
            rows = self.population.buyers()
            last = self.population.column("last_ms")[rows]
            order = np.argsort(last, kind="stable")
            self._sorted_last = (last[order], rows[order])
        return self._sorted_last

    def _learn(self, at_ms: int, buyers: IntArray) -> bool:
        """Learn from the next ``learn_per_step`` buyers at each grid instant, walking round the population.

        Only grid instants (UTC midnights) teach the model, so it learns per event-time day whatever
        moves the clock: a tick or a watermark every second would otherwise flood it.

        The model sees the population as it is at each instant, customers of every age, not
        only the ones buying. The walk starts at (points learned so far) mod (buyers), so it
        needs no state of its own. Returns whether a new model version was published.
        """
        before = self.model.version
        on_grid = at_ms % self.config.step_ms == 0  # per event-time day, however often the clock moves
        count = min(self.config.learn_per_step, buyers.size) if on_grid else 0
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
        """Row ``row`` as the store keeps it."""
        return self.population.record(row)

    def snapshot(self) -> bytes:
        """The learned models (clusters, churn with its open batches, lifetime) as one blob for the store."""
        return pickle.dumps(
            {
                "segment_model": self.model.snapshot(),
                "churn_model": self.churn,
                "churn_batches": self.batches,
                "lifetime": self.lifetime,
                "campaigns": self.campaigns,
                "held_back": dict(self.held_back),
                "drift": self.drift,
                "cluster_quality": self.cluster_quality,
            }
        )

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
        for record in sorted(records, key=lambda r: int(str(r["row"]))):
            population.load_record(dict(record))
        models = snapshots.load(model) if model else {}
        evaluator = cls(
            config,
            clock_ms=clock_ms,
            cutpoints=CutPoints.from_json(cutpoints_json) if cutpoints_json else None,
            model=SegmentModel.restore(models["segment_model"]) if models else SegmentModel(config.cluster),
            population=population,
            churn=models.get("churn_model"),
            batches=models.get("churn_batches", ()),
            lifetime=models.get("lifetime"),
            campaigns=models.get("campaigns"),
            drift=models.get("drift"),
        )
        evaluator.held_back.update(models.get("held_back", {}))
        evaluator.cluster_quality = models.get("cluster_quality", [])
        return evaluator

    def summary(self) -> dict[str, object]:
        """Every named segment's and cluster's size and profile, with the versions (``GET /segments``)."""
        return {
            "as_of_ms": self.clock_ms or 0,
            "cutpoint_version": self.cutpoints.version if self.cutpoints else 0,
            "model_version": self.model.version,
            "preset": self.config.preset.name,
            "churn": {
                "horizon_days": self.config.churn_horizon_ms / DAY_MS,
                "every_days": self.config.churn_every_ms / DAY_MS,
                **self.churn.report(),
                "scorer": self.churn.scorer(),
                "bands": asdict(self.config.alerts.bands),
            },
            "lifetime": None if self.lifetime is None else self.lifetime.to_json(),
            "response": {
                "window_days": self.config.response_window_ms / DAY_MS,
                "exposures": len(self.campaigns.exposures),
                **self.campaigns.response.report(),
                "scorer": self.campaigns.response.scorer(),
                "reference_campaign": descriptor_json(self.campaigns.reference),
                "likely_enter": self.config.alerts.responder_enter,
                "likely_leave": self.config.alerts.responder_leave,
            },
            "campaigns": self.campaigns.readout(),
            "uplift": self.campaigns.uplift_report(),
            "cluster_quality": self.cluster_quality,
            "alert_gates": {
                "min_auc": self.config.alerts.min_auc,
                "max_ece": self.config.alerts.max_ece,
                **self.alert_gates(),
            },
            **summarize(
                self.population, self.clock_ms or 0, self.config.preset.segments, self.model.cluster_names()
            ),
        }

"""One instant's predictions and the alerts they raise (step 6 of ``state.evaluator.evaluate``).

The lifetime model (BG/NBD + Gamma-Gamma, ``state.evaluator.predict``) is refitted every
``refit_every_ms``; churn prediction batches whose horizon ended get their labels
(``state.models.churn``: test, then train); every ``churn_every_ms`` all buyers are scored into a
new batch; every buyer's churn band moves (with hysteresis) and alerts are raised
(``state.models.alert_rules``); buyers whose response propensity rose past the threshold get a
``likely_responder`` alert (with hysteresis), and on grid instants every buyer's estimated uplift
for the last described campaign gives the per-segment uplift and the suggested target list
(``CampaignBook.note_population``). Segment and cluster drift raise ``segment_drift`` alerts.

Kept apart from the coordinator because it is the models' part of an instant, and from the
re-scoring because it never changes a profile. Every function reads what it is given and returns
what it found (a model, a batch, a :class:`~state.models.alert_rules.RuleOutcome`, alerts); the
coordinator applies the outcomes in its order, so the flag columns a later rule reads are the ones
an earlier rule wrote.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from state.campaigns.response import ResponseModel, response_features
from state.evaluator.predict import LifetimeModel, alive_and_expected, fit_lifetime
from state.models.alert_rules import RuleOutcome, churn_band_rule, drift_alert, overdue_rule, responder_rule
from state.models.alerts import Alert, AlertConfig
from state.models.churn import ChurnModel
from state.models.churn_features import churn_matrix
from state.models.online_logistic import PendingBatch
from state.segments.drift import DriftMonitor
from state.segments.population import NO_CLUSTER, Population

__all__ = [
    "Responders",
    "Scored",
    "churn_bands",
    "churn_batch",
    "drift_alerts",
    "likely_responders",
    "overdue",
    "refit_lifetime",
    "resolve_due",
    "responder_features",
    "row_ids",
    "scored",
    "segment_names",
    "write_flags",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def row_ids(population: Population, rows: IntArray) -> Callable[[int], str]:
    """The customer id of ``rows[j]``, as the alert rules ask for it (by position)."""
    ids = population.ids
    return lambda j: ids[int(rows[j])]


def refit_lifetime(
    population: Population, buyers: IntArray, at_ms: int, previous: LifetimeModel | None, *, warm: bool
) -> LifetimeModel | None:
    """The next lifetime model version fitted on ``buyers`` at ``at_ms`` (warm: from ``previous``'s
    parameters; cold: full maximum likelihood); None, the version kept, if the data cannot."""
    version = (previous.version if previous else 0) + 1
    with contextlib.suppress(ValueError):  # a likelihood that is not finite: keep the version
        start = previous if warm else None
        cols = population.columns(buyers)
        return fit_lifetime(cols, at_ms, start, version=version, polish=not warm)
    return None


def resolve_due(
    batches: list[PendingBatch], churn: ChurnModel, population: Population, at_ms: int, horizon_ms: int
) -> None:
    """Label the churn batches whose horizon ended by ``at_ms`` (oldest first, removed from ``batches``)
    and let ``churn`` test then learn them: churned = no purchase since the prediction."""
    while batches and batches[0].made_at_ms + horizon_ms <= at_ms:
        batch = batches.pop(0)
        churn.resolve(batch, population.column("last_ms")[batch.rows] < batch.made_at_ms)


def overdue(
    population: Population, at_ms: int, rows: IntArray, bought: IntArray, cfg: AlertConfig
) -> RuleOutcome:
    """The overdue rule over ``rows`` at ``at_ms`` (``bought``: the rows that purchased at this instant)."""
    pop = population
    days, first, last, flag = (
        pop.column(n)[rows] for n in ("purchase_days", "first_ms", "last_ms", "overdue")
    )
    bought_now = np.zeros(len(pop), dtype=np.bool_)  # O(population), as the rule itself;
    bought_now[bought] = True  # np.isin would sort or loop over the buyers at every instant
    bought_now = bought_now[rows]
    return overdue_rule(at_ms, row_ids(pop, rows), flag, bought_now, days, first, last, cfg)


class Scored(NamedTuple):
    """Rows' columns, P(alive), expected purchases, segment index, churn features and churn probability."""

    cols: dict[str, IntArray]
    alive: FloatArray
    expected: FloatArray
    segment: IntArray
    x: FloatArray
    probability: FloatArray


def scored(
    population: Population,
    lifetime: LifetimeModel,
    churn: ChurnModel,
    segment_index: npt.NDArray[np.int64],
    rows: IntArray,
    at_ms: int,
) -> Scored:
    """What the models say of ``rows`` at ``at_ms`` (``segment_index``: (r, f, m) -> named segment index)."""
    cols = population.columns(rows)
    alive, expected = alive_and_expected(lifetime, cols, at_ms)
    segment = np.asarray(segment_index[cols["r"], cols["f"], cols["m"]], dtype=np.int64)
    x = churn_matrix(cols, at_ms, alive, expected, segment, len(churn.segments))
    return Scored(cols, alive, expected, segment, x, churn.scores(x))


def churn_bands(
    at_ms: int, rows: IntArray, now: Scored, population: Population, churn: ChurnModel, cfg: AlertConfig
) -> RuleOutcome:
    """The churn band rule over ``rows`` scored ``now``."""
    return churn_band_rule(
        at_ms, row_ids(population, rows), now.cols, now.probability, now.alive, churn.health(), cfg
    )


def churn_batch(
    at_ms: int, rows: IntArray, now: Scored, churn: ChurnModel, bands: IntArray, learn: int
) -> PendingBatch:
    """A new batch of churn predictions: raw scores rank; the served ones and the ``bands`` are shown."""
    raw = churn.raw_scores(now.x)
    return PendingBatch.make(at_ms, rows, raw, now.segment, now.x, learn, served=now.probability, bands=bands)


class Responders(NamedTuple):
    """The likely-responder rule's outcome and the response features it scored (one row per buyer)."""

    outcome: RuleOutcome
    features: FloatArray


def responder_features(at_ms: int, now: Scored, reference: FloatArray, segments: int) -> FloatArray:
    """The response features of the rows scored ``now``, as if each were exposed now to the campaign
    whose descriptor features are ``reference`` (one row per scored row)."""
    treated = np.ones(now.alive.size, dtype=np.bool_)
    return response_features(
        now.cols, at_ms, now.alive, now.expected, now.probability, now.segment, segments, treated, reference
    )


def likely_responders(
    at_ms: int,
    rows: IntArray,
    now: Scored,
    population: Population,
    response: ResponseModel,
    reference: FloatArray,
    segments: int,
    cfg: AlertConfig,
) -> Responders:
    """The likely-responder rule over ``rows`` as if each were exposed now to the campaign whose
    descriptor features are ``reference`` (the last one described: ``CampaignBook.reference_features``)."""
    xr = responder_features(at_ms, now, reference, segments)
    outcome = responder_rule(
        at_ms,
        row_ids(population, rows),
        now.cols,
        response.scores(xr),
        now.probability,
        response.health(),
        cfg,
    )
    return Responders(outcome, xr)


def segment_names(segment: IntArray, names: Sequence[str]) -> list[str]:
    """Each segment index's name (``unknown`` for -1, no profile)."""
    return [names[i] if i >= 0 else "unknown" for i in segment.tolist()]


def drift_alerts(
    at_ms: int,
    population: Population,
    segment_index: npt.NDArray[np.int64],
    segments: Sequence[str],
    cluster_names: Mapping[int, str],
    monitors: tuple[DriftMonitor, DriftMonitor],
) -> list[Alert]:
    """Segment and cluster drift at a grid instant: a ``segment_drift`` alert per group that drifted.

    ``monitors`` are the (named segments, clusters) CUSUMs, updated here. The alert's
    ``customer_id`` names the group, ``segment:<name>`` or ``cluster:<id>``.
    """
    pop = population
    r, f, m = pop.column("r"), pop.column("f"), pop.column("m")
    money = pop.column("monetary_cents") / 100
    profiled = r > 0
    segment = np.where(profiled, segment_index[r, f, m], -1).astype(np.int64)
    cluster = np.where(profiled, pop.column("cluster"), NO_CLUSTER).astype(np.int64)
    segment_monitor, cluster_monitor = monitors
    id_of = pop.ids.__getitem__
    alerts: list[Alert] = []
    for event in segment_monitor.update(at_ms, segment, money, r, f, m):
        alerts.append(drift_alert(event, "segment", segments[event.key], id_of))
    for event in cluster_monitor.update(at_ms, cluster, money, r, f, m):
        alerts.append(
            drift_alert(event, "cluster", cluster_names.get(event.key, f"cluster {event.key}"), id_of)
        )
    return alerts


def write_flags(population: Population, rows: IntArray, outcome: RuleOutcome) -> list[int]:
    """Write a rule's flag columns for ``rows`` into ``population``; the rows written (a row may
    repeat, once per column)."""
    written: list[int] = []
    for name, (at, values) in outcome.columns.items():
        population.column(name)[rows[at]] = values
        written += rows[at].tolist()
    return written

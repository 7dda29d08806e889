"""The evaluator's summary as typed structures: what ``GET /segments``, the CLI and the metrics read.

The segment evaluator saves one summary document after each chunk of instants (the Redis key
``eval:{segments}:summary``, :class:`state.customer.profile_store.ProfileStore`): versions, the
clock, every named segment's and cluster's figures, the churn, lifetime, response and uplift
models' reports, the campaigns' A/B readout, the cluster quality history and the alert gates.
:func:`state.evaluator.summary.evaluator_summary` builds it as a :class:`Summary`;
:func:`summary_record` is its one encode point (the plain JSON-ready dict the store saves) and
:func:`read_summary` the one decode point every reader goes through (:func:`load_summary` reads
the store and decodes), so a key misspelt in a
reader is an attribute mypy rejects, not a ``KeyError`` at run time.

The structures are frozen, keyword-only ``msgspec.Struct`` s (each states its options: mypy does not
see struct options inherited from a base). Fields are declared in the order the document has
always had (the JSON the store saves and ``GET /segments`` serves is unchanged), and unknown fields
(a newer writer's) are ignored on decode (msgspec's default, ``forbid_unknown_fields=False``). Parts a newer version added (the churn calibration, the
recent window and band outcomes, the alert gates, the campaigns, uplift and cluster quality)
have defaults, so a document saved by an older version still decodes.

>>> s = read_summary(b'{"as_of_ms": 5, "cutpoint_version": 1, "model_version": 0, "preset": "rfm11", '
...     b'"customers": 0, "segments": [], "clusters": [], "churn": {"horizon_days": 90.0, "every_days": 28.0, '
...     b'"auc": null, "examples": 0, "positives": 0, "version": 0, "by_segment": {}}, '
...     b'"response": {"window_days": 30.0, "exposures": 0, "auc": null, "examples": 0, "positives": 0, '
...     b'"version": 0}}')
>>> s.as_of_ms, s.churn.calibration, s.uplift, s.cluster_quality, s.alert_gates
(5, None, None, [], None)
"""

from __future__ import annotations

from typing import Any

import msgspec

from state.customer.profile_store import ProfileStore
from streams.campaign_contract import CampaignDescriptor

__all__ = [
    "AlertGate",
    "AlertGates",
    "ArmReport",
    "AucRow",
    "BandOutcome",
    "BandOutcomes",
    "Bands",
    "BgNbdFit",
    "CalibrationFigures",
    "ChurnCalibration",
    "ChurnReport",
    "ClusterGroup",
    "GammaGammaFit",
    "LifetimeParams",
    "Platt",
    "PropensityReport",
    "QualityCluster",
    "QualitySpread",
    "QualityVersion",
    "RecentHealth",
    "ReliabilityRow",
    "ResponseReport",
    "Scorer",
    "SegmentGroup",
    "Summary",
    "UpliftPopulation",
    "UpliftReport",
    "UpliftSegment",
    "load_summary",
    "read_summary",
    "summary_record",
]


# ----------------------------------------------------------------- segments and clusters


class SegmentGroup(msgspec.Struct, frozen=True, kw_only=True):
    """One named segment's figures over the customers with a profile (``state.segments.group_sums``);
    no means (None) for an empty segment."""

    segment: str
    customers: int
    share: float
    mean_recency_days: float | None
    mean_frequency: float | None
    mean_monetary: float | None
    value_share: float


class ClusterGroup(msgspec.Struct, frozen=True, kw_only=True):
    """One cluster's figures, as :class:`SegmentGroup`, with the cluster's id and name."""

    cluster: int
    name: str
    customers: int
    share: float
    mean_recency_days: float | None
    mean_frequency: float | None
    mean_monetary: float | None
    value_share: float


# ----------------------------------------------------------------- model figures


class AucRow(msgspec.Struct, frozen=True, kw_only=True):
    """Prequential ROC AUC (None until both labels were seen) and label counts."""

    auc: float | None
    examples: int
    positives: int


class Platt(msgspec.Struct, frozen=True, kw_only=True):
    """The churn model's calibration map ``sigmoid(a * logit(p) + b)`` (``state.models.calibration``)."""

    a: float
    b: float


class Scorer(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A logistic model's learned arithmetic as plain lists (``state.models.online_logistic.score_with``);
    ``calibration`` only for the churn model (absent from the document otherwise)."""

    version: int
    names: list[str]
    means: list[float]
    stds: list[float]
    weights: list[float]
    intercept: float
    calibration: Platt | None = None

    def to_json(self) -> dict[str, Any]:
        """The plain dict ``score_with`` takes."""
        record: dict[str, Any] = msgspec.to_builtins(self)
        return record


class ReliabilityRow(msgspec.Struct, frozen=True, kw_only=True):
    """One equal-width probability bin: weighted predictions, mean predicted, observed rate."""

    low: float
    high: float
    predictions: float
    mean_predicted: float | None
    observed_rate: float | None


class CalibrationFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Brier score and ECE over ``examples`` labelled predictions, with the reliability table."""

    examples: float
    brier: float | None
    ece: float | None
    reliability: list[ReliabilityRow]


class ChurnCalibration(msgspec.Struct, frozen=True, kw_only=True):
    """The raw and the served (Platt-mapped) probabilities' calibration, and the map."""

    raw: CalibrationFigures
    served: CalibrationFigures
    platt: Platt


class RecentHealth(msgspec.Struct, frozen=True, kw_only=True):
    """The recent (decayed) window's AUC and ECE (``state.models.model_health``) and its half-life."""

    version: int
    auc: float | None
    ece: float | None
    examples: float
    half_life_days: float


class BandOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """Predictions made in one churn band, how many churned, the observed rate (None before any)."""

    predictions: int
    churned: int
    observed_churn_rate: float | None


class BandOutcomes(msgspec.Struct, frozen=True, kw_only=True):
    """:class:`BandOutcome` per churn band (the document's keys are the band names)."""

    low: BandOutcome = msgspec.field(name="Low")
    medium: BandOutcome = msgspec.field(name="Medium")
    high: BandOutcome = msgspec.field(name="High")

    def by_band(self) -> dict[str, BandOutcome]:
        return {"Low": self.low, "Medium": self.medium, "High": self.high}


class Bands(msgspec.Struct, frozen=True, kw_only=True):
    """The churn bands' hysteresis thresholds (``state.models.alerts.BandThresholds``)."""

    medium_enter: float
    medium_leave: float
    high_enter: float
    high_leave: float


class ChurnReport(msgspec.Struct, frozen=True, kw_only=True):
    """The churn model: horizon and cadence, AUC overall and by segment at prediction, calibration,
    the recent window, band outcomes, the scorer every reader applies and the bands."""

    horizon_days: float
    every_days: float
    auc: float | None
    examples: int
    positives: int
    version: int
    by_segment: dict[str, AucRow]
    calibration: ChurnCalibration | None = None
    recent: RecentHealth | None = None
    band_outcomes: BandOutcomes | None = None
    scorer: Scorer | None = None
    bands: Bands | None = None


class BgNbdFit(msgspec.Struct, frozen=True, kw_only=True):
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


class GammaGammaFit(msgspec.Struct, frozen=True, kw_only=True):
    p: float
    q: float
    gamma: float
    log_likelihood: float


class LifetimeParams(msgspec.Struct, frozen=True, kw_only=True):
    """One fitted version of the lifetime model (``state.evaluator.predict.LifetimeModel``), in weeks."""

    version: int
    fitted_at_ms: int
    customers: int
    period: str
    bgnbd: BgNbdFit
    gamma_gamma: GammaGammaFit | None


class ResponseReport(msgspec.Struct, frozen=True, kw_only=True):
    """The campaign response model: window, exposures seen, AUC overall, by segment and by variant,
    exposures pending, its scorer, the reference campaign and the likely-responder thresholds."""

    window_days: float
    exposures: int
    auc: float | None
    examples: int
    positives: int
    version: int
    by_segment: dict[str, AucRow] = msgspec.field(default_factory=dict)
    pending: int = 0
    by_variant: dict[str, AucRow] = msgspec.field(default_factory=dict)
    scorer: Scorer | None = None
    reference_campaign: CampaignDescriptor | None = None
    likely_enter: float | None = None
    likely_leave: float | None = None


class PrequentialFigures(msgspec.Struct, frozen=True, kw_only=True):
    """An online model's prequential AUC overall and by segment, its counts and version (the fields
    come first in the document, then each subclass's own)."""

    auc: float | None
    examples: int
    positives: int
    version: int
    by_segment: dict[str, AucRow]


class ArmReport(PrequentialFigures, frozen=True, kw_only=True):
    """One uplift arm's model: its prequential AUC over its own exposures and its scorer."""

    scorer: Scorer


class PropensityReport(PrequentialFigures, frozen=True, kw_only=True):
    """The treatment propensity model's AUC and the treated share it estimated."""

    treated_share: float


class UpliftSegment(msgspec.Struct, frozen=True, kw_only=True):
    segment: str
    customers: int
    mean_uplift: float
    suggested_target: int
    suggested_share: float
    estimated_incremental: float


class UpliftPopulation(msgspec.Struct, frozen=True, kw_only=True):
    """The population's estimated uplift for the reference campaign, and the suggested target list."""

    as_of_ms: int
    reference_campaign: CampaignDescriptor | None
    customers: int
    mean_uplift: float | None
    suggested_target: int
    suggested_share: float
    estimated_incremental: float
    by_segment: list[UpliftSegment]


class UpliftReport(msgspec.Struct, frozen=True, kw_only=True):
    """The uplift model (``state.campaigns.uplift``): the arms, the propensity, the population figures."""

    version: int
    clip: float
    passes: int
    treatment_step_scale: float
    treatment: ArmReport
    control: ArmReport
    propensity: PropensityReport
    pending: int
    population: UpliftPopulation | None


class QualitySpread(msgspec.Struct, frozen=True, kw_only=True):
    """Largest minus smallest figure over a version's clusters (None with fewer than two known)."""

    value_share: float | None
    churn_share: float | None
    response_rate: float | None


class QualityCluster(msgspec.Struct, frozen=True, kw_only=True):
    cluster: int
    name: str
    customers: int
    sampled: int
    dispersion: float | None
    value_share: float
    churn_share: float | None
    response_rate: float | None
    exposures: int


class QualityVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One published cluster model version's quality (``state.evaluator.cluster_quality``)."""

    model_version: int
    at_ms: int
    k: int
    buyers: int
    sample: int
    seed: int
    silhouette: float | None
    davies_bouldin: float | None
    within_share: float | None
    spread: QualitySpread
    clusters: list[QualityCluster]


class AlertGate(msgspec.Struct, frozen=True, kw_only=True):
    """A model-backed alert kind's gate: the model's recent figures, open or shut, alerts held back."""

    version: int
    auc: float | None
    ece: float | None
    examples: float
    open: bool
    held_back: int


class AlertGates(msgspec.Struct, frozen=True, kw_only=True):
    min_auc: float
    max_ece: float
    churn_risk: AlertGate
    likely_responder: AlertGate


# ----------------------------------------------------------------- the document


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """The whole summary, fields in the saved document's order."""

    as_of_ms: int
    cutpoint_version: int
    model_version: int
    preset: str
    churn: ChurnReport
    lifetime: LifetimeParams | None = None
    response: ResponseReport
    # The A/B readout rows (``state.campaigns.abtest.readout``, one per campaign x segment x
    # variant): a pandas table passed through unchanged to ``GET /campaigns`` and printed as a
    # DataFrame by ``segstream campaigns``; no reader picks a field out of a row.
    campaigns: list[dict[str, Any]] = msgspec.field(default_factory=list)
    uplift: UpliftReport | None = None
    cluster_quality: list[QualityVersion] = msgspec.field(default_factory=list)
    alert_gates: AlertGates | None = None
    customers: int
    segments: list[SegmentGroup]
    clusters: list[ClusterGroup]


def read_summary(raw: bytes | str | dict[str, Any]) -> Summary:
    """The summary from its JSON text or its decoded dict (what ``ProfileStore.summary`` returns).

    Raises ``msgspec.ValidationError`` naming the path of a missing or mistyped field."""
    if isinstance(raw, dict):
        return msgspec.convert(raw, Summary)
    return msgspec.json.decode(raw, type=Summary)


def summary_record(summary: Summary) -> dict[str, Any]:
    """The summary as the plain JSON-ready dict the store saves (``json.dumps`` of it is the document)."""
    record: dict[str, Any] = msgspec.to_builtins(summary)
    return record


async def load_summary(profiles: ProfileStore) -> Summary | None:
    """The summary the evaluator saved last, decoded (None before its first save): every reader's entry."""
    raw = await profiles.summary()
    return None if raw is None else read_summary(raw)

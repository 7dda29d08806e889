"""The summary's model reports: the churn, lifetime and response models, and the alert gates.

Part of the summary's typed read model (:mod:`state.evaluator.read_model`, which re-exports every
name here): frozen, keyword-only ``msgspec.Struct`` s, fields in the saved document's order; the
parts a newer version added have defaults, so an older document still decodes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from streams.campaign_contract import CampaignDescriptor

__all__ = [
    "AlertGate",
    "AlertGates",
    "AucRow",
    "BandOutcome",
    "BandOutcomes",
    "Bands",
    "BgNbdFit",
    "CalibrationFigures",
    "ChurnCalibration",
    "ChurnReport",
    "GammaGammaFit",
    "LifetimeParams",
    "Platt",
    "RecentHealth",
    "ReliabilityRow",
    "ResponseReport",
    "Scorer",
]


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


# ----------------------------------------------------------------- alert gates


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

"""Alerts: typed, carrying the figures that triggered them, with hysteresis against noise.

The rules themselves are pure functions in :mod:`state.models.alert_rules`, one per kind, each
documented where it is written; this module holds the types, the bands and the settings.

The kinds, decided by the evaluator at every instant:

- ``churn_risk``: a *valuable* customer (M score at least ``valuable_min_m_score``), silent for
  at least ``churn_alert_min_silent_days``, whose churn band is Medium or High and above the
  band they were last alerted at. Bands have hysteresis: a customer enters Medium at a churn
  probability of ``medium_enter`` but leaves it only below ``medium_leave`` (High likewise),
  so a probability wobbling round a threshold moves the band once, not on every wobble. When
  the band falls below the last alerted band, that level falls with it, which re-arms the
  alert: a customer is alerted again only after a new crossing. (The silence condition keeps
  a model update from alerting about customers who bought yesterday.)
- ``overdue``: a customer with at least ``overdue_min_purchase_days`` purchase days whose
  silence exceeds ``overdue_factor`` times their own mean gap between purchase days (and at
  least ``overdue_min_days``). One alert per silence: the next purchase re-arms it.
- ``likely_responder``: a buyer whose response propensity (the online response model's
  probability that they respond if shown a campaign now) reached ``responder_enter``; they
  stay a likely responder until it falls below ``responder_leave``, and only a new crossing
  alerts again.

- ``segment_drift``: a named segment's or cluster's size share, value share or mean R/F/M
  crossed its CUSUM control limit (:mod:`state.segments.drift`); ``customer_id`` names the group,
  ``segment:<name>`` or ``cluster:<id>``.

A model must earn its alerts: ``churn_risk`` (the churn model) and ``likely_responder`` (the
response model) fire only while :func:`state.models.model_health.gate_open` holds for the model's
recent prequential AUC and ECE (``min_auc``, ``max_ece``), and carry the model's version, AUC
and ECE. A crossing while the gate is shut is used up silently (counted as held back), so
opening it releases no backlog. ``overdue`` and ``segment_drift`` are rules: never gated.

Every alert has a deterministic id (``kind:customer@instant``), so a re-evaluated instant
after a crash republishes the same alert, and a subscriber de-duplicates on it.

>>> bands = BandThresholds()
>>> p = np.array([0.2, 0.55, 0.45, 0.8, 0.7])
>>> next_band(np.array([NO_BAND, LOW, MEDIUM, MEDIUM, HIGH]), p, bands).tolist()  # Low, up, held, up, held
[1, 2, 2, 3, 3]
>>> BAND_NAMES[HIGH], Alert("c1", 86_400_000, "overdue", {"silent_days": 40.0}).alert_id
('High', 'overdue:c1@86400000')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "BAND_NAMES",
    "HIGH",
    "LOW",
    "MEDIUM",
    "NO_BAND",
    "RULE_ORDER",
    "Alert",
    "AlertConfig",
    "AlertKind",
    "BandThresholds",
    "Figure",
    "band_name",
    "next_band",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
AlertKind = Literal["churn_risk", "overdue", "likely_responder", "segment_drift"]
RULE_ORDER: dict[str, int] = {"overdue": 0, "churn_risk": 1, "likely_responder": 2}
"""The order the evaluator runs its per-customer alert rules in at an instant (each rule's alerts
in customer-id order; the drift alerts after them)."""
Figure = float | str | list[str] | None  # a figure of an alert (a list: customer ids)
NO_BAND, LOW, MEDIUM, HIGH = 0, 1, 2, 3
BAND_NAMES = {LOW: "Low", MEDIUM: "Medium", HIGH: "High"}


def band_name(band: int) -> str | None:
    return BAND_NAMES.get(band)


@dataclass(frozen=True)
class BandThresholds:
    """Churn probability thresholds of the bands: enter at ``*_enter``, leave below ``*_leave``."""

    medium_enter: float = 0.5
    medium_leave: float = 0.4
    high_enter: float = 0.75
    high_leave: float = 0.65

    def __post_init__(self) -> None:
        if not (0 < self.medium_leave <= self.medium_enter < self.high_enter < 1):
            raise ValueError("band thresholds need 0 < medium_leave <= medium_enter < high_enter < 1")
        if not (self.medium_enter <= self.high_leave <= self.high_enter):
            raise ValueError("band thresholds need medium_enter <= high_leave <= high_enter")


def next_band(previous: IntArray, probability: FloatArray, bands: BandThresholds) -> IntArray:
    """Each customer's band after ``probability``, from their ``previous`` band (hysteresis)."""
    entered = LOW + (probability >= bands.medium_enter) + (probability >= bands.high_enter)
    held = LOW + (probability >= bands.medium_leave) + (probability >= bands.high_leave)
    rises = (previous == NO_BAND) | (entered > previous)
    return np.where(rises, entered, np.minimum(previous, held)).astype(np.int64)


@dataclass(frozen=True)
class AlertConfig:
    bands: BandThresholds = field(default_factory=BandThresholds)
    valuable_min_m_score: int = 4  # churn_risk alerts for customers in the top two M quintiles
    churn_alert_min_silent_days: float = 14.0
    overdue_factor: float = 2.0
    overdue_min_days: float = 14.0
    overdue_min_purchase_days: int = 3
    responder_enter: float = 0.7  # likely responder from this response propensity (if treated) ...
    responder_leave: float = 0.6  # ... until it falls below this
    # a model-backed kind fires only while its model's recent prequential AUC is above min_auc
    # and its recent ECE below max_ece (state.models.model_health.gate_open); overdue is a rule: ungated
    min_auc: float = 0.65
    max_ece: float = 0.1


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: who, when (event time), what kind, and the figures that triggered it."""

    customer_id: str
    at_ms: int
    kind: AlertKind
    figures: dict[str, Figure]

    @property
    def alert_id(self) -> str:
        return f"{self.kind}:{self.customer_id}@{self.at_ms}"

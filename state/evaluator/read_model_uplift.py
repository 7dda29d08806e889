"""The summary's uplift report: the treatment and control arms, the propensity, the population.

Part of the summary's typed read model (:mod:`state.evaluator.read_model`, which re-exports every
name here): frozen, keyword-only ``msgspec.Struct`` s, fields in the saved document's order.
"""

from __future__ import annotations

import msgspec

from state.evaluator.read_model_reports import AucRow, Scorer
from streams.campaign_contract import CampaignDescriptor

__all__ = [
    "ArmReport",
    "PrequentialFigures",
    "PropensityReport",
    "UpliftPopulation",
    "UpliftReport",
    "UpliftSegment",
]


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

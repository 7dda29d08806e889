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

The structures live in three modules by what they describe, and are re-exported here (import them
from this module): the segments', clusters' and cluster quality's figures in
:mod:`state.evaluator.read_model_groups`, the churn, lifetime and response models' reports and the
alert gates in :mod:`state.evaluator.read_model_reports`, the uplift report in
:mod:`state.evaluator.read_model_uplift`. This module holds the document itself
(:class:`Summary`) and its encode and decode points.

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
from state.evaluator.read_model_groups import (
    ClusterGroup,
    QualityCluster,
    QualitySpread,
    QualityVersion,
    SegmentGroup,
)
from state.evaluator.read_model_reports import (
    AlertGate,
    AlertGates,
    AucRow,
    BandOutcome,
    BandOutcomes,
    Bands,
    BgNbdFit,
    CalibrationFigures,
    ChurnCalibration,
    ChurnReport,
    GammaGammaFit,
    LifetimeParams,
    Platt,
    RecentHealth,
    ReliabilityRow,
    ResponseReport,
    Scorer,
)
from state.evaluator.read_model_uplift import (
    ArmReport,
    PropensityReport,
    UpliftPopulation,
    UpliftReport,
    UpliftSegment,
)

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

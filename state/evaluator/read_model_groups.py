"""The summary's figures of groups: the named segments, the clusters, and the cluster models' quality.

Part of the summary's typed read model (:mod:`state.evaluator.read_model`, which re-exports every
name here): frozen, keyword-only ``msgspec.Struct`` s, fields in the saved document's order.
"""

from __future__ import annotations

import msgspec

__all__ = ["ClusterGroup", "QualityCluster", "QualitySpread", "QualityVersion", "SegmentGroup"]


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


# ----------------------------------------------------------------- cluster quality


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

"""The notebooks' analytics (cohorts, best time, reviews, baskets, bundles): their part of :class:`agents.settings.Settings`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

__all__ = ["AnalyticsSettings"]


class AnalyticsSettings(BaseModel):
    """What the analytics count and keep, and how long their pages reuse a result."""

    cohort_splits: str = Field(
        "channel,category",
        description="cohort splits the workers count (comma-separated: channel, category; empty: none); "
        "each costs a counter per customer per month and value",
    )
    best_time_prior: float = Field(
        5.0,
        ge=0,
        description="best time: weight of the segment's profile in a customer's, in purchases (0: own only)",
    )
    analytics_cache_s: float = Field(
        30.0,
        ge=0,
        description="seconds the worker's HTTP pages keep a computed cohort table or segment hour profile "
        "(each reads every customer's counters); 0: compute on every request",
    )
    review_max_regions: int = Field(
        1000,
        ge=1,
        description="most distinct regions the review counters hold; a review of a further region is "
        "dead-lettered (reviews.dlq)",
    )
    cluster_quality_sample: int = Field(
        2000,
        ge=10,
        le=50_000,
        description="customers in the seeded reservoir sample a new cluster model version's silhouette, "
        "Davies-Bouldin index and dispersion are computed on (silhouette is exact on it: O(sample^2))",
    )
    basket_pair_items: int = Field(
        100,
        ge=2,
        le=1000,
        description="most distinct skus (and categories) per basket whose pairs are counted, the ones with the "
        "smallest hash: a basket adds at most n(n-1)/2 pair counters per level (a 1,000-line basket would add "
        "499,500); pair counts are exact for baskets with at most this many",
    )
    basket_batch_tallies: int = Field(
        500_000,
        ge=1000,
        description="most basket counters one batch adds: a batch whose baskets would add more counts fewer names "
        "in its largest baskets (logged); bounds what a batch of hostile 1,000-line purchases costs in worker "
        "memory and Redis time (it never bites on The Complete Journey: make eval, bench/eval_baskets.py)",
    )
    basket_max_pairs: int = Field(
        200_000,
        ge=1000,
        description="most pair counters kept per level (sku, category); past it the rarest pairs are pruned "
        "(lossy counting) down to half, and every count may then be up to the reported threshold below the truth",
    )
    bundle_min_support: float = Field(
        0.001,
        gt=0,
        le=1,
        description="bundles use the category rules whose pair is in at least this share of baskets",
    )
    bundle_count: int = Field(10, ge=1, le=100, description="bundles listed per customer and per segment")
    bundle_strength: Literal["confidence", "lift"] = Field(
        "confidence",
        description="what a rule a -> c adds to a customer's score for c (times the segment's affinity): its "
        "confidence, how often baskets with a also hold c (default: chosen on make eval's validation split), "
        "or its lift",
    )
    basket_refresh_s: float = Field(
        60.0,
        ge=0,
        description="how long the worker's bundle pages reuse the rules and segment affinities they read "
        "(0: read them on every request)",
    )

    @field_validator("cohort_splits")
    @classmethod
    def _known_splits(cls, value: str) -> str:
        unknown = {part.strip() for part in value.split(",") if part.strip()} - {"channel", "category"}
        if unknown:
            raise ValueError(f"unknown cohort split {sorted(unknown)[0]!r}: use channel, category or both")
        return value

    @property
    def cohort_split_names(self) -> tuple[Literal["channel", "category"], ...]:
        """The cohort splits the workers count, in a fixed order.

        >>> AnalyticsSettings(cohort_splits=" category ").cohort_split_names, AnalyticsSettings(cohort_splits="").cohort_split_names
        (('category',), ())
        """
        parts = {part.strip() for part in self.cohort_splits.split(",")}
        return tuple(name for name in ("channel", "category") if name in parts)

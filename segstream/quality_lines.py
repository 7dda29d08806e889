"""``segstream models``: the cluster model versions' quality (``state.evaluator.cluster_quality``) as text."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pandas as pd

from state.evaluator.read_model import QualityVersion
from streams.outputs import rfc3339

__all__ = ["cluster_quality_lines"]


_FIGURES = (
    "silhouette",
    "davies_bouldin",
    "within_share",
    "dispersion",
    "value_share",
    "churn_share",
    "response_rate",
)


def _text(frame: pd.DataFrame) -> list[str]:
    """The frame indented, figures to 3 decimals, undefined ones (None) as n/a."""
    floats = [c for c in frame.columns if c.removesuffix("_spread") in _FIGURES]
    text = frame.astype(dict.fromkeys(floats, float)).to_string(
        index=False, float_format=lambda v: f"{v:.3f}", na_rep="n/a"
    )
    return ["  " + line for line in text.splitlines()]


def cluster_quality_lines(history: Sequence[QualityVersion]) -> list[str]:
    """One row per kept cluster model version, then the latest version's clusters.

    >>> lines = cluster_quality_lines(msgspec.convert([{"model_version": 2, "at_ms": 0, "k": 2, "buyers": 5,
    ...     "sample": 5, "seed": 42, "silhouette": 0.5, "davies_bouldin": 0.8, "within_share": 0.4,
    ...     "spread": {"value_share": 0.6, "churn_share": None, "response_rate": None},
    ...     "clusters": [{"cluster": 0, "name": "a", "customers": 3, "sampled": 3, "dispersion": 1.0,
    ...                   "value_share": 0.2, "churn_share": None, "response_rate": None, "exposures": 0}]}],
    ...     list[QualityVersion]))
    >>> lines[2].split()
    ['2', '1970-01-01', '2', '5', '5', '0.500', '0.800', '0.400', '0.600', 'n/a', 'n/a']
    """
    if not history:
        return ["cluster quality: no cluster model version published yet"]
    latest = history[-1]
    versions = pd.DataFrame(
        [
            {
                "version": h.model_version,
                "published": rfc3339(h.at_ms)[:10],
                "k": h.k,
                "buyers": h.buyers,
                "sample": h.sample,
                "silhouette": h.silhouette,
                "davies_bouldin": h.davies_bouldin,
                "within_share": h.within_share,
                "value_share_spread": h.spread.value_share,
                "churn_share_spread": h.spread.churn_share,
                "response_rate_spread": h.spread.response_rate,
            }
            for h in history
        ]
    )
    clusters = pd.DataFrame(msgspec.to_builtins(latest.clusters)).drop(columns=["sampled"])
    return [
        f"cluster quality per model version (silhouette, Davies-Bouldin, within share: seeded reservoir "
        f"sample of up to {latest.sample:,} buyers, seed {latest.seed}, in the version's scaled space; "
        "spreads: largest minus smallest over clusters, all buyers):",
        *_text(versions),
        f"clusters of version {latest.model_version} (dispersion: mean squared distance to the centroid "
        "on the sample; churn_share: share in band High; response_rate: responses per treated exposure):",
        *_text(clusters),
    ]

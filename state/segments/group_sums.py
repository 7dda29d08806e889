"""Exact running sums per named segment and per cluster, so the evaluator's summary costs O(groups).

The summary (``GET /segments``) reports each group's size, share, mean recency, frequency and
monetary, and value share, over the customers with a profile. Walking every customer for it on
every save is O(population); instead :class:`GroupSums` keeps, per group, five integers (count,
sum of last purchase ms, sum of frequency, sum of net spend in cents, sum of spend clipped at 0)
that the population moves by one row's old and new contribution whenever that row's state or
profile changes. Integer sums are exact, so the figures equal a full walk's, and a mean recency
is one division of an exact numerator: ``(as_of_ms * n - sum_last) / (n * DAY_MS)``.

>>> sums = GroupSums()
>>> sums.add(Contribution("Champions", 0, last_ms=DAY_MS, frequency=3, monetary_cents=900), +1)
>>> sums.add(Contribution("Champions", 1, last_ms=0, frequency=1, monetary_cents=-100), +1)
>>> doc = sums.summary(2 * DAY_MS, ["Champions", "Lost"], {0: "a", 1: "b"})
>>> doc["customers"], doc["segments"][0]["mean_recency_days"], doc["segments"][0]["value_share"]
(2, 1.5, 1.0)
>>> doc["segments"][1]["mean_frequency"], doc["clusters"][1]["mean_monetary"]
(None, -1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from state.customer.rfm import DAY_MS

__all__ = ["Contribution", "GroupSums"]

_FIELDS = 5  # count, sum of last_ms, sum of frequency, sum of monetary_cents, sum of max(monetary_cents, 0)


class Contribution(NamedTuple):
    """What one profiled row adds to its named segment's and its cluster's sums."""

    segment: str
    cluster: int  # NO_CLUSTER (-1) when the profile has none
    last_ms: int
    frequency: int
    monetary_cents: int


def _add(sums: list[int], sign: int, last_ms: int, frequency: int, money: int) -> None:
    sums[0] += sign
    sums[1] += sign * last_ms
    sums[2] += sign * frequency
    sums[3] += sign * money
    sums[4] += sign * money if money > 0 else 0


class GroupSums:
    """Per named segment, per cluster id and over everyone: the five exact sums of the rows added."""

    def __init__(self) -> None:
        self.segments: dict[str, list[int]] = {}
        self.clusters: dict[int, list[int]] = {}
        self.total = [0] * _FIELDS

    def add(self, c: Contribution, sign: int) -> None:
        """Add (``sign`` +1) or remove (-1) one row's contribution."""
        values = (sign, c.last_ms, c.frequency, c.monetary_cents)
        _add(self.segments.setdefault(c.segment, [0] * _FIELDS), *values)
        _add(self.clusters.setdefault(c.cluster, [0] * _FIELDS), *values)
        _add(self.total, *values)

    def move(self, before: Contribution, segment: str, cluster: int) -> None:
        """Move a row's unchanged figures (``before``) to another segment or cluster (the total stays)."""
        values = (before.last_ms, before.frequency, before.monetary_cents)
        if segment != before.segment:
            _add(self.segments[before.segment], -1, *values)
            _add(self.segments.setdefault(segment, [0] * _FIELDS), +1, *values)
        if cluster != before.cluster:
            _add(self.clusters[before.cluster], -1, *values)
            _add(self.clusters.setdefault(cluster, [0] * _FIELDS), +1, *values)

    def summary(
        self, as_of_ms: int, segments: Sequence[str], cluster_names: Mapping[int, str]
    ) -> dict[str, Any]:
        """Size, share, mean recency/frequency/monetary and value share of every segment and cluster.

        ``segments`` in the given (preset) order, clusters in id order; a group with no member has
        no means (None) and a value share of 0.
        """
        everyone, value = self.total[0], max(self.total[4], 1)
        empty = [0] * _FIELDS

        def group(sums: list[int]) -> dict[str, Any]:
            n, last, frequency, money, positive = sums
            return {
                "customers": n,
                "share": round(n / max(everyone, 1), 4),
                "mean_recency_days": round((as_of_ms * n - last) / (n * DAY_MS), 2) if n else None,
                "mean_frequency": round(frequency / n, 3) if n else None,
                "mean_monetary": round(money / n / 100, 2) if n else None,
                "value_share": round(positive / value, 4),
            }

        return {
            "customers": everyone,
            "segments": [{"segment": s, **group(self.segments.get(s, empty))} for s in segments],
            "clusters": [
                {"cluster": c, "name": cluster_names[c], **group(self.clusters.get(c, empty))}
                for c in sorted(cluster_names)
            ],
        }

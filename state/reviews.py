"""Review figures from counters: per region and per customer, and per segment by joining the two.

Every applied review adds to two sets of the same counters, once (``state.analytics.review_store``): its
region's and its customer's. The counters are integers, so the figures are exact whatever the
order the reviews came in:

=============== ==================================================================
``n``           reviews
``sum``         sum of their scores
``s1`` .. ``s5`` reviews with score 1 .. 5 (the distribution)
``late``        reviews of an order delivered after its promised date
``on_time``     reviews of an order delivered at or before its promised date
``undated``     reviews without a delivery or a promised date (lateness unknown)
``late_sum``    sum of the scores of the ``late`` reviews (``on_time_sum`` likewise)
=============== ==================================================================

From them (:func:`figures`): the mean score, the distribution, the *late share*
``late / (late + on_time)`` (undated reviews are left out, not taken as on time) and the
*late gap*, mean score of late reviews minus mean score of on-time ones (negative when late
deliveries score lower). A customer's counters stay O(1) however many reviews they write.

Per segment is **by current segment**: a customer's counters count in the named segment their
profile has *now* (the segment evaluator's last save), not the one they were in when they
wrote the review; a customer without a profile yet counts as ``unknown``
(:func:`by_segment`).

>>> from streams.review_contract import Review
>>> c = combine([increments(Review("r1", "o1", "c1", 2, "north", 0, 9, 5)),
...              increments(Review("r2", "o2", "c1", 4, "north", 0, 3, 5)),
...              increments(Review("r3", "o3", "c1", 5, "north", 0))])
>>> f = figures(c)
>>> f["count"], f["mean"], f["late_share"], f["late_gap"], f["undated"], f["distribution"]["5"]
(3, 3.6666666666666665, 0.5, -2.0, 1, 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from streams.review_contract import MAX_SCORE, MIN_SCORE, Review

__all__ = [
    "COUNTERS",
    "UNKNOWN_SEGMENT",
    "Counters",
    "by_segment",
    "combine",
    "figures",
    "increments",
    "reviews_document",
]

SCORES = tuple(range(MIN_SCORE, MAX_SCORE + 1))
COUNTERS: tuple[str, ...] = (
    "n",
    "sum",
    *(f"s{s}" for s in SCORES),
    "late",
    "late_sum",
    "on_time",
    "on_time_sum",
    "undated",
)
UNKNOWN_SEGMENT = "unknown"
Counters = dict[str, int]


def increments(review: Review) -> Counters:
    """What one review adds to its region's and its customer's counters."""
    kind = review.lateness
    added = {"n": 1, "sum": review.score, f"s{review.score}": 1, kind: 1}
    if kind != "undated":
        added[f"{kind}_sum"] = review.score
    return added


def combine(many: Iterable[Mapping[str, int]]) -> Counters:
    """The counters added up (absent counters are 0; only :data:`COUNTERS` are kept)."""
    total = dict.fromkeys(COUNTERS, 0)
    for counters in many:
        for name in COUNTERS:
            total[name] += int(counters.get(name, 0))
    return total


def _ratio(top: int, bottom: int) -> float | None:
    return top / bottom if bottom else None


def figures(counters: Mapping[str, int]) -> dict[str, Any]:
    """Count, mean score, distribution (reviews per score), lateness figures; ``None`` where undefined."""
    c = combine([counters])
    mean_late, mean_on_time = _ratio(c["late_sum"], c["late"]), _ratio(c["on_time_sum"], c["on_time"])
    return {
        "count": c["n"],
        "mean": _ratio(c["sum"], c["n"]),
        "distribution": {str(s): c[f"s{s}"] for s in SCORES},
        "late": c["late"],
        "on_time": c["on_time"],
        "undated": c["undated"],
        "late_share": _ratio(c["late"], c["late"] + c["on_time"]),
        "mean_late": mean_late,
        "mean_on_time": mean_on_time,
        "late_gap": None if mean_late is None or mean_on_time is None else mean_late - mean_on_time,
    }


def by_segment(
    customers: Mapping[str, Mapping[str, int]], segment_of: Mapping[str, str | None]
) -> dict[str, Counters]:
    """Customers' counters added up per their current named segment (``unknown``: no profile yet)."""
    groups: dict[str, list[Mapping[str, int]]] = {}
    for customer, counters in customers.items():
        groups.setdefault(segment_of.get(customer) or UNKNOWN_SEGMENT, []).append(counters)
    return {segment: combine(members) for segment, members in groups.items()}


def _rows(key: str, groups: Mapping[str, Mapping[str, int]], order: Iterable[str]) -> list[dict[str, Any]]:
    return [{key: name, **figures(groups[name])} for name in order if name in groups]


def reviews_document(
    regions: Mapping[str, Mapping[str, int]],
    segments: Mapping[str, Mapping[str, int]],
    segment_order: Iterable[str] = (),
) -> dict[str, Any]:
    """The body of ``GET /reviews`` (without the envelope): everything, per region, per segment.

    Regions by name; segments in ``segment_order`` (the preset's), then any others by name,
    ``unknown`` last.
    """
    known = [s for s in segment_order if s in segments]
    rest = sorted(s for s in segments if s not in known and s != UNKNOWN_SEGMENT)
    order = [*known, *rest, *([UNKNOWN_SEGMENT] if UNKNOWN_SEGMENT in segments else [])]
    return {
        "all": figures(combine(regions.values())),
        "regions": _rows("region", regions, sorted(regions)),
        "segments": _rows("segment", segments, order),
        "segment_basis": "current",
    }

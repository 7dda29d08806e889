"""The buyers' sorted columns against sorting the arrays, and the re-scoring candidates against a brute force.

Oracles: numpy's sort for ranks and ranges; ``compute_cutpoints`` (which sorts the columns) for
the cut-points read at four ranks; ``scores_at`` applied to every buyer for the candidates.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from state.evaluator.candidates import decayed, threshold_moves
from state.segments.cutpoints import compute_cutpoints, cutpoints_of, scores_at
from state.segments.order_stats import DIMENSIONS, SortedColumns

DAY = 86_400_000
values = st.tuples(
    st.integers(0, 400).map(lambda d: d * DAY // 4),  # last purchase: quarter days, ties likely
    st.integers(1, 12),
    st.integers(-5_000, 50_000),  # net spend may be negative (refunds)
)
populations = st.lists(values, min_size=1, max_size=60)


def built(rows: list[tuple[int, int, int]]) -> SortedColumns:
    stats = SortedColumns()
    for row, v in enumerate(rows):
        stats.update(row, None, v)
    return stats


@settings(max_examples=100, deadline=None)
@given(populations, st.lists(st.tuples(st.integers(0, 59), st.none() | values), max_size=40))
def test_ranks_and_ranges_match_sorting_after_any_updates(
    start: list[tuple[int, int, int]], moves: list[tuple[int, tuple[int, int, int] | None]]
) -> None:
    current: dict[int, tuple[int, int, int]] = dict(enumerate(start))
    stats = built(start)
    for row, new in moves:
        stats.update(row, current.get(row), new)
        if new is None:
            current.pop(row, None)
        else:
            current[row] = new
    assert len(stats) == len(current)
    for i, dim in enumerate(DIMENSIONS):
        ordered = sorted((v[i], r) for r, v in current.items())
        assert [stats.value_at_rank(dim, k) for k in range(len(ordered))] == [v for v, _ in ordered]
        if ordered:
            low, high = ordered[0][0], ordered[len(ordered) // 2][0] + 1
            expected = [r for v, r in ordered if low <= v < high]
            assert stats.rows_between(dim, low, high).tolist() == expected


@settings(max_examples=100, deadline=None)
@given(populations, st.integers(400, 800))
def test_cutpoints_read_at_ranks_equal_the_sorted_computation(
    rows: list[tuple[int, int, int]], day: int
) -> None:
    last, freq, money = (np.asarray(c, dtype=np.int64) for c in zip(*rows, strict=True))
    at = day * DAY // 4
    assert cutpoints_of(built(rows), as_of_ms=at, version=3) == compute_cutpoints(
        last, freq, money, as_of_ms=at, version=3
    )


@settings(max_examples=100, deadline=None)
@given(populations, populations, st.integers(0, 40))
def test_candidates_are_exactly_the_buyers_whose_scores_move(
    rows: list[tuple[int, int, int]], other: list[tuple[int, int, int]], later_days: int
) -> None:
    """Cut-points of another population move the thresholds; time moves R: exactly those buyers change."""
    stats = built(rows)
    previous = 401 * DAY
    at = previous + later_days * DAY
    old = cutpoints_of(stats, as_of_ms=previous, version=1)
    new = cutpoints_of(built(other), as_of_ms=at, version=2)
    found = set(threshold_moves(stats, old, new, at).tolist()) | set(
        decayed(stats, old.max_age_ms, previous, at).tolist()
    )
    brute = {r for r, v in enumerate(rows) if scores_at(old, *v, previous) != scores_at(new, *v, at)}
    assert brute <= found  # every buyer whose scores move is a candidate
    decayed_only = set(decayed(stats, old.max_age_ms, previous, at).tolist())
    crossed = {r for r, v in enumerate(rows) if scores_at(old, *v, at) != scores_at(new, *v, at)}
    assert set(threshold_moves(stats, old, new, at).tolist()) == crossed  # and no other (thresholds)
    aged = {r for r, v in enumerate(rows) if scores_at(old, *v, previous)[0] != scores_at(old, *v, at)[0]}
    assert decayed_only == aged  # and no other (time)

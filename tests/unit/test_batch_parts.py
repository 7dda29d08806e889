"""An open churn batch cut by partition and joined again is the batch it was (every field, its
types), whatever the cut; a lost part is refused, not joined short."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state.evaluator.batch_parts import join_batch, split_batch
from state.models.online_logistic import PendingBatch

FIELDS = ("made_at_ms", "rows", "scores", "segments", "sample", "features", "served", "bands")


def batch(size: int, seed: int, served: bool, banded: bool) -> PendingBatch:
    rng = np.random.default_rng(seed)
    return PendingBatch.make(
        86_400_000 * seed,
        rng.permutation(size * 3)[:size].astype(np.int64),
        rng.random(size),
        rng.integers(0, 11, size),
        rng.random((size, 4)),
        50,
        served=rng.random(size) if served else None,
        bands=rng.integers(0, 4, size) if banded else None,
    )


def same(a: PendingBatch, b: PendingBatch) -> bool:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            if x is not y:
                return False
        elif isinstance(x, np.ndarray):
            if x.dtype != y.dtype or not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


@given(st.integers(1, 400), st.integers(1, 6), st.integers(0, 2**16), st.booleans(), st.booleans())
@settings(max_examples=80, deadline=None)
def test_a_batch_cut_and_joined_again_is_the_batch(
    size: int, partitions: int, seed: int, served: bool, banded: bool
) -> None:
    whole = batch(size, seed, served, banded)
    cut = np.random.default_rng(seed + 1).integers(0, partitions, size)
    head, parts = split_batch(whole, cut, partitions)
    assert len(parts) == partitions
    for p, part in enumerate(parts):  # each part holds its partition's positions only
        assert np.array_equal(part.positions, np.flatnonzero(cut == p))
        assert np.array_equal(part.rows, whole.rows[cut == p])
    through_bytes = pickle.loads(pickle.dumps((head, parts)))  # as a store keeps them
    assert same(join_batch(*through_bytes), whole)
    assert same(join_batch(head, list(reversed(parts))), whole)  # in any order


def test_the_head_does_not_grow_with_the_population() -> None:
    small, large = batch(1_000, 1, True, True), batch(100_000, 2, True, True)
    sizes = [len(pickle.dumps(split_batch(b, np.zeros(b.rows.size, np.int64), 1)[0])) for b in (small, large)]
    assert sizes[1] < 1.1 * sizes[0]  # the learning sample: 50 rows either way


def test_a_lost_part_is_refused() -> None:
    whole = batch(100, 3, True, False)
    head, parts = split_batch(whole, np.arange(100) % 3, 3)
    with pytest.raises(ValueError, match="parts hold 67 of its 100 rows"):
        join_batch(head, parts[:2])
    with pytest.raises(ValueError, match="for a batch of 100 rows"):
        split_batch(whole, np.zeros(99, np.int64), 3)


def test_the_parts_together_weigh_about_what_the_whole_batch_does() -> None:
    """Narrow integers in the parts too (a row number in 4 bytes, a segment or band in 1)."""
    whole = batch(100_000, 4, True, True)
    head, parts = split_batch(whole, np.arange(100_000) % 4, 4)
    cut = sum(len(pickle.dumps(p)) for p in parts) + len(pickle.dumps(head))
    assert cut < 1.1 * len(pickle.dumps(whole))

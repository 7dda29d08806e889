"""An open churn batch cut by evaluation partition: a small head for the owner, a part per partition.

A :class:`~state.models.online_logistic.PendingBatch` holds a row, a score, a segment (and the
served probability and band) of every buyer scored at the instant it was made, kept until its
labels arrive (90 days): saved whole it is one key gathering every customer, several a customer
once several batches are open. The split evaluator saves it cut: the *head* (when it was made,
how many rows, the learning sample and its features: ``churn_learn_per_batch`` rows, whatever the
population) with the owner's models, and each partition's *part* (its positions in the batch and
their row, score, segment, served probability and band) under the partition's tag.
:func:`join_batch` puts the parts back together, equal to the batch cut.

>>> import numpy as np
>>> from state.models.online_logistic import PendingBatch
>>> batch = PendingBatch.make(7, np.arange(5), np.linspace(0.1, 0.5, 5), np.zeros(5, np.int64), np.ones((5, 2)), 2)
>>> head, parts = split_batch(batch, np.array([0, 1, 0, 1, 1]), 2)
>>> [len(p.positions) for p in parts]
[2, 3]
>>> joined = join_batch(head, parts)
>>> (joined.made_at_ms, joined.rows.tolist(), joined.scores.tolist() == batch.scores.tolist())
(7, [0, 1, 2, 3, 4], True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from state.models.online_logistic import PendingBatch, narrowest_ints
from state.segments.drift import RowGaps

__all__ = ["BatchHead", "BatchPart", "join_batch", "split_batch"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BatchHead:
    """What the owner keeps of a batch: its instant, size, learning sample and their features."""

    made_at_ms: int
    size: int
    sample: IntArray
    features: FloatArray
    served: bool  # the parts carry served probabilities
    banded: bool  # the parts carry bands


@dataclass(frozen=True)
class BatchPart:
    """One partition's share of a batch: its positions in it and their values there."""

    positions: IntArray
    rows: IntArray
    scores: FloatArray
    segments: IntArray
    served: FloatArray | None
    bands: IntArray | None

    def __getstate__(self) -> dict[str, object]:
        """Pickled with its integers in the narrowest type that holds them, as a whole batch is
        (``PendingBatch.__getstate__``); loaded back as int64."""
        state = dict(self.__dict__)
        state["positions"] = RowGaps.of(self.positions)  # ascending: the gaps, about a byte each
        for name in _INT_FIELDS:
            if state[name] is not None:
                state[name] = narrowest_ints(state[name])
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        positions = state["positions"]
        assert isinstance(positions, RowGaps)
        state["positions"] = positions.rows()
        for name in _INT_FIELDS:
            if state[name] is not None:
                state[name] = np.asarray(state[name], dtype=np.int64)
        self.__dict__.update(state)


_INT_FIELDS = ("rows", "segments", "bands")


def split_batch(
    batch: PendingBatch, partition: IntArray, partitions: int
) -> tuple[BatchHead, list[BatchPart]]:
    """``batch`` cut by ``partition`` (the partition of each of its positions), one part per
    partition (empty for a partition with none of its rows)."""
    if partition.shape != batch.rows.shape:
        raise ValueError(f"{partition.size} partitions for a batch of {batch.rows.size} rows")
    head = BatchHead(
        batch.made_at_ms,
        int(batch.rows.size),
        batch.sample,
        batch.features,
        batch.served is not None,
        batch.bands is not None,
    )
    parts = []
    for p in range(partitions):
        at = np.flatnonzero(partition == p).astype(np.int64)
        parts.append(
            BatchPart(
                at,
                batch.rows[at],
                batch.scores[at],
                batch.segments[at],
                None if batch.served is None else batch.served[at],
                None if batch.bands is None else batch.bands[at],
            )
        )
    return head, parts


def join_batch(head: BatchHead, parts: Sequence[BatchPart]) -> PendingBatch:
    """The batch ``head`` and ``parts`` were cut from; every position must be in one part."""
    positions = np.concatenate([p.positions for p in parts]) if parts else np.empty(0, np.int64)
    if positions.size != head.size or np.unique(positions).size != head.size:
        raise ValueError(
            f"churn batch made at {head.made_at_ms}: parts hold {positions.size} of its {head.size} rows"
        )

    def whole(values: Sequence[npt.NDArray[np.generic]], dtype: type) -> npt.NDArray[np.generic]:
        out: npt.NDArray[np.generic] = np.empty(head.size, dtype=dtype)
        for part, v in zip(parts, values, strict=True):
            out[part.positions] = v
        return out

    served = [p.served for p in parts] if head.served else None
    bands = [p.bands for p in parts] if head.banded else None
    return PendingBatch(
        head.made_at_ms,
        whole([p.rows for p in parts], np.int64).astype(np.int64),
        whole([p.scores for p in parts], np.float64).astype(np.float64),
        whole([p.segments for p in parts], np.int64).astype(np.int64),
        head.sample,
        head.features,
        None
        if served is None
        else whole([s for s in served if s is not None], np.float64).astype(np.float64),
        None if bands is None else whole([b for b in bands if b is not None], np.int64).astype(np.int64),
    )

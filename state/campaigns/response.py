"""Online campaign-response model learned from delayed labels, with prequential ROC AUC.

An *exposure* (a customer shown one variant of a campaign) is scored when it happens, from the
customer's features at that instant (:func:`response_features`: the churn model's RFM,
behaviour and BG/NBD columns, the churn probability, whether the customer is known, the named
segment), the variant as a feature (``treated``: 1 for any variant but control, 0 for
control) and the campaign's descriptors when the exposure carries them
(:data:`state.campaigns.descriptors.DESCRIPTOR_FEATURES`: type, length, coupons, covered products,
discount depth; zeros otherwise) and what the customer bought of the campaign's covered
products before the exposure when the exposure says so (:data:`state.campaigns.prior_features.PRIOR_FEATURES`;
zeros otherwise). The scores wait with their features in :class:`PendingExposures` until the response
window ends (``window_ms`` after the exposure unless the caller gives the campaign's own); only
then is the label final: a response within the window is a positive. :meth:`ResponseModel.resolve`
counts the stored scores in the prequential ROC AUC (overall, by segment at exposure and by
variant) and only then learns them, one shuffled pass: test-then-train, as :mod:`state.models.churn`
does for churn, with the same histogram AUC, the same River pipeline and the same scorer
arithmetic (:func:`state.models.online_logistic.score_with`: standardise, clip, logistic).

>>> model = ResponseModel(names=("recency_days", "treated"), window_ms=10, learning_rate=0.01)
>>> x = np.array([[2.0, 1.0], [2.0, 0.0], [60.0, 1.0], [60.0, 0.0]])
>>> for t in range(0, 500, 10):  # recent treated customers respond, nobody else
...     for due in model.take_due(t):
...         model.resolve(due, np.array([True, False, False, False]))
...     _ = model.score(t, np.arange(4), x, np.zeros(4, dtype=np.int64))
>>> int(model.scores(x).argmax()), len(model.pending), model.version
(0, 1, 49)
>>> round(model.auc() or 0, 2), model.examples, model.positives
(1.0, 196, 49)
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from state.campaigns.descriptors import DESCRIPTOR_FEATURES
from state.campaigns.prior_features import PRIOR_FEATURES
from state.customer.rfm import DAY_MS
from state.models.churn_features import BASE_FEATURES, churn_matrix
from state.models.online_logistic import OnlineLogistic, PendingBatch
from state.models.prequential import Prequential, auc_rows

__all__ = [
    "DEFAULT_WINDOW_MS",
    "RESPONSE_BASE_FEATURES",
    "RESPONSE_LEARNING_RATE",
    "PendingExposures",
    "ResponseModel",
    "response_feature_names",
    "response_features",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Columns = Mapping[str, npt.NDArray[np.int64]]  # population columns (see state.segments.population)

DEFAULT_WINDOW_MS = 30 * DAY_MS
RESPONSE_LEARNING_RATE = 0.003
"""SGD step of the response and uplift models, chosen on ``make eval`` (0.01, 0.005, 0.003 tried:
with campaign descriptors, 0.01 learns the last campaign's rate too eagerly)."""
RESPONSE_BASE_FEATURES = (*BASE_FEATURES, "churn_probability", "known", "treated")
_BEHAVIOUR = len(BASE_FEATURES)  # columns zeroed for a customer not known at the exposure
_COLUMNS = ("frequency", "monetary_cents", "first_ms", "last_ms", "r", "f", "m")


def response_feature_names(segments: Sequence[str]) -> tuple[str, ...]:
    """The response model's columns: :data:`RESPONSE_BASE_FEATURES`, one indicator per segment,
    then the campaign's :data:`~state.campaigns.descriptors.DESCRIPTOR_FEATURES` and the customer's
    :data:`~state.campaigns.prior_features.PRIOR_FEATURES`."""
    return (
        *RESPONSE_BASE_FEATURES,
        *(f"segment={s}" for s in segments),
        *DESCRIPTOR_FEATURES,
        *PRIOR_FEATURES,
    )


def response_features(
    cols: Columns,
    at_ms: int,
    alive: FloatArray,
    expected: FloatArray,
    churn_probability: FloatArray,
    segment_index: IntArray,
    n_segments: int,
    treated: BoolArray,
    descriptors: FloatArray | None = None,
    prior: FloatArray | None = None,
) -> FloatArray:
    """The response model's features (:func:`response_feature_names` order), one row per exposure.

    ``cols`` are population columns at the exposure instant; a row with no purchase before it
    (``frequency`` 0, e.g. zeros for a customer the population has never seen) is *unknown*:
    ``known`` 0 and every other column 0 but ``treated``. ``segment_index`` is the named-segment
    index (``-1``: none). ``descriptors``: one row of descriptor features per exposure
    (:func:`state.campaigns.descriptors.descriptor_features`), zeros if None; ``prior``: one row of
    prior-purchase features per exposure (:func:`state.campaigns.prior_features.prior_features`), zeros if None.

    >>> cols = {n: np.array([3, 0]) for n in _COLUMNS} | {"first_ms": np.array([0, 0]), "last_ms": np.array([DAY_MS, 0])}
    >>> x = response_features(cols, 3 * DAY_MS, np.array([0.9, 0.0]), np.array([1.5, 0.0]),
    ...                       np.array([0.2, 0.5]), np.array([1, -1]), 2, np.array([True, True]))
    >>> named = dict(zip(response_feature_names(("a", "b")), x[0].tolist()))
    >>> named["recency_days"], named["known"], named["segment=b"], x[1].tolist()[-15:-10]  # unknown: treated only
    (2.0, 1.0, 1.0, [0.0, 0.0, 1.0, 0.0, 0.0])
    """
    known = np.asarray(cols["frequency"]) > 0
    safe = {name: np.where(known, cols[name], 0) for name in _COLUMNS}
    churn = churn_matrix(
        safe,
        at_ms,
        np.where(known, alive, 0.0),
        np.where(known, expected, 0.0),
        np.where(known, segment_index, -1),
        n_segments,
    )
    width = len(RESPONSE_BASE_FEATURES) + n_segments
    described = width + len(DESCRIPTOR_FEATURES)
    x = np.zeros((known.size, described + len(PRIOR_FEATURES)), dtype=np.float64)
    x[:, :_BEHAVIOUR] = np.where(known[:, None], churn[:, :_BEHAVIOUR], 0.0)
    x[:, _BEHAVIOUR] = np.where(known, churn_probability, 0.0)
    x[:, _BEHAVIOUR + 1] = known
    x[:, _BEHAVIOUR + 2] = treated
    x[:, len(RESPONSE_BASE_FEATURES) : width] = churn[:, _BEHAVIOUR:]  # unknown rows have no segment
    if descriptors is not None:
        x[:, width:described] = descriptors
    if prior is not None:
        x[:, described:] = prior
    return x


@dataclass(frozen=True)
class PendingExposures:
    """Exposures scored at one instant (``batch``: keys as ``rows``, stored scores, segments,
    learned sample), waiting until ``due_ms``, the end of their response window."""

    due_ms: int
    treated: BoolArray
    batch: PendingBatch


@dataclass
class ResponseModel(OnlineLogistic):
    """Scores response probability at exposure, learns at the window's end (module docstring)."""

    names: tuple[str, ...] = RESPONSE_BASE_FEATURES
    learning_rate: float = RESPONSE_LEARNING_RATE
    window_ms: int = DEFAULT_WINDOW_MS
    learn_per_batch: int = 5000  # the model learns from this many exposures of each batch
    pending: list[PendingExposures] = field(default_factory=list)  # by due time
    _by_variant: dict[str, Prequential] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "treated" not in self.names:
            raise ValueError(f"the features must include 'treated' (the variant); got {self.names}")
        super().__post_init__()

    def score(
        self, at_ms: int, keys: IntArray, x: FloatArray, segments: IntArray, *, window_ms: int | None = None
    ) -> FloatArray:
        """Score exposures made at ``at_ms`` and keep them pending until their window ends.

        ``keys`` name the exposures for the caller, who labels them when :meth:`take_due`
        returns them; ``window_ms`` overrides the model's window for these exposures.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (keys.size, len(self.names)):
            raise ValueError(
                f"x has shape {x.shape}; expected ({keys.size}, {len(self.names)}) for {keys.size} keys"
            )
        window = self.window_ms if window_ms is None else window_ms
        if window <= 0:
            raise ValueError(f"the response window must be positive, got {window} ms")
        scores = self.scores(x)
        batch = PendingBatch.make(at_ms, keys, scores, segments, x, self.learn_per_batch)
        treated = x[:, self.names.index("treated")] > 0
        bisect.insort_right(self.pending, PendingExposures(at_ms + window, treated, batch), key=_due)
        return scores

    def take_due(self, at_ms: int) -> list[PendingExposures]:
        """The pending exposures whose window ended at or before ``at_ms``, oldest due first (removed)."""
        cut = bisect.bisect_right(self.pending, at_ms, key=_due)
        due, self.pending = self.pending[:cut], self.pending[cut:]
        return due

    def resolve(self, pending: PendingExposures, responded: BoolArray) -> None:
        """Test-then-train: count the stored scores in the AUC (also by variant), then learn the sample."""
        batch, responded = pending.batch, np.asarray(responded, dtype=np.bool_)
        if responded.shape != batch.scores.shape:
            raise ValueError(
                f"{responded.size} labels for {batch.scores.size} exposures made at {batch.made_at_ms}"
            )
        for variant, mine in (("treatment", pending.treated), ("control", ~pending.treated)):
            if mine.any():
                self._by_variant.setdefault(variant, Prequential()).update_many(
                    responded[mine], batch.scores[mine]
                )
        self._test_then_train(batch, responded)

    def report(self) -> dict[str, Any]:
        """AUC and label counts overall, by segment at exposure and by variant; exposures pending."""
        return {
            **self._report(),
            "pending": sum(p.batch.scores.size for p in self.pending),
            "by_variant": auc_rows(self._by_variant),
        }


def _due(pending: PendingExposures) -> int:
    return pending.due_ms

"""What partition evaluators and the model owner tell each other at an instant.

Partitioned evaluation (``docs/design-notes.md``, "Partitioned evaluation") splits an instant of
:class:`state.evaluator.evaluate.Evaluator` in two: the per-customer work runs in one
:class:`~state.evaluator.partition_evaluator.PartitionEvaluator` per ``purchases`` partition, the
global steps in one :class:`~state.evaluator.model_owner.ModelOwner`. Per instant ``E``:

1. every partition evaluator sends a :class:`StateDelta`: the states of its customers folded at
   ``E`` (every one, changed or not, so the owner creates rows in the same order as one evaluator);
2. the owner answers with :class:`Versions`: the cut-points of ``E``, and the cluster, lifetime,
   churn and response models each partition evaluator must score with (a model travels only when
   its version moved);
3. every partition evaluator re-scores its candidates, predicts and alerts, and sends the
   :class:`RowUpdates` of the rows it wrote (profile and alert flags), which the owner applies
   before the global steps that read profiles (churn batches, uplift, campaigns, drift).

The messages are plain frozen data, the same in memory and on a topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from state.campaigns.response import ResponseModel
from state.customer.profiles import Profile
from state.customer.rfm import CustomerState
from state.evaluator.predict import LifetimeModel
from state.models.churn import ChurnModel
from state.models.clusters import SegmentModel
from state.segments.cutpoints import CutPoints
from state.segments.population import ALERT_COLUMNS, Population

__all__ = ["RowUpdates", "StateDelta", "Versions", "VersionsLog", "apply_updates", "row_updates"]


@dataclass(frozen=True, slots=True)
class StateDelta:
    """Partition ``partition``'s customers' states folded at instant ``at_ms``, in customer-id order."""

    partition: int
    at_ms: int
    states: tuple[CustomerState, ...]


@dataclass(frozen=True, slots=True)
class Versions:
    """What the owner decided at ``at_ms`` for everyone.

    ``cutpoints`` is None until the first buyer (nothing is scored then); ``model_moved`` says the
    cluster model published a new version at this instant (everyone is re-assigned). ``clusters``,
    ``churn`` and ``response`` (with ``reference``, the descriptor features of the last campaign
    described, one row) are None when unchanged since the owner last sent them; ``lifetime`` is
    sent every time (an immutable value: a reference in memory).
    """

    at_ms: int
    cutpoints: CutPoints | None
    model_moved: bool
    clusters: SegmentModel | None
    lifetime: LifetimeModel | None
    churn: ChurnModel | None
    response: ResponseModel | None
    reference: npt.NDArray[np.float64] | None


@dataclass(frozen=True, slots=True)
class VersionsLog:
    """The owner's versions since its save before last: what a partition evaluator whose own save
    is one behind the owner's needs to catch up alone.

    ``base`` carries every model (none left out) as of ``base.at_ms``, the owner's clock at the save
    before (None: the owner had not saved before); ``instants`` are the :class:`Versions` of each
    instant since, as the partitions received them. A partition evaluator restored from rows
    saved at ``base.at_ms`` adopts ``base`` and re-runs ``instants`` from its customers' logs (the
    owner holds their results already); one saved with the owner adopts them without re-running.
    """

    base: Versions | None
    instants: tuple[Versions, ...]


@dataclass(frozen=True, slots=True)
class RowUpdates:
    """The rows a partition evaluator wrote at an instant, by column: each customer's profile, the
    instant it was set (``since_ms``) and alert flags (``flags``: a row per customer, in
    ``ALERT_COLUMNS`` order). By column, not an object a row: an instant writes thousands."""

    customer_ids: tuple[str, ...]
    profiles: tuple[Profile | None, ...]
    since_ms: npt.NDArray[np.int64]
    flags: npt.NDArray[np.int64]


def row_updates(population: Population, rows: Sequence[int]) -> RowUpdates:
    """Rows ``rows``' profiles, since and alert flags as they are now."""
    at = np.asarray(rows, dtype=np.int64)
    flags = np.empty((at.size, len(ALERT_COLUMNS)), dtype=np.int64)
    for j, name in enumerate(ALERT_COLUMNS):
        flags[:, j] = population.column(name)[at]
    ids, profiles = population.ids, population.profiles
    return RowUpdates(
        tuple(ids[r] for r in rows),
        tuple(profiles[r] for r in rows),
        population.column("since_ms")[at].copy(),
        flags,
    )


def apply_updates(population: Population, updates: Sequence[RowUpdates]) -> None:
    """Write ``updates`` into their customers' rows of ``population`` (the rows exist: their states
    came first; a customer in one update at most): the flags column by column, a profile where it
    moved."""
    index, profiles, since = population.index, population.profiles, population.column("since_ms")
    for update in updates:
        if not update.customer_ids:
            continue
        rows = [index[c] for c in update.customer_ids]
        for j, name in enumerate(ALERT_COLUMNS):
            population.column(name)[rows] = update.flags[:, j]
        for row, profile, set_at in zip(rows, update.profiles, update.since_ms.tolist(), strict=True):
            if profile is not None and (profiles[row] != profile or since[row] != set_at):
                population.set_profile(row, profile, set_at)

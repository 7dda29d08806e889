"""The evaluator's saved form: its learned models as one pickle, its open churn batches one pickle
each, its population as row records.

The store keeps the evaluator as the rows it changed (``Evaluator.take_dirty`` records), its clock,
its cut-points (JSON), one snapshot of what it learned (:func:`models_blob`) and each open churn
prediction batch as an entry of its own (:func:`batch_entry`); a worker that restarts reads them
back (:func:`read_models`, :func:`open_batches`, :func:`read_population`).

Why the batches are apart: they are most of what the evaluator learned (one row per customer per
batch, several open at a time: 7.7 of 9.0 MB at 100k customers) and never change once made, so
each is written once, when it is made, and deleted when its labels arrive; the rest of the models
is written only when its bytes changed (:class:`SaveLedger`). A save then costs what changed, not
the population. Snapshots of versions that kept the batches in the blob (``"churn_batches"``)
still load, and the next save moves those batches to entries of their own.

Kept apart from the evaluator (``state.evaluator.evaluate``) because the snapshot's format, its
keys and the pickles of older versions it must still read (``state.customer.snapshots``), is one
concern of its own. The snapshot and the batches are pickles: read only what segstream itself saved.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from state.campaigns.campaign_book import CampaignBook
from state.customer import snapshots
from state.evaluator.predict import LifetimeModel
from state.models.churn import ChurnModel
from state.models.clusters import SegmentModel
from state.models.online_logistic import PendingBatch
from state.segments.drift import DriftMonitor
from state.segments.population import Population

__all__ = [
    "BatchEntry",
    "SaveLedger",
    "SavedModels",
    "SavedParts",
    "batch_entry",
    "models_blob",
    "open_batches",
    "read_models",
    "read_population",
]

BatchEntry = tuple[int, bytes]
"""An open churn batch as the store keeps it: ``(made_at_ms, pickle)``."""


class SavedModels(NamedTuple):
    """What a snapshot holds; each model None when the snapshot predates it. ``batches``: the open
    churn batches of a snapshot of a version that kept them in the blob (empty for newer ones: those
    are saved apart, :func:`batch_entry`); :func:`models_blob` does not write them."""

    segment_model: SegmentModel | None
    churn: ChurnModel | None
    batches: Sequence[PendingBatch]
    lifetime: LifetimeModel | None
    campaigns: CampaignBook | None
    held_back: dict[str, int]
    drift: tuple[DriftMonitor, DriftMonitor] | None
    cluster_quality: list[dict[str, object]]


def models_blob(models: SavedModels) -> bytes:
    """The snapshot of ``models`` (clusters, churn, lifetime...) as one blob, without the open batches.

    The cluster model is saved as its own snapshot bytes (``SegmentModel.snapshot``), the rest as
    the objects themselves.
    """
    assert models.segment_model is not None
    return pickle.dumps(
        {
            "segment_model": models.segment_model.snapshot(),
            "churn_model": models.churn,
            "lifetime": models.lifetime,
            "campaigns": models.campaigns,
            "held_back": models.held_back,
            "drift": models.drift,
            "cluster_quality": models.cluster_quality,
        }
    )


def read_models(blob: bytes | None) -> SavedModels:
    """The models of a snapshot :func:`models_blob` made (or an older segstream did); none without one."""
    models = snapshots.load(blob) if blob else {}
    return SavedModels(
        segment_model=SegmentModel.restore(models["segment_model"]) if models else None,
        churn=models.get("churn_model"),
        batches=models.get("churn_batches", ()),
        lifetime=models.get("lifetime"),
        campaigns=models.get("campaigns"),
        held_back=models.get("held_back", {}),
        drift=models.get("drift"),
        cluster_quality=models.get("cluster_quality", []),
    )


def batch_entry(batch: PendingBatch) -> BatchEntry:
    """An open churn batch as the store keeps it, keyed by the instant it was made."""
    return batch.made_at_ms, pickle.dumps(batch)


def open_batches(from_blob: Sequence[PendingBatch], entries: Sequence[BatchEntry]) -> list[PendingBatch]:
    """The open churn batches, oldest first: those saved apart (``entries``) and those an older
    version's snapshot held (``from_blob``); one per instant, an entry before the blob's copy."""
    batches = {made_at_ms: snapshots.load(data) for made_at_ms, data in entries}
    for batch in from_blob:
        batches.setdefault(batch.made_at_ms, batch)
    return [batches[made_at_ms] for made_at_ms in sorted(batches)]


class SavedParts(NamedTuple):
    """What the store must write of the learned state since it last saved (:meth:`SaveLedger.take`)."""

    model: bytes | None  # the models' snapshot; None: the same bytes as the store holds
    batches_added: list[BatchEntry]  # open batches the store does not hold yet
    batches_removed: list[int]  # made_at_ms of batches the store holds that are closed now


@dataclass
class SaveLedger:
    """What the store holds of one evaluator, as far as it knows: the snapshot's digest and the open
    batches saved. A fresh ledger (a new or reloaded evaluator) knows nothing of the snapshot, so
    the first save writes it whole; a reloaded one knows the batches it was restored from entries."""

    digest: bytes | None = None
    batches: set[int] = field(default_factory=set)  # made_at_ms of the batches saved apart

    def take(self, blob: bytes, batches: Sequence[PendingBatch]) -> SavedParts:
        """What to write so the store holds ``blob`` and exactly ``batches``; noted as written.

        Like ``Evaluator.take_dirty``: if the write then fails, the caller drops this evaluator and
        reloads from the store (a fresh ledger), as it does for the rows.
        """
        digest = hashlib.sha256(blob).digest()
        now = {b.made_at_ms for b in batches}
        parts = SavedParts(
            None if digest == self.digest else blob,
            [batch_entry(b) for b in batches if b.made_at_ms not in self.batches],
            sorted(self.batches - now),
        )
        self.digest, self.batches = digest, now
        return parts


def read_population(records: Sequence[Mapping[str, object]]) -> Population:
    """The population saved as row records (``Population.record``), rows in their order."""
    population = Population()
    for record in sorted(records, key=lambda r: int(str(r["row"]))):
        population.load_record(dict(record))
    return population

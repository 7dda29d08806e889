"""The evaluator's saved form: its learned models as one pickle, its population as row records.

The store keeps the evaluator as the rows it changed (``Evaluator.take_dirty`` records), its clock,
its cut-points (JSON) and one snapshot of what it learned (:func:`models_blob`); a worker that
restarts reads them back (:func:`read_models`, :func:`read_population`). Kept apart from the
evaluator (``state.evaluator.evaluate``) because the snapshot's format, its keys and the pickles of
older versions it must still read (``state.customer.snapshots``), is one concern of its own. The
snapshot is a pickle: read only what segstream itself saved.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from state.campaigns.campaign_book import CampaignBook
from state.customer import snapshots
from state.evaluator.predict import LifetimeModel
from state.models.churn import ChurnModel
from state.models.clusters import SegmentModel
from state.models.online_logistic import PendingBatch
from state.segments.drift import DriftMonitor
from state.segments.population import Population

__all__ = ["SavedModels", "models_blob", "read_models", "read_population"]


class SavedModels(NamedTuple):
    """What a snapshot holds; each model None (and ``batches`` empty) when the snapshot predates it."""

    segment_model: SegmentModel | None
    churn: ChurnModel | None
    batches: Sequence[PendingBatch]
    lifetime: LifetimeModel | None
    campaigns: CampaignBook | None
    held_back: dict[str, int]
    drift: tuple[DriftMonitor, DriftMonitor] | None
    cluster_quality: list[dict[str, object]]


def models_blob(models: SavedModels) -> bytes:
    """The snapshot of ``models`` (clusters, churn with its open batches, lifetime...) as one blob.

    The cluster model is saved as its own snapshot bytes (``SegmentModel.snapshot``), the rest as
    the objects themselves.
    """
    assert models.segment_model is not None
    return pickle.dumps(
        {
            "segment_model": models.segment_model.snapshot(),
            "churn_model": models.churn,
            "churn_batches": models.batches,
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


def read_population(records: Sequence[Mapping[str, object]]) -> Population:
    """The population saved as row records (``Population.record``), rows in their order."""
    population = Population()
    for record in sorted(records, key=lambda r: int(str(r["row"]))):
        population.load_record(dict(record))
    return population

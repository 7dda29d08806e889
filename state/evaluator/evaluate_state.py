"""What the evaluator owns: the population, the models, the open churn batches, alerts and rows to save.

:class:`EvaluatorState` is the part of :class:`state.evaluator.evaluate.Evaluator` every other part
stands on (the instants in :mod:`state.evaluator.evaluate`, the predictions and alerts in
:mod:`state.evaluator.evaluate_predictions`, the saves and reports in
:mod:`state.evaluator.evaluate_saves`): its constructor, which fills in a fresh model for every
part not given (a first start) or takes the parts restored from the store, and the two steps of an
instant the one evaluator and the model owner of a partitioned evaluation share: the buyers'
sorted values and the cluster model's learning (``state.evaluator.model_owner``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from state.campaigns.campaign_book import CampaignBook
from state.campaigns.response import ResponseModel, response_feature_names
from state.evaluator.candidates import buyer_columns
from state.evaluator.cluster_quality import assess_version, keep_latest
from state.evaluator.config import EvaluatorConfig, segment_lookups
from state.evaluator.instants import evaluation_instants
from state.evaluator.predict import LifetimeModel
from state.evaluator.rescore import learn
from state.evaluator.saved import SaveLedger
from state.models.alerts import Alert
from state.models.churn import ChurnModel
from state.models.churn_features import churn_feature_names
from state.models.clusters import SegmentModel
from state.models.online_logistic import PendingBatch
from state.segments.cutpoints import CutPoints
from state.segments.drift import DriftMonitor
from state.segments.order_stats import SortedColumns
from state.segments.population import Population

__all__ = ["EvaluatorState"]


class EvaluatorState:
    """The evaluator's state (pure: no I/O); :class:`state.evaluator.evaluate.Evaluator` advances it."""

    def __init__(
        self,
        config: EvaluatorConfig,
        *,
        clock_ms: int | None = None,
        cutpoints: CutPoints | None = None,
        model: SegmentModel | None = None,
        population: Population | None = None,
        churn: ChurnModel | None = None,
        batches: Sequence[PendingBatch] = (),
        lifetime: LifetimeModel | None = None,
        campaigns: CampaignBook | None = None,
        drift: tuple[DriftMonitor, DriftMonitor] | None = None,
    ) -> None:
        self.config = config
        self.clock_ms = clock_ms
        self.cutpoints = cutpoints
        self.model = model or SegmentModel(config.cluster)
        segments = tuple(config.preset.segments)
        self.churn = churn or ChurnModel(names=churn_feature_names(segments), segments=segments)
        # churn predictions awaiting their labels, oldest first
        self.batches: list[PendingBatch] = list(batches)
        self.lifetime = lifetime
        self.campaigns = campaigns or CampaignBook(
            ResponseModel(
                names=response_feature_names(segments), segments=segments, window_ms=config.response_window_ms
            )
        )
        self.population = population or Population()
        # (named segments, clusters): a CUSUM per group and figure on the per-day series
        self.drift = drift or (DriftMonitor(config.drift), DriftMonitor(config.drift))
        self.dirty: set[int] = set()  # rows changed since the store last saved them
        self.ledger = SaveLedger()  # what the store holds of the snapshot and the open batches
        self.alerts: list[Alert] = []  # raised since the last take_alerts
        self.held_back: Counter[str] = Counter()  # crossings a shut model gate kept from alerting
        self.cluster_quality: list[dict[str, object]] = []  # the latest cluster model versions' figures
        self._stats: SortedColumns | None = (
            None  # the buyers' R, F, M values sorted (built when first needed)
        )
        self._names = self.model.cluster_names()  # the names current profiles were published with
        # each (r, f, m) triple's named segment, and as an index into the preset's segments
        self._segment, self._segment_index = segment_lookups(config.preset)

    def instants(self, to_ms: int, earliest_event_ms: int | None) -> list[int]:
        """The instants an advance evaluates up to ``to_ms``: from the clock, or before a first
        evaluation from the earliest event due (none if there is neither). The one evaluator's,
        and the model owner's for the partitions (it keeps the clock)."""
        start = self.clock_ms if self.clock_ms is not None else earliest_event_ms
        return [] if start is None else evaluation_instants(start, to_ms, self.config.step_ms)

    def _sorted_columns(self) -> SortedColumns:
        """The buyers' values kept sorted; built from the population the first time (after a restore)."""
        if self._stats is None:
            self._stats = buyer_columns(self.population)
        return self._stats

    def _learn_clusters(self, at_ms: int, buyers: npt.NDArray[np.int64]) -> bool:
        """The cluster model's walk at ``at_ms`` (``state.evaluator.rescore.learn``), and the
        figures of a version it publishes; whether it published one."""
        moved = learn(self.model, self.population, buyers, at_ms, self.config)
        if moved:  # once per new cluster model version
            cfg = self.config.quality
            quality = assess_version(at_ms, self.population, self.model, self.campaigns.exposures, cfg)
            self.cluster_quality = keep_latest(self.cluster_quality, quality, cfg.versions_kept)
        return moved

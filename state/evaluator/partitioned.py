"""Partitioned evaluation in one process: a model owner and one partition evaluator per partition.

The in-memory form of the plan in ``docs/design-notes.md`` ("Partitioned evaluation"): the same
messages (``state.evaluator.partition_messages``) pass between a
:class:`~state.evaluator.model_owner.ModelOwner` and P
:class:`~state.evaluator.partition_evaluator.PartitionEvaluator` in a loop instead of over
topics. :meth:`PartitionedEvaluator.advance` takes what :meth:`Evaluator.advance
<state.evaluator.evaluate.Evaluator.advance>` takes and returns the same changes in the same
order, with the same alerts, models and rows, for any number of partitions and any assignment
of customers to them: the test of the split (``tests/unit/test_partitioned_evaluation.py``).

>>> from state.customer.event_log import LogEntry
>>> from state.evaluator.config import EvaluatorConfig
>>> from state.evaluator.evaluate import Evaluator
>>> from state.segments.segments import load_preset
>>> config = EvaluatorConfig(load_preset("rfm11"))
>>> logs = {"a": [LogEntry(5, "e1", "purchase", 900)], "b": [LogEntry(7, "e2", "purchase", 100)]}
>>> changes = PartitionedEvaluator(config, partitions=2).advance(10, logs)
>>> [(c.customer_id, c.after.rfm_segment) for c in changes]
[('a', 'Hibernating'), ('b', 'About To Sleep')]
>>> changes == Evaluator(config).advance(10, logs)
True
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from state.campaigns.campaign_book import CampaignBook
from state.customer.event_log import LogBase, LogEntry, LogFold
from state.customer.profiles import Change
from state.evaluator.config import EvaluatorConfig
from state.evaluator.instants import due_at_instants, evaluation_instants, log_folds
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_evaluator import PartitionEvaluator
from state.evaluator.saved import BatchEntry
from state.models.alerts import Alert
from streams.campaign_contract import CampaignEvent

__all__ = ["PartitionedEvaluator", "SplitSave", "crc32_partition"]

# the order the one evaluator runs its alert rules in at an instant (each rule's alerts in customer-id
# order), then the drift alerts
_RULE_ORDER = {"overdue": 0, "churn_risk": 1, "likely_responder": 2}


def crc32_partition(partitions: int) -> Callable[[str], int]:
    """A stable assignment of customer ids to ``partitions`` partitions (CRC-32 of the id)."""
    return lambda customer_id: zlib.crc32(customer_id.encode()) % partitions


class PartitionedEvaluator:
    """One :class:`ModelOwner` and ``partitions`` :class:`PartitionEvaluator`, advanced together."""

    def __init__(
        self,
        config: EvaluatorConfig,
        partitions: int,
        *,
        partition_of: Callable[[str], int] | None = None,
        campaigns: CampaignBook | None = None,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self.config = config
        self.owner = ModelOwner(config, campaigns=campaigns)
        self.partitions = [PartitionEvaluator(config, p) for p in range(partitions)]
        self.partition_of = partition_of or crc32_partition(partitions)
        self.alerts: list[Alert] = []  # raised since the last take_alerts, as the one evaluator orders them

    def advance(
        self,
        to_ms: int,
        logs: Mapping[str, Sequence[LogEntry]],
        campaign_events: Sequence[CampaignEvent] = (),
        bases: Mapping[str, LogBase] | None = None,
    ) -> list[Change]:
        """Evaluate every instant up to ``to_ms`` (the arguments and result of ``Evaluator.advance``)."""
        folds: list[list[LogFold]] = [[] for _ in self.partitions]
        for fold in log_folds(logs, bases or {}):
            folds[self.partition_of(fold.customer_id)].append(fold)
        starts = [at for mine in folds for f in mine if (at := f.next_event_ms()) is not None]
        clock = self.owner.clock_ms
        start = clock if clock is not None else min(starts, default=None)
        instants = [] if start is None else evaluation_instants(start, to_ms, self.config.step_ms)
        due = [due_at_instants(instants, mine, (), to_ms) for mine in folds]
        events = due_at_instants(instants, [], campaign_events, to_ms)
        changes: list[Change] = []
        for (at_ms, _, applied), *parts in zip(events, *due, strict=True):
            deltas = [p.fold(at_ms, states) for p, (_, states, _) in zip(self.partitions, parts, strict=True)]
            versions = self.owner.state_step(at_ms, deltas)
            results = [p.apply(versions) for p in self.partitions]
            drift = self.owner.profile_step(at_ms, [u for _, mine in results for u in mine], applied)
            row = self.owner.population.index.__getitem__
            changes += sorted((c for mine, _ in results for c in mine), key=lambda c: row(c.customer_id))
            raised = [a for p in self.partitions for a in p.take_alerts()]
            self.alerts += sorted(raised, key=lambda a: (_RULE_ORDER[a.kind], a.customer_id)) + drift
            for p in self.partitions:  # the owner's summary and snapshot count them all
                self.owner.held_back.update(p.held_back)
                p.held_back.clear()
        return changes

    @classmethod
    def restore(
        cls,
        config: EvaluatorConfig,
        saved: SplitSave,
        *,
        partition_of: Callable[[str], int] | None = None,
    ) -> PartitionedEvaluator:
        """The split as ``saved``: the owner rebuilt from its models and every partition's rows,
        each partition evaluator from its own rows (``partition_of`` must be the one saved with)."""
        split = cls(config, len(saved.rows), partition_of=partition_of)
        owner = ModelOwner.rebuild(
            config,
            saved.clock_ms,
            saved.cutpoints_json,
            saved.models,
            [r for rows in saved.rows for r in rows],
            saved.batches,
        )
        clusters = owner.model.published_view()
        split.owner = owner
        split.partitions = [
            PartitionEvaluator.restore(config, p, rows, owner.clock_ms, owner.cutpoints, clusters)
            for p, rows in enumerate(saved.rows)
        ]
        return split

    def take_alerts(self) -> list[Alert]:
        """The alerts raised since the last call, in the one evaluator's order (clears them)."""
        alerts, self.alerts = self.alerts, []
        return alerts


@dataclass(frozen=True, slots=True)
class SplitSave:
    """What a store holds of a split: the owner's clock, cut-points, models and open churn batches
    (:meth:`ModelOwner.snapshot`, :meth:`ModelOwner.batch_entries`) and each partition's rows
    (the latest :meth:`PartitionEvaluator.take_dirty` record of each), by partition."""

    clock_ms: int | None
    cutpoints_json: str | None
    models: bytes
    batches: Sequence[BatchEntry]
    rows: Sequence[Sequence[Mapping[str, object]]]

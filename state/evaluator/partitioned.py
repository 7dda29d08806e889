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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from state.campaigns.campaign_book import CampaignBook
from state.customer.event_log import LogBase, LogEntry, LogFold
from state.customer.partitions import customer_partition
from state.customer.profiles import Change
from state.evaluator.config import EvaluatorConfig
from state.evaluator.instants import due_at_instants, log_folds
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_evaluator import PartitionEvaluator
from state.evaluator.partition_messages import VersionsLog
from state.evaluator.predict import LifetimeModel
from state.evaluator.saved import BatchEntry
from state.models.alerts import RULE_ORDER, Alert
from state.models.clusters import SegmentModel
from streams.campaign_contract import CampaignEvent

__all__ = ["PartitionedEvaluator", "SplitSave"]


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
        # by default a customer's partition is the one their purchases arrive on when keyed by id
        self.partition_of = partition_of or partial(customer_partition, partitions=partitions)
        self.alerts: list[Alert] = []  # raised since the last take_alerts, as the one evaluator orders them
        self.caught_up: list[Change] = []  # a restored partition's changes of the instants it re-ran

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
        instants = self.owner.instants(to_ms, min(starts, default=None))
        due = [due_at_instants(instants, mine, (), to_ms) for mine in folds]
        events = due_at_instants(instants, [], campaign_events, to_ms)
        changes: list[Change] = []
        for (at_ms, _, applied), *parts in zip(events, *due, strict=True):
            deltas = [p.fold(at_ms, states) for p, (_, states, _) in zip(self.partitions, parts, strict=True)]
            versions = self.owner.state_step(at_ms, deltas)
            results = [p.apply(versions) for p in self.partitions]
            drift = self.owner.profile_step(at_ms, [mine for _, mine in results], applied)
            row = self.owner.population.index.__getitem__
            changes += sorted((c for mine, _ in results for c in mine), key=lambda c: row(c.customer_id))
            raised = [a for p in self.partitions for a in p.take_alerts()]
            self.alerts += sorted(raised, key=lambda a: (RULE_ORDER[a.kind], a.customer_id)) + drift
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
        logs: Mapping[str, Sequence[LogEntry]] | None = None,
        bases: Mapping[str, LogBase] | None = None,
    ) -> PartitionedEvaluator:
        """The split as ``saved`` (``partition_of`` must be the one saved with).

        Each partition evaluator is restored from its own rows; one whose save is one behind the
        owner's (its clock the base of ``saved.log``) re-runs the log's instants alone, from
        ``logs`` and ``bases`` (what the advance it missed was given): its changes of them are in
        :attr:`caught_up` and its alerts come first from :meth:`take_alerts` (the same again: a
        subscriber sees them at least once).
        Then the owner is rebuilt from its models and every partition's rows."""
        split = cls(config, len(saved.rows), partition_of=partition_of)
        clocks = list(saved.partition_clocks) or [saved.clock_ms] * len(saved.rows)
        log, owner = saved.log, None
        if log is None:  # without a log every partition saved with the owner: its models say it all
            owner = ModelOwner.rebuild(
                config,
                saved.clock_ms,
                saved.cutpoints_json,
                saved.models,
                [r for rows in saved.rows for r in rows],
                saved.batches,
            )
            log = owner.take_log()  # every model as of its clock, no instant since
        folds: list[list[LogFold]] = [[] for _ in saved.rows]
        for fold in log_folds(logs or {}, bases or {}):
            folds[split.partition_of(fold.customer_id)].append(fold)
        split.partitions = []
        for p, rows in enumerate(saved.rows):
            part = PartitionEvaluator.restore(config, p, rows, None, None, SegmentModel(config.cluster))
            with_owner = clocks[p] == saved.clock_ms
            if not with_owner and log.base is not None and clocks[p] != log.base.at_ms:
                raise ValueError(
                    f"partition {p} saved at {clocks[p]}, neither with the owner ({saved.clock_ms}) nor "
                    f"one save behind ({log.base.at_ms}): its log is gone"
                )
            if log.base is not None:
                part.adopt(log.base)
            if with_owner:
                for versions in log.instants:
                    part.adopt(versions)
            else:
                split.caught_up += part.catch_up(log.instants, folds[p])
                split.alerts += part.take_alerts()
            split.partitions.append(part)
        # the owner last, from every partition's rows once they are all at its clock
        split.owner = owner or ModelOwner.rebuild(
            config,
            saved.clock_ms,
            saved.cutpoints_json,
            saved.models,
            [r for part in split.partitions for r in part.records()],
            saved.batches,
        )
        return split

    @property
    def clock_ms(self) -> int | None:
        """The owner's clock: every instant up to it is evaluated everywhere."""
        return self.owner.clock_ms

    def instants(self, to_ms: int, earliest_event_ms: int | None) -> list[int]:
        """The instants :meth:`advance` evaluates up to ``to_ms`` (the owner's: it keeps the clock)."""
        return self.owner.instants(to_ms, earliest_event_ms)

    def refit(self) -> LifetimeModel | None:
        """The owner's refit at the clock (``Evaluator.refit``); the partitions score with it from
        the next instant's versions, which always carry the lifetime model."""
        return self.owner.refit()

    def take_dirty(self) -> list[list[dict[str, object]]]:
        """Each partition's rows changed since the last call (:meth:`PartitionEvaluator.take_dirty`)."""
        return [part.take_dirty() for part in self.partitions]

    def take_alerts(self) -> list[Alert]:
        """The alerts raised since the last call, in the one evaluator's order (clears them)."""
        alerts, self.alerts = self.alerts, []
        return alerts


@dataclass(frozen=True, slots=True)
class SplitSave:
    """What a store holds of a split: the owner's clock, cut-points, models, open churn batches and
    versions log (:meth:`ModelOwner.snapshot`, :meth:`ModelOwner.batch_entries`,
    :meth:`ModelOwner.take_log`) and each partition's rows (the latest
    :meth:`PartitionEvaluator.take_dirty` record of each) and clock, by partition."""

    clock_ms: int | None
    cutpoints_json: str | None
    models: bytes | None
    batches: Sequence[BatchEntry]
    rows: Sequence[Sequence[Mapping[str, object]]]
    partition_clocks: Sequence[int | None] = ()  # each partition's clock at its save (empty: the owner's)
    log: VersionsLog | None = None  # the owner's versions since its save before (ModelOwner.take_log)

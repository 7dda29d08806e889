"""Partition hosts that read only their own evaluation partition from Redis give the one evaluator's output.

Stage three's hosts each read their partition's agenda entries and their customers' logs
(``agents.due_reads.read_due`` with ``partition``) and answer the owner over a bus that reorders and
repeats (``state.evaluator.partition_protocol``). The oracle is the worker's one evaluator
(``SegmentEvaluator``) over the same purchases in another namespace of the same Redis, on a single
node and on the 3-master cluster (``tests/integration/test_split_evaluation.py``'s fixtures).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from agents.due_reads import read_due
from agents.ingest import ingest_batch
from state.adapters.redis_access import RedisAccess
from state.customer.partitions import customer_partition
from state.customer.profiles import Change
from state.customer.rfm import CustomerState
from state.evaluator.instants import due_at_instants, log_folds
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_evaluator import PartitionEvaluator
from state.evaluator.partition_protocol import Chunk, HostSide, OwnerSide
from state.evaluator.read_model import summary_record
from state.models.alerts import Alert
from tests.integration.test_split_evaluation import Namespace, access, one, ticks
from tests.unit.test_evaluator_saves import CONFIG, history
from tests.unit.test_partition_protocol import Bus, run_instants
from tests.unit.test_segment_evaluator import no_letters

pytestmark = pytest.mark.integration
__all__ = ["access", "one"]  # the fixtures, used by name


async def test_hosts_reading_their_own_partitions_give_the_one_evaluators_changes_and_alerts(
    access: RedisAccess, one: Namespace
) -> None:
    namespace = Namespace(access)
    try:
        messages = history()
        await ingest_batch(messages, namespace.store, no_letters)
        partitions = await namespace.store.eval_partitions()
        owner = ModelOwner(CONFIG)
        evaluators = [PartitionEvaluator(CONFIG, p) for p in range(partitions)]
        changes: list[Change] = []
        alerts: list[Alert] = []
        previous: int | None = None
        read: set[str] = set()
        for n, tick in enumerate(ticks(len(messages))):
            earliest = await namespace.store.earliest_due(tick.as_of_ms)  # agenda score: occurred + 1
            instants = owner.instants(tick.as_of_ms, None if earliest is None else earliest - 1)
            hosts = []
            for p in range(partitions):
                due = await read_due(namespace.store, tick.as_of_ms, previous, partition=p)
                assert {customer_partition(c, partitions) for c in due.customers} <= {p}
                read.update(due.customers)
                folds = log_folds(due.logs, due.bases)
                states: dict[int, list[CustomerState]] = {
                    at: s for at, s, _ in due_at_instants(instants, folds, (), tick.as_of_ms)
                }
                hosts.append(HostSide(evaluators[p], states.__getitem__))
            owner_side = OwnerSide(owner, partitions, Chunk(tick.as_of_ms, previous, tuple(instants)))
            run_instants(Bus(n, 0.1, 0.1), owner_side, hosts)
            for host in hosts:
                changes += host.changes
                alerts += host.take_alerts()
            alerts += owner_side.alerts
            previous = tick.as_of_ms
        row = owner.population.index.__getitem__
        assert len(read) == len({m.key for m in messages}) and partitions == 4
        assert len(one.out.changes) > 1000 and one.out.alerts
        assert sorted(changes, key=lambda c: (c.at_ms, row(c.customer_id))) == one.out.changes
        assert Counter(map(repr, alerts)) == Counter(map(repr, one.out.alerts))
        saved = await one.profiles.summary()
        assert saved == json.loads(json.dumps(summary_record(owner.summary())))  # the same models
    finally:
        await namespace.close()

"""The partition protocol over a bus that reorders and repeats messages equals the one evaluator.

The bus is what stage three's topics may do (``state.evaluator.partition_protocol``): each message
crosses as its bytes (``encode``/``decode``); a recipient sees each sender's messages in the order
they were sent, but the senders' interleaving is random; a message may be delivered twice in a
row (a producer's retry), and a recipient may see its last few messages from a sender again (a
consumer resuming from an older offset). The oracle is the one evaluator
(``tests/unit/test_partitioned_evaluation.py``'s run over the shuffled, ticked CDNOW slice).
"""

from __future__ import annotations

import pickle
import random
from collections import Counter, deque
from collections.abc import Callable, Sequence

import pytest

from agents.partition_owner import instant_campaign_events
from state.customer.event_log import LogFold
from state.customer.partitions import customer_partition
from state.customer.profiles import Change
from state.customer.rfm import DAY_MS, CustomerState
from state.evaluator.evaluate import Evaluator
from state.evaluator.instants import due_at_instants, log_folds
from state.evaluator.model_owner import ModelOwner
from state.evaluator.partition_evaluator import PartitionEvaluator
from state.evaluator.partition_messages import StateDelta
from state.evaluator.partition_protocol import (
    Advance,
    Chunk,
    Closed,
    HostSide,
    Message,
    OwnerSide,
    ProtocolError,
    Saved,
    cut_chunks,
    decode,
    encode,
)
from state.evaluator.partitioned import PartitionedEvaluator
from state.models.alerts import Alert
from tests.unit.test_evaluate import UNGATED, campaign_events, eager_book, synthetic_logs
from tests.unit.test_partitioned_evaluation import assert_same, described, one_run, shuffled_ticks

OWNER = -1


class Bus:
    """Channels (sender -> recipient) of encoded messages, delivered in a seeded random order."""

    def __init__(self, seed: int, repeat: float, replay: float) -> None:
        self._random = random.Random(seed)
        self._repeat, self._replay = repeat, replay
        self._queues: dict[tuple[int, int], deque[bytes]] = {}
        self._delivered: dict[tuple[int, int], deque[bytes]] = {}
        self.deliveries = 0

    def send(self, sender: int, recipient: int, message: Message) -> None:
        self._queues.setdefault((sender, recipient), deque()).append(encode(message))

    def next(self) -> tuple[int, Message] | None:
        """One delivery: (recipient, message); None when every channel is empty."""
        ready = [channel for channel, queue in self._queues.items() if queue]
        if not ready:
            return None
        channel = self._random.choice(sorted(ready))
        queue, seen = self._queues[channel], self._delivered.setdefault(channel, deque(maxlen=3))
        data = queue.popleft()
        seen.append(data)
        if self._random.random() < self._repeat:
            queue.appendleft(data)  # delivered again right after
        elif self._random.random() < self._replay:
            queue.extendleft(reversed(seen))  # the last few again, in their order
            seen.clear()
        self.deliveries += 1
        return channel[1], decode(data)


def run_instants(bus: Bus, owner_side: OwnerSide, hosts: Sequence[HostSide]) -> None:
    """Deliver until every channel is empty: the owner's messages go to every host, a host's to the owner."""
    for message in owner_side.start():
        for p in range(len(hosts)):
            bus.send(OWNER, p, message)
    while (delivery := bus.next()) is not None:
        recipient, message = delivery
        if recipient == OWNER:
            for answer in owner_side.receive(message):
                for p in range(len(hosts)):
                    bus.send(OWNER, p, answer)
        elif isinstance(message, Chunk):
            hosts[recipient].begin(message)  # their states are given already
        else:
            for answer in hosts[recipient].receive(message):
                bus.send(recipient, OWNER, answer)
    assert owner_side.done


def run_over_bus(
    partitions: int, assign: Callable[[str], int], seed: int, repeat: float, replay: float
) -> tuple[ModelOwner, list[PartitionEvaluator], list[Change], list[Alert], int]:
    """The shuffled, ticked CDNOW slice through owner and host sides on a :class:`Bus`; also how many
    deliveries were copies (beyond one chunk a partition, and one advance, delta, versions and applied
    a partition and instant)."""
    owner = ModelOwner(UNGATED)
    evaluators = [PartitionEvaluator(UNGATED, p) for p in range(partitions)]
    changes: list[Change] = []
    alerts: list[Alert] = []
    deliveries = 0
    previous: int | None = None
    for tick, logs in shuffled_ticks():
        folds: list[list[LogFold]] = [[] for _ in range(partitions)]
        for fold in log_folds(logs, {}):
            folds[assign(fold.customer_id)].append(fold)
        starts = [at for mine in folds for f in mine if (at := f.next_event_ms()) is not None]
        instants = owner.instants(tick, min(starts, default=None))
        due: list[dict[int, list[CustomerState]]] = [
            {at: states for at, states, _ in due_at_instants(instants, mine, (), tick)} for mine in folds
        ]

        owner_side = OwnerSide(owner, partitions, Chunk(tick, previous, tuple(instants)))
        hosts = [HostSide(evaluators[p], due[p].__getitem__) for p in range(partitions)]
        bus = Bus(seed * 1_000 + tick % 997, repeat, replay)
        run_instants(bus, owner_side, hosts)
        for host in hosts:
            changes += host.changes
            alerts += host.take_alerts()
        alerts += owner_side.alerts
        deliveries += bus.deliveries - partitions * (4 * len(instants) + bool(instants))  # beyond one each
        previous = tick
    return owner, evaluators, changes, alerts, deliveries


@pytest.mark.parametrize(
    ("partitions", "seed", "repeat", "replay"),
    [(3, 2, 0.2, 0.05), (4, 3, 0.1, 0.2)],
    ids=["3-repeats", "4-replays"],
)
def test_over_a_bus_that_reorders_and_repeats_the_one_evaluators_changes_alerts_models_and_rows(
    partitions: int, seed: int, repeat: float, replay: float
) -> None:
    one, ones, one_alerts = one_run()
    owner, evaluators, changes, alerts, copies = run_over_bus(
        partitions, lambda c: customer_partition(c, partitions), seed, repeat, replay
    )
    row = owner.population.index.__getitem__
    assert sorted(changes, key=lambda c: (c.at_ms, row(c.customer_id))) == ones  # each once, no more
    assert Counter(map(repr, alerts)) == Counter(map(repr, one_alerts))
    split = PartitionedEvaluator(UNGATED, partitions)
    split.owner, split.partitions = owner, evaluators
    assert_same(one, split)
    assert copies > 100  # the copies were there, and changed nothing


def test_out_of_step_messages_are_refused_and_copies_ignored() -> None:
    owner, host = ModelOwner(UNGATED), PartitionEvaluator(UNGATED, 0)
    side = HostSide(host, lambda at_ms: [])
    with pytest.raises(ProtocolError, match="advance to 10, not an instant of the chunk begun"):
        side.receive(Advance(10))  # no chunk begun
    chunk = Chunk(20, None, (10, 20))
    assert side.begin(chunk) and not side.begin(chunk)  # a copy begins nothing
    delta = side.receive(Advance(10))
    assert [type(m) for m in delta] == [StateDelta]
    assert side.receive(Advance(10)) == delta  # a copy: the same answer again
    with pytest.raises(ProtocolError, match="advance to 20 before the versions of 10"):
        side.receive(Advance(20))
    owner_side = OwnerSide(owner, 2, chunk)
    assert owner_side.start() == [chunk, Advance(10)]
    assert owner_side.receive(delta[0]) == []  # partition 1's delta still missing
    assert owner_side.receive(delta[0]) == []  # a copy counts once
    with pytest.raises(ProtocolError, match="partition 1 folded 20 before 10"):
        owner_side.receive(StateDelta(1, 20, ()))
    versions = owner_side.receive(StateDelta(1, 10, ()))
    assert len(versions) == 1 and not owner_side.done
    with pytest.raises(ProtocolError, match="the owner does not take Advance"):
        owner_side.receive(Advance(10))
    with pytest.raises(ProtocolError, match="not a partition protocol message: dict"):
        decode(pickle.dumps({}))


def test_a_chunk_closes_after_its_last_instant_and_the_next_begins_only_then() -> None:
    owner, host = ModelOwner(UNGATED), HostSide(PartitionEvaluator(UNGATED, 0))
    first, second = Chunk(20, None, (10, 20)), Chunk(30, 20, (30,))
    side = OwnerSide(owner, 1, first)
    assert host.begin(first)
    with pytest.raises(ProtocolError, match="saved up to 20 before its last instant was applied"):
        host.closes(Saved(20))
    with pytest.raises(ProtocolError, match="chunk up to 20 saved before its last instant"):
        side.close()
    pending = side.start()[1:]  # the first advance (the chunk is begun above)
    while pending:
        pending = [answer for m in pending for reply in host.receive(m) for answer in side.receive(reply)]
    assert side.done and not side.closed
    with pytest.raises(ProtocolError, match="chunk up to 30 begun before 20 closed"):
        host.begin(second)
    with pytest.raises(ProtocolError, match="partition 0 closed 20 before it was saved"):
        side.receive(Closed(0, 20))
    with pytest.raises(ProtocolError, match="saved up to 30, not the chunk in progress"):
        host.closes(Saved(30))
    assert side.close() == [Saved(20)] and side.waiting_for() == [0]
    assert host.closes(Saved(20)) and not host.closes(Saved(20))  # a copy closes nothing again
    assert side.receive(Closed(0, 20)) == [] and side.closed and side.waiting_for() == []
    assert host.begin(second)
    assert OwnerSide(owner, 1, second).receive(Closed(0, 20)) == []  # a copy from the chunk before


def test_campaign_events_cut_with_the_chunks_give_the_one_evaluators_campaigns_uplift_and_alerts() -> None:
    """The distributed owner's campaign events (``agents.partition_owner.instant_campaign_events``):
    one advance over 300 days cut into chunks of 5 instants, each chunk's events to its instants,
    equals the one evaluator handed every event at once (campaigns, uplift, alerts, rows)."""
    day0 = 28 * 400 * DAY_MS
    logs, events = synthetic_logs(day0), described(campaign_events(day0))
    to_ms, partitions = day0 + 300 * DAY_MS, 3
    one = Evaluator(UNGATED, campaigns=eager_book())
    one_changes = one.advance(to_ms, logs, events)
    one_alerts = one.take_alerts()

    owner = ModelOwner(UNGATED, campaigns=eager_book())
    evaluators = [PartitionEvaluator(UNGATED, p) for p in range(partitions)]
    folds: list[list[LogFold]] = [[] for _ in range(partitions)]
    for fold in log_folds(logs, {}):
        folds[customer_partition(fold.customer_id, partitions)].append(fold)
    starts = [at for mine in folds for f in mine if (at := f.next_event_ms()) is not None]
    instants = owner.instants(to_ms, min(starts))
    due = [{at: states for at, states, _ in due_at_instants(instants, mine, (), to_ms)} for mine in folds]
    chunks = cut_chunks(instants, to_ms, 5)
    changes: list[Change] = []
    alerts: list[Alert] = []
    applied = 0
    for i, chunk in enumerate(chunks):
        mine = instant_campaign_events(chunk, chunk is chunks[-1], events)
        applied += sum(map(len, mine.values()))
        assert set(mine) <= set(chunk.instants)
        owner_side = OwnerSide(owner, partitions, chunk, mine)
        hosts = [HostSide(evaluators[p], due[p].__getitem__) for p in range(partitions)]
        run_instants(Bus(i, 0.1, 0.1), owner_side, hosts)
        for host in hosts:
            changes += host.changes
            alerts += host.take_alerts()
        alerts += owner_side.alerts
    assert len(chunks) > 10 and applied == len(events)  # every event once, across many chunks
    row = owner.population.index.__getitem__
    assert sorted(changes, key=lambda c: (c.at_ms, row(c.customer_id))) == one_changes
    assert Counter(map(repr, alerts)) == Counter(map(repr, one_alerts))
    assert {a.kind for a in alerts} >= {"churn_risk", "likely_responder"}
    split = PartitionedEvaluator(UNGATED, partitions)
    split.owner, split.partitions = owner, evaluators
    assert_same(one, split, restored=True)  # campaign ids crossed the bus: pickle shares them otherwise
    ours, theirs = owner.campaigns, one.campaigns
    assert ours.exposures == theirs.exposures and ours.early_responses == theirs.early_responses
    assert ours.population_uplift == theirs.population_uplift and ours.reference == theirs.reference
    assert pickle.dumps(ours.response) == pickle.dumps(theirs.response)  # weights, pending batches
    assert pickle.dumps(ours.uplift) == pickle.dumps(theirs.uplift)

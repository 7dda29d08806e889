"""Partitioned evaluation in memory: a model owner and P partition evaluators equal the one evaluator.

The oracle is :class:`state.evaluator.evaluate.Evaluator` itself (whose own tests check it against
the rank formula, pandas and the batch baselines): the split must give the same changes in the same
order, the same alerts, the same models (their saved snapshot, byte for byte), the same summary and
the same rows, for any number of partitions and any assignment of customers to them, on real data
(the CDNOW sample, shuffled and ticked) and on generated customers with two campaigns (churn
bands, likely responders and the uplift figures need resolved churn batches and response windows,
which a unit-sized CDNOW slice does not reach).
"""

from __future__ import annotations

import pickle
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import cache

import msgspec
import pytest

from state.customer.partitions import customer_partition
from state.customer.profiles import Change, LogEntry
from state.customer.rfm import DAY_MS
from state.evaluator.evaluate import Evaluator
from state.evaluator.partitioned import PartitionedEvaluator, SplitSave
from state.evaluator.saved import read_models
from state.models.alerts import Alert
from streams.campaign_contract import CampaignDescriptor, CampaignEvent
from tests.unit.test_evaluate import (
    CONFIG,
    UNGATED,
    Log,
    campaign_events,
    cdnow_sample,
    eager_book,
    synthetic_logs,
)

Assign = Callable[[str], int]


def ticked(
    entries: Sequence[tuple[str, LogEntry]], ticks: Sequence[int]
) -> list[tuple[int, dict[str, list[LogEntry]]]]:
    """Per tick, the logs of the customers with an entry that arrived before it (as ``run`` feeds them)."""
    logs: Log = defaultdict(list)
    pending, out = list(entries), []
    for tick in ticks:
        due = {c for c, e in pending if e.occurred_at_ms < tick}
        for c, e in [p for p in pending if p[1].occurred_at_ms < tick]:
            logs[c].append(e)
        pending = [p for p in pending if p[1].occurred_at_ms >= tick]
        out.append((tick, {c: list(logs[c]) for c in due}))
    return out


def assert_same(one: Evaluator, split: PartitionedEvaluator, *, restored: bool = False) -> None:
    """The same models, summary and rows in the owner's replica and in the partitions.

    After a restore the snapshot's bytes differ where pickle shares objects differently (so does
    the one evaluator's, restored), so its parts are compared by what they hold.
    """
    owner = split.owner
    if restored:
        ours, theirs = read_models(owner.snapshot()), read_models(one.snapshot())
        assert ours.segment_model is not None and theirs.segment_model is not None
        assert ours.segment_model.snapshot() == theirs.segment_model.snapshot()
        assert repr(ours.churn.scorer()) == repr(theirs.churn.scorer())
        assert ours.churn.report() == theirs.churn.report() and ours.lifetime == theirs.lifetime
        assert ours.cluster_quality == theirs.cluster_quality and ours.held_back == theirs.held_back
        assert repr([m.groups for m in ours.drift]) == repr([m.groups for m in theirs.drift])
    else:
        assert owner.snapshot() == one.snapshot()  # clusters, churn, lifetime, campaigns, drift, figures
    assert owner.batch_entries() == one.batch_entries() and owner.cutpoints == one.cutpoints
    assert owner.summary() == one.summary()
    assert owner.clock_ms == one.clock_ms
    pop = one.population
    assert [owner.population.record(r) for r in range(len(owner.population))] == [
        pop.record(r) for r in range(len(pop))
    ]
    for part in split.partitions:  # each customer's row, in the partition that owns it
        mine = part.population
        assert all(split.partition_of(c) == part.partition for c in mine.ids)
        for row in range(len(mine)):
            ours = {k: v for k, v in mine.record(row).items() if k != "row"}
            theirs = {k: v for k, v in pop.record(pop.index[mine.ids[row]]).items() if k != "row"}
            assert ours == theirs
    assert sum(len(p.population) for p in split.partitions) == len(pop)


def odd_even(customer_id: str) -> int:
    return int(customer_id[-1]) % 2


def one_busy(customer_id: str) -> int:
    """Three partitions, one holding almost everyone and one holding nobody."""
    return 0 if customer_id[-1] != "7" else 2


def shuffled_ticks() -> list[tuple[int, dict[str, list[LogEntry]]]]:
    """The CDNOW slice shuffled, fed every ten days of event time."""
    shuffled = list(cdnow_sample())
    random.Random(11).shuffle(shuffled)
    first = min(e.occurred_at_ms for _, e in shuffled) // DAY_MS * DAY_MS
    end = max(e.occurred_at_ms for _, e in shuffled) + 1
    return ticked(shuffled, [*range(first + 10 * DAY_MS, end, 10 * DAY_MS), end])


@cache
def one_run() -> tuple[Evaluator, list[Change], list[Alert]]:
    """The one evaluator over the shuffled ticks: the oracle of every split below (read, never advanced)."""
    one, changes = Evaluator(UNGATED), []
    for tick, logs in shuffled_ticks():
        changes += one.advance(tick, logs)
    return one, changes, one.take_alerts()


@pytest.mark.parametrize(
    ("partitions", "assign"),
    [(1, None), (4, None), (2, odd_even), (3, one_busy)],
    ids=["1", "4-kafka-default", "2-odd-even", "3-skewed"],
)
def test_cdnow_shuffled_and_ticked_gives_the_one_evaluators_changes_alerts_models_and_rows(
    partitions: int, assign: Assign | None
) -> None:
    one, ones, alerts = one_run()
    split = PartitionedEvaluator(UNGATED, partitions, partition_of=assign)
    splits: list[Change] = []
    for tick, logs in shuffled_ticks():
        splits += split.advance(tick, logs)
    assert len(ones) > 1_000 and {c.reason for c in ones} >= {"purchase", "recency_decay", "cutpoint_update"}
    assert splits == ones
    assert split.take_alerts() == alerts
    assert {a.kind for a in alerts} >= {"overdue", "segment_drift"}
    assert_same(one, split)


def test_a_split_saved_half_way_and_restored_goes_on_as_the_one_evaluator() -> None:
    """Each partition saves its changed rows (a store keeps the latest of each), the owner its
    models; restored from that, the owner's replica is rebuilt in the one evaluator's row order."""
    one, ones, alerts = one_run()
    ticks = shuffled_ticks()
    half = len(ticks) // 2
    split = PartitionedEvaluator(UNGATED, 3)
    store: list[dict[object, dict[str, object]]] = [{} for _ in split.partitions]
    changes: list[Change] = []
    for tick, logs in ticks[:half]:
        changes += split.advance(tick, logs)
        for part in split.partitions:
            store[part.partition].update({r["row"]: r for r in part.take_dirty()})
    owner = split.owner
    assert owner.cutpoints is not None and owner.model.version > 0  # saved with models to restore
    saved = SplitSave(
        owner.clock_ms,
        owner.cutpoints.to_json(),
        owner.snapshot(),
        owner.batch_entries(),
        [list(rows.values()) for rows in store],
    )
    restored = PartitionedEvaluator.restore(UNGATED, saved, partition_of=split.partition_of)
    for tick, logs in ticks[half:]:
        changes += restored.advance(tick, logs)
    assert changes == ones
    assert split.take_alerts() + restored.take_alerts() == alerts
    assert_same(one, restored, restored=True)


def saved_split(
    split: PartitionedEvaluator, rows: list[dict[object, dict[str, object]]], clocks: list[int | None]
) -> SplitSave:
    """The owner's save (with its versions log, through its bytes as a store keeps it) and the
    partitions' rows and clocks as last saved."""
    owner = split.owner
    log = pickle.loads(pickle.dumps(owner.take_log()))
    cutpoints = owner.cutpoints.to_json() if owner.cutpoints else None
    stored = [list(mine.values()) for mine in rows]
    return SplitSave(owner.clock_ms, cutpoints, owner.snapshot(), owner.batch_entries(), stored, clocks, log)


def test_a_partition_one_save_behind_the_owner_catches_up_alone_from_the_versions_log() -> None:
    """A crash between the owner's save and one partition's: that partition restores from its save
    before, re-runs the instants it missed with the owner's logged versions (the owner holds their
    results already), and the split goes on as the one evaluator; the re-run gives that
    partition's changes and alerts of those instants again."""
    one, ones, alerts = one_run()
    ticks = shuffled_ticks()
    half, lost = len(ticks) // 2, 1
    split = PartitionedEvaluator(UNGATED, 3)
    rows: list[dict[object, dict[str, object]]] = [{} for _ in split.partitions]
    clocks: list[int | None] = [None] * 3
    changes: list[Change] = []
    for i, (tick, logs) in enumerate(ticks[: half + 1]):
        if i == half:
            earlier_alerts = split.take_alerts()
        chunk = split.advance(tick, logs)
        changes += chunk
        for part in split.partitions:  # the owner has saved first (saved_split below takes its log)
            if i < half or part.partition != lost:  # the last time, partition 1 crashes before saving
                rows[part.partition].update({r["row"]: r for r in part.take_dirty()})
                clocks[part.partition] = part.clock_ms
        saved = saved_split(split, rows, clocks)
    chunk_alerts = split.take_alerts()
    assert clocks[lost] is not None and clocks[lost] < saved.clock_ms == clocks[0] == clocks[2]

    restored = PartitionedEvaluator.restore(
        UNGATED, saved, partition_of=split.partition_of, logs=ticks[half][1]
    )
    missed = [c for c in chunk if split.partition_of(c.customer_id) == lost]
    assert missed and restored.caught_up == missed
    customer_alerts = [a for a in chunk_alerts if a.kind != "segment_drift"]
    assert restored.take_alerts() == [a for a in customer_alerts if split.partition_of(a.customer_id) == lost]
    for tick, logs in ticks[half + 1 :]:
        changes += restored.advance(tick, logs)
    assert changes == ones
    assert earlier_alerts + chunk_alerts + restored.take_alerts() == alerts
    assert_same(one, restored, restored=True)


def test_a_partition_two_saves_behind_is_refused() -> None:
    """Its log is gone (the owner keeps the versions of one save only): restoring it would guess."""
    ticks = shuffled_ticks()
    split = PartitionedEvaluator(UNGATED, 2)
    rows: list[dict[object, dict[str, object]]] = [{}, {}]
    clocks: list[int | None] = [None, None]
    for i, (tick, logs) in enumerate(ticks[:6]):
        split.advance(tick, logs)
        for part in split.partitions:
            if i < 3 or part.partition == 0:
                rows[part.partition].update({r["row"]: r for r in part.take_dirty()})
                clocks[part.partition] = part.clock_ms
        saved = saved_split(split, rows, clocks)
    with pytest.raises(ValueError, match=r"partition 1 saved at .* neither with the owner"):
        PartitionedEvaluator.restore(UNGATED, saved, partition_of=split.partition_of)


def described(events: list[CampaignEvent]) -> list[CampaignEvent]:
    """Campaign B's exposures describe it, so the reference campaign changes half way."""
    descriptor = CampaignDescriptor("TypeA", 30, 3, 12, 0.25)
    return [
        msgspec.structs.replace(e, descriptor=descriptor)
        if e.campaign_id == "B" and e.type == "exposure"
        else e
        for e in events
    ]


@pytest.mark.parametrize("partitions", [1, 3])
def test_campaigns_churn_bands_responders_and_uplift_are_the_one_evaluators(partitions: int) -> None:
    day0 = 28 * 400 * DAY_MS
    logs, events = synthetic_logs(day0), described(campaign_events(day0))
    one = Evaluator(UNGATED, campaigns=eager_book())
    split = PartitionedEvaluator(UNGATED, partitions, campaigns=eager_book())
    for to_ms in (day0 + 100 * DAY_MS, day0 + 200 * DAY_MS, day0 + 300 * DAY_MS):
        now = [e for e in events if e.occurred_at_ms < to_ms]
        assert split.advance(to_ms, logs, now) == one.advance(to_ms, logs, now)
        events = [e for e in events if e.occurred_at_ms >= to_ms]
    alerts = one.take_alerts()
    assert split.take_alerts() == alerts
    assert {a.kind for a in alerts} >= {"churn_risk", "likely_responder", "overdue"}
    assert one.campaigns.population_uplift  # the uplift figures of every buyer were noted
    assert one.campaigns.reference is not None
    assert_same(one, split)


def test_the_default_assignment_is_kafkas_and_covers_the_partitions() -> None:
    split = PartitionedEvaluator(CONFIG, 4)
    ids = [f"{i:05}" for i in range(1_000)]
    assert [split.partition_of(c) for c in ids] == [customer_partition(c, 4) for c in ids]
    assert sorted({split.partition_of(c) for c in ids}) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        PartitionedEvaluator(CONFIG, 0)

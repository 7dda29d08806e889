"""What the evaluator saves: what changed since the last save, not its whole learned state.

Open churn batches are saved once, when made, and deleted when resolved; the models' snapshot only
when its bytes changed. The oracle for the saved state is an evaluator that never stopped: one that
reloads from the store at every tick must publish the same changes and alerts and report the same
churn model. A snapshot in the format of the versions that kept the batches inside (built here with
pickle as that version's ``models_blob`` built it) must still load.
"""

from __future__ import annotations

import dataclasses
import itertools
import pickle
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from agents.evaluator import EvaluatorObserver, SegmentEvaluator
from agents.ingest import RawMessage, ingest_batch
from state.customer import snapshots
from state.customer.memory_store import MemoryStore
from state.customer.profile_store import MemoryProfileStore, Record
from state.customer.rfm import DAY_MS
from state.evaluator.config import EvaluatorConfig
from state.evaluator.evaluate import Evaluator
from state.evaluator.saved import SaveLedger, read_models
from state.segments.segments import load_preset
from streams.outputs import Tick
from tests.unit.test_evaluate import old_models_blob
from tests.unit.test_segment_evaluator import DAY0, TOPIC, Outbox, message, no_letters

# batches every week, labelled three weeks later: several made and resolved within 130 days
CONFIG = EvaluatorConfig(load_preset("rfm11"), churn_every_ms=7 * DAY_MS, churn_horizon_ms=21 * DAY_MS)
TICK_DAYS = (40, 60, 80, 100, 130)


def history() -> list[RawMessage]:
    """150 customers buying every 1-14 days from a start in the first month until a day of their
    own (some stop early: churned labels of both kinds)."""
    rng = random.Random(11)
    events: list[tuple[int, str, int]] = []
    for c in range(150):
        day, stop = rng.randrange(0, 30), rng.randrange(20, 120)
        while day < stop:
            events.append((day, f"c{c}", rng.randrange(5, 200)))
            day += rng.randrange(1, 15)
    events.sort()
    return [message(i, c, day=d, amount=a) for i, (d, c, a) in enumerate(events)]


@dataclasses.dataclass
class CountingProfiles(MemoryProfileStore):
    """The memory store, noting what each save wrote of the learned state."""

    saves: list[tuple[bool, list[int], list[int]]] = dataclasses.field(default_factory=list)

    async def save(
        self,
        clock_ms: int,
        cutpoints_json: str | None,
        model: bytes | None,
        records: Sequence[Record],
        summary: Record,
        *,
        batches_added: Sequence[tuple[int, bytes]] = (),
        batches_removed: Sequence[int] = (),
        versions_log: bytes | None = None,
        partitions: int | None = None,
        epoch: int | None = None,
        after_generation: int | None = None,
    ) -> int:
        self.saves.append((model is not None, [m for m, _ in batches_added], list(batches_removed)))
        return await super().save(
            clock_ms,
            cutpoints_json,
            model,
            records,
            summary,
            batches_added=batches_added,
            batches_removed=batches_removed,
            versions_log=versions_log,
            partitions=partitions,
            epoch=epoch,
            after_generation=after_generation,
        )


async def test_reloading_at_every_tick_publishes_and_learns_as_one_evaluator_that_never_stopped() -> None:
    messages = history()
    ticks = [Tick(DAY0 + day * DAY_MS, {0: len(messages)}, "test") for day in TICK_DAYS]
    straight_store, straight_profiles, straight_out = MemoryStore(), MemoryProfileStore(), Outbox()
    store, profiles, out = MemoryStore(), CountingProfiles(), Outbox()
    await ingest_batch(messages, straight_store, no_letters)
    await ingest_batch(messages, store, no_letters)
    straight = SegmentEvaluator(CONFIG, straight_store, straight_profiles, straight_out, TOPIC, poll_s=0.01)
    open_at_ticks: list[set[int]] = []
    for tick in ticks:
        await straight.on_tick(tick)
        # another worker each time: it has nothing cached, so it restores from the store
        await SegmentEvaluator(CONFIG, store, profiles, out, TOPIC, poll_s=0.01).on_tick(tick)
        assert straight.keeper.cached is not None
        never_stopped = straight.keeper.cached[1]
        open_at_ticks.append({b.made_at_ms for b in never_stopped.batches})
        assert set(profiles.batches) == open_at_ticks[-1]  # the store holds exactly the open ones
        assert await profiles.summary() == await straight_profiles.summary()
    assert out.changes == straight_out.changes and out.alerts == straight_out.alerts
    assert out.alerts and len(out.changes) > 1000
    churn = (await profiles.summary() or {})["churn"]
    assert churn["version"] >= 10  # batches were labelled, across the reloads
    # batches made before one reload were resolved after it (the premise: they crossed save points)
    pairs = list(itertools.pairwise(open_at_ticks))
    assert all(a - b for a, b in pairs) and all(b - a for a, b in pairs)  # and others made after it
    # each batch was written once and deleted once, never rewritten
    added = [m for _, a, _ in profiles.saves for m in a]
    removed = [m for _, _, r in profiles.saves for m in r]
    assert len(added) == len(set(added)) and len(removed) == len(set(removed))
    assert set(added) - set(removed) == open_at_ticks[-1] and set(removed) <= set(added)


async def test_a_snapshot_with_the_batches_inside_loads_and_the_next_save_moves_them_apart() -> None:
    messages = history()
    store, profiles, out = MemoryStore(), MemoryProfileStore(), Outbox()
    await ingest_batch(messages, store, no_letters)
    seg = SegmentEvaluator(CONFIG, store, profiles, out, TOPIC, poll_s=0.01)
    await seg.on_tick(Tick(DAY0 + 60 * DAY_MS, {0: len(messages)}, "test"))
    assert seg.keeper.cached is not None
    first = seg.keeper.cached[1]
    made = [b.made_at_ms for b in first.batches]
    assert len(made) >= 2
    # the store as the previous version left it: the batches inside the model, none apart
    cutpoints = first.cutpoints.to_json() if first.cutpoints else None
    rows = [first.record(r) for r in range(len(first.population))]
    old = Evaluator.restore(CONFIG, first.clock_ms, cutpoints, old_models_blob(first), rows)
    assert [b.made_at_ms for b in old.batches] == made
    assert old.summary() == first.summary()
    # the next save writes every batch apart and a snapshot without them; the one after, nothing
    parts = old.take_saved_parts()
    assert [m for m, _ in parts.batches_added] == made and parts.batches_removed == []
    assert parts.model is not None and "churn_batches" not in snapshots.load(parts.model)
    assert old.take_saved_parts() == (None, [], [])
    # a worker reloading what that save wrote has the same batches, and knows the store has them
    again = Evaluator.restore(CONFIG, first.clock_ms, cutpoints, parts.model, rows, parts.batches_added[::-1])
    assert [b.made_at_ms for b in again.batches] == made  # oldest first, whatever order they came in
    for a, b in zip(again.batches, first.batches, strict=True):
        assert all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    assert again.summary() == first.summary()
    assert again.take_saved_parts().batches_added == []


def _same(a: Any, b: Any) -> bool:
    return pickle.dumps(a) == pickle.dumps(b)


def test_the_ledger_writes_the_snapshot_only_when_its_bytes_change() -> None:
    evaluator = Evaluator(CONFIG)
    ledger = SaveLedger()
    assert ledger.take(b"models v1", evaluator.batches).model == b"models v1"  # a fresh ledger writes
    assert ledger.take(b"models v1", evaluator.batches).model is None
    assert ledger.take(b"models v2", evaluator.batches).model == b"models v2"
    assert SaveLedger().take(b"models v2", []).model == b"models v2"  # a reloaded evaluator: whole again


@dataclasses.dataclass
class FailingOnce(CountingProfiles):
    """Counts saves; the ``fail_at``-th (1-based) raises, once, having written nothing."""

    fail_at: int = 0

    async def save(
        self,
        clock_ms: int,
        cutpoints_json: str | None,
        model: bytes | None,
        records: Sequence[Record],
        summary: Record,
        *,
        batches_added: Sequence[tuple[int, bytes]] = (),
        batches_removed: Sequence[int] = (),
        versions_log: bytes | None = None,
        partitions: int | None = None,
        epoch: int | None = None,
        after_generation: int | None = None,
    ) -> int:
        if self.fail_at and len(self.saves) + 1 == self.fail_at:
            self.fail_at = 0
            raise ConnectionError("Redis gone")
        return await super().save(
            clock_ms,
            cutpoints_json,
            model,
            records,
            summary,
            batches_added=batches_added,
            batches_removed=batches_removed,
            versions_log=versions_log,
            partitions=partitions,
            epoch=epoch,
            after_generation=after_generation,
        )


async def test_a_failed_save_is_not_taken_as_written() -> None:
    """The evaluator notes the parts it hands a save as written; when the save fails it is dropped
    and reloaded, so what the failed save carried is written by a later one: a batch made in the
    failed chunk, or a refit (``segstream fit``: a save outside any chunk) of the lifetime model."""
    messages = history()
    end = Tick(DAY0 + 60 * DAY_MS, {0: len(messages)}, "test")
    store, profiles, out = MemoryStore(), FailingOnce(fail_at=2), Outbox()
    straight_store, straight_out = MemoryStore(), Outbox()
    await ingest_batch(messages, store, no_letters)
    await ingest_batch(messages, straight_store, no_letters)
    straight = SegmentEvaluator(
        CONFIG, straight_store, MemoryProfileStore(), straight_out, TOPIC, poll_s=0.01
    )
    await straight.on_tick(end)
    seg = SegmentEvaluator(CONFIG, store, profiles, out, TOPIC, poll_s=0.01)
    with pytest.raises(ConnectionError):
        await seg.on_tick(end)  # the second chunk's save fails: its batches were not written
    await seg.on_tick(end)
    assert straight.keeper.cached is not None and seg.keeper.cached is not None
    assert set(profiles.batches) == {b.made_at_ms for b in straight.keeper.cached[1].batches}
    assert list(dict.fromkeys(out.changes)) == straight_out.changes  # the chunk republished, same content
    profiles.fail_at = len(profiles.saves) + 1
    with pytest.raises(ConnectionError):
        await seg.on_tick(end._replace(refit=True))  # the refit's save fails
    assert seg.keeper.cached is None  # dropped: the next tick reloads what the store holds
    await seg.on_tick(end._replace(as_of_ms=end.as_of_ms + 3_600_000))  # a quiet instant, saved
    assert seg.keeper.cached is not None and seg.keeper.cached[1].lifetime is not None
    saved = read_models(profiles.model).lifetime
    assert saved is not None and saved.describe() == seg.keeper.cached[1].lifetime.describe()


class SaveAfter:
    """A profile store that, before its next save, lets ``before`` run: another clock owner's tick
    landing between this evaluator's load and its save. Everything else goes to ``inner``."""

    def __init__(self, inner: MemoryProfileStore) -> None:
        self.inner = inner
        self.before: Callable[[], Awaitable[object]] | None = None

    async def save(self, *args: Any, **kwargs: Any) -> int:
        if self.before is not None:
            before, self.before = self.before, None
            await before()
        return await self.inner.save(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_two_clock_owners_for_a_moment_leave_one_evaluators_whole_saves() -> None:
    """Owner a is replaced while its tick runs: b evaluates the same tick and saves first. a's save
    (following the save it loaded) is refused, a evaluates the tick again from b's save (nothing
    left to do), and the store holds what one evaluator that never stopped holds, then and after."""
    messages = history()
    first, second, third = (Tick(DAY0 + day * DAY_MS, {0: len(messages)}, "test") for day in (40, 130, 160))
    store, shared = MemoryStore(), MemoryProfileStore()
    straight_store, straight_profiles = MemoryStore(), MemoryProfileStore()
    await ingest_batch(messages, store, no_letters)
    await ingest_batch(messages, straight_store, no_letters)
    superseded: list[int] = []
    hooked = SaveAfter(shared)
    a = SegmentEvaluator(
        CONFIG,
        store,
        hooked,  # type: ignore[arg-type]
        Outbox(),
        TOPIC,
        poll_s=0.01,
        observe=EvaluatorObserver(
            lambda *_: None, lambda _: None, lambda _: None, lambda: superseded.append(1)
        ),
    )
    b = SegmentEvaluator(CONFIG, store, shared, Outbox(), TOPIC, poll_s=0.01)
    straight = SegmentEvaluator(CONFIG, straight_store, straight_profiles, Outbox(), TOPIC, poll_s=0.01)
    for tick in (first, second):
        await straight.on_tick(tick)
    await a.on_tick(first)
    hooked.before = lambda: b.on_tick(second)  # b loads a's save of ``first`` and saves ``second``
    assert await a.on_tick(second) is None  # refused, then nothing left: b's save is at ``second``
    assert superseded == [1]
    saved, expected = await shared.load(), await straight_profiles.load()
    assert saved is not None and expected is not None
    assert (saved.clock_ms, saved.records) == (expected.clock_ms, expected.records)
    assert await shared.summary() == await straight_profiles.summary()
    await a.on_tick(third)  # a goes on from b's save, as the clock's owner again
    await straight.on_tick(third)
    assert await shared.summary() == await straight_profiles.summary()
    saved, expected = await shared.load(), await straight_profiles.load()
    assert saved is not None and expected is not None and saved.records == expected.records

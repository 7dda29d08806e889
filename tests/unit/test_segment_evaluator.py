"""agents.evaluator with the in-memory stores: ticks, the ingest barrier, crashes, reloads."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from agents.evaluator import SegmentEvaluator, TickRefused
from agents.ingest import RawMessage, ingest_batch, ingest_campaign_batch
from state.customer.memory_store import MemoryStore
from state.customer.profile_store import MemoryProfileStore
from state.customer.profiles import Change, fold_changes
from state.customer.rfm import DAY_MS
from state.evaluator.config import EvaluatorConfig
from state.evaluator.read_model import load_summary
from state.models.alerts import Alert
from state.segments.segments import load_preset
from streams.outputs import Tick

TOPIC = "purchases"
DAY0 = 10_000 * DAY_MS


class Outbox:
    def __init__(self, fail_after: int | None = None) -> None:
        self.changes: list[Change] = []
        self.alerts: list[Alert] = []
        self.fail_after = fail_after

    async def __call__(self, changes: Sequence[Change], alerts: Sequence[Alert]) -> None:
        if self.fail_after is not None and len(self.changes) + len(changes) > self.fail_after:
            raise RuntimeError("broker gone")
        self.changes += changes
        self.alerts += alerts


def message(offset: int, customer: str, day: int, amount: float, partition: int = 0) -> RawMessage:
    at = DAY0 + day * DAY_MS + offset
    value = f'{{"event_id":"e{offset}","customer_id":"{customer}","occurred_at":{at},"amount":{amount}}}'
    return RawMessage(TOPIC, partition, offset, customer.encode(), value.encode())


async def no_letters(letters: object) -> None:
    return None


def history() -> list[RawMessage]:
    return [message(i, f"c{i % 7}", day=i // 3, amount=10 + (i * 37) % 90) for i in range(60)]


def evaluator(store: MemoryStore, profiles: MemoryProfileStore, outbox: Outbox) -> SegmentEvaluator:
    return SegmentEvaluator(
        EvaluatorConfig(load_preset("rfm11")), store, profiles, outbox, TOPIC, poll_s=0.01
    )


async def test_ticks_evaluate_what_was_ingested_and_replaying_a_tick_does_nothing() -> None:
    store, profiles, outbox = MemoryStore(), MemoryProfileStore(), Outbox()
    await ingest_batch(history(), store, no_letters)
    seg = evaluator(store, profiles, outbox)
    report = await seg.on_tick(Tick(DAY0 + 25 * DAY_MS, {0: 60}, "test"))
    assert report is not None and report.changes == len(outbox.changes) > 7
    assert await seg.on_tick(Tick(DAY0 + 25 * DAY_MS, {0: 60}, "test")) is None
    assert await store.due(DAY0 + 25 * DAY_MS) == []  # the agenda is done
    saved = await profiles.profile("c3")
    assert saved is not None and saved["frequency"] == sum(1 for i in range(60) if i % 7 == 3)
    folded = fold_changes(outbox.changes)
    assert {c: list(p) for c, p in folded.items()} == {
        c: (await profiles.profile(c) or {})["profile"] for c in folded
    }


async def test_a_tick_waits_until_the_workers_processed_what_it_covers() -> None:
    store, profiles, outbox = MemoryStore(), MemoryProfileStore(), Outbox()
    messages = history()
    await ingest_batch(messages[:30], store, no_letters)
    seg = evaluator(store, profiles, outbox)
    tick = asyncio.create_task(seg.on_tick(Tick(DAY0 + 25 * DAY_MS, {0: 60}, "test")))
    await asyncio.sleep(0.1)
    assert not tick.done() and outbox.changes == []
    await ingest_batch(messages[30:], store, no_letters)
    report = await asyncio.wait_for(tick, 5)
    assert report is not None and {c.customer_id for c in outbox.changes} == {f"c{i}" for i in range(7)}


async def test_a_crash_while_publishing_repeats_the_same_changes_then_goes_on() -> None:
    reference = Outbox()
    store = MemoryStore()
    await ingest_batch(history(), store, no_letters)
    await evaluator(store, MemoryProfileStore(), reference).on_tick(Tick(DAY0 + 25 * DAY_MS, {}, "t"))

    store, profiles, failing = MemoryStore(), MemoryProfileStore(), Outbox(fail_after=5)
    await ingest_batch(history(), store, no_letters)
    seg = evaluator(store, profiles, failing)
    with pytest.raises(RuntimeError, match="broker gone"):
        await seg.on_tick(Tick(DAY0 + 25 * DAY_MS, {}, "t"))
    assert await store.due(DAY0 + 25 * DAY_MS)  # nothing marked done
    failing.fail_after = None
    await seg.on_tick(Tick(DAY0 + 25 * DAY_MS, {}, "t"))
    key = [(c.change_id, c.reason, c.after) for c in reference.changes]
    assert Counter((c.change_id, c.reason, c.after) for c in failing.changes) == Counter(key)


async def test_another_worker_taking_over_reloads_the_saved_state() -> None:
    store, profiles = MemoryStore(), MemoryProfileStore()
    first_box, second_box = Outbox(), Outbox()
    messages = history()
    await ingest_batch(messages[:30], store, no_letters)
    await evaluator(store, profiles, first_box).on_tick(Tick(DAY0 + 10 * DAY_MS, {}, "t"))
    await ingest_batch(messages[30:], store, no_letters)
    await evaluator(store, profiles, second_box).on_tick(Tick(DAY0 + 25 * DAY_MS, {}, "t"))

    straight_store, straight_box = MemoryStore(), Outbox()
    await ingest_batch(messages, straight_store, no_letters)
    straight = evaluator(straight_store, MemoryProfileStore(), straight_box)
    await straight.on_tick(Tick(DAY0 + 10 * DAY_MS, {}, "t"))
    await straight.on_tick(Tick(DAY0 + 25 * DAY_MS, {}, "t"))
    assert [c.change_id for c in first_box.changes + second_box.changes] == [
        c.change_id for c in straight_box.changes
    ]
    assert await profiles.generation() >= 2


async def test_campaign_events_are_ingested_dead_lettered_and_evaluated_at_the_tick() -> None:
    store, profiles, outbox = MemoryStore(), MemoryProfileStore(), Outbox()
    await ingest_batch(history(), store, no_letters)
    letters: list[object] = []

    async def keep(batch: object) -> None:
        letters.append(batch)

    def campaign(offset: int, customer: str, kind: str, day: int) -> RawMessage:
        value = (
            f'{{"event_id":"k{offset}","customer_id":"{customer}","campaign_id":"8","variant":"treatment",'
            f'"type":"{kind}","occurred_at":{DAY0 + day * DAY_MS}}}'
        )
        return RawMessage("campaign-events", 0, offset, customer.encode(), value.encode())

    bad = RawMessage("campaign-events", 0, 3, b"c1", b'{"event_id":"k3","type":"click"}')
    messages = [
        campaign(0, "c1", "exposure", 5),
        campaign(1, "c1", "response", 8),
        campaign(2, "c2", "exposure", 5),
    ]
    result = await ingest_campaign_batch([*messages, bad, messages[0]], store, profiles, keep)
    assert result.added == 3 and len(result.invalid_reasons) == 1 and len(letters) == 1
    assert await store.consumed("campaign-events") == {0: 4}
    assert (await store.stats()).invalid == 0  # the purchase total: campaign letters have their own metric
    seg = evaluator(store, profiles, outbox)
    report = await seg.on_tick(Tick(DAY0 + 25 * DAY_MS, {0: 60}, "test", campaign_offsets={0: 4}))
    assert report is not None
    summary = await load_summary(profiles)
    assert summary is not None and summary.response.exposures == 2
    (treatment,) = [r for r in summary.campaigns if r["segment"] == "all"]
    assert (treatment["exposures"], treatment["responses"], treatment["verdict"]) == (
        2,
        1,
        "too few exposures",
    )
    assert await profiles.campaign_due(DAY0 + 25 * DAY_MS) == []  # the agenda is done


async def test_hostile_ticks_are_refused_before_anything_changes() -> None:
    """Unknown partitions, offsets past a partition's end and waits that stall are refused;
    a backlog that keeps moving is waited for, however long it takes."""
    store, profiles, outbox = MemoryStore(), MemoryProfileStore(), Outbox()
    messages = history()
    await ingest_batch(messages[:10], store, no_letters)

    looked_up: list[list[int]] = []

    async def ends(topic: str, partitions: list[int]) -> dict[int, int]:
        looked_up.append(partitions)
        return {p: len(messages) for p in partitions}

    segments = SegmentEvaluator(
        EvaluatorConfig(load_preset("rfm11")),
        store,
        profiles,
        outbox,
        TOPIC,
        poll_s=0.01,
        partition_count=lambda topic: 4,
        end_offsets=ends,
        wait_timeout_s=0.3,
    )
    as_of = DAY0 + 30 * DAY_MS
    with pytest.raises(TickRefused, match="partition 9 of purchases, which has 4 partitions"):
        await segments.on_tick(Tick(as_of, {9: 1}, "test"))
    with pytest.raises(TickRefused, match="beyond its end"):
        await segments.on_tick(Tick(as_of, {0: 10**12}, "test"))
    with pytest.raises(TickRefused, match=r"made no progress towards offset 60 for 0\.3 s"):
        await segments.on_tick(Tick(as_of, {0: len(messages)}, "test"))  # 10 of 60 processed, stuck
    assert outbox.changes == [] and await profiles.load() is None, "a refused tick changes nothing"

    async def trickle() -> None:  # the rest arrives slowly, 5 messages every 0.1 s (< the timeout)
        for start in range(10, len(messages), 5):
            await asyncio.sleep(0.1)
            await ingest_batch(messages[start : start + 5], store, no_letters)

    feeding = asyncio.ensure_future(trickle())
    report = await segments.on_tick(Tick(as_of, {0: len(messages)}, "test"))
    await feeding
    assert report is not None and report.changes == len(outbox.changes) > 0
    looked = len(looked_up)
    assert await segments.on_tick(Tick(as_of + DAY_MS, {0: len(messages)}, "test")) is not None
    assert len(looked_up) == looked, "offsets already processed need no end-offset lookup"


async def test_late_events_are_evaluated_even_when_nothing_newer_moves_the_clock() -> None:
    """A backlog of old events folded after the clock caught up: the live clocks sweep them up
    at one instant past the clock, where ticks mode would wait for the next tick."""
    store, profiles, outbox = MemoryStore(), MemoryProfileStore(), Outbox()
    segments = evaluator(store, profiles, outbox)
    messages = history()
    await ingest_batch(messages[:40], store, no_letters)
    as_of = DAY0 + 30 * DAY_MS
    assert await segments.on_tick(Tick(as_of, {}, "test")) is not None
    assert await segments.evaluate_late("test") is None, "nothing late yet"

    late = message(1000, "late-customer", day=3, amount=42.0)  # occurred long before the clock
    await ingest_batch([late], store, no_letters)
    assert await segments.on_tick(Tick(as_of, {}, "test")) is None, "a tick at the clock moves nothing"
    report = await segments.evaluate_late("test")
    assert report is not None and report.as_of_ms == as_of + 1
    mine = [c for c in outbox.changes if c.customer_id == "late-customer"]
    assert [c.reason for c in mine] == ["purchase"] and mine[0].at_ms == as_of + 1
    assert await segments.evaluate_late("test") is None, "swept once"


def _histogram(name: str) -> tuple[float, float]:
    """(count, sum) of a latency histogram in the worker's registry."""
    from agents import metrics

    count = metrics.REGISTRY.get_sample_value(f"{name}_count") or 0.0
    total = metrics.REGISTRY.get_sample_value(f"{name}_sum") or 0.0
    return count, total


async def test_latency_is_observed_for_each_purchase_behind_a_published_change() -> None:
    """Receipt -> change uses the first receipt (a resend keeps it); entries leave with the agenda."""
    store, profiles, outbox = MemoryStore(), MemoryProfileStore(), Outbox()
    received = 1_700_000_000_000
    clock = [received]

    def now() -> datetime:
        return datetime.fromtimestamp(clock[0] / 1000, UTC)

    first = [message(0, "a", day=0, amount=10), message(1, "b", day=0, amount=20)]
    await ingest_batch(first, store, no_letters, now=now)
    clock[0] += 60_000
    await ingest_batch([message(0, "a", day=0, amount=10)], store, no_letters, now=now)  # redelivered later
    assert sorted((await store.received([m for m, _ in await store.due(DAY0 + DAY_MS)])).values()) == [
        received,
        received,
    ]
    before = _histogram("segstream_receipt_to_change_seconds")
    before_event = _histogram("segstream_event_time_to_change_seconds")
    started = time.time()
    await evaluator(store, profiles, outbox).on_tick(Tick(DAY0 + DAY_MS, {0: 2}, "test"))
    after = _histogram("segstream_receipt_to_change_seconds")
    after_event = _histogram("segstream_event_time_to_change_seconds")
    assert {c.customer_id for c in outbox.changes} == {"a", "b"}
    assert after[0] - before[0] == 2 and after_event[0] - before_event[0] == 2
    # each latency is publish time minus the first receipt: at least now - received, per event
    assert after[1] - before[1] >= 2 * (started - received / 1000)
    assert await store.received(["anything"]) == {} and store.receipts == {}


class ChunkCountingStore(MemoryStore):
    """A memory store that notes how many agenda entries each read returned."""

    def __init__(self) -> None:
        super().__init__()
        self.read_sizes: list[int] = []

    async def due(
        self, up_to_ms: int, after_ms: int | None = None, *, partition: int | None = None
    ) -> list[tuple[str, int]]:
        entries = await super().due(up_to_ms, after_ms, partition=partition)
        self.read_sizes.append(len(entries))
        return entries


async def test_a_catch_up_tick_reads_a_chunk_at_a_time_and_publishes_what_one_read_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    months = [message(i, f"c{i % 13}", day=i // 2, amount=10 + (i * 37) % 90) for i in range(240)]
    as_of = DAY0 + 125 * DAY_MS  # 120 days of events: four chunks of 31 grid days

    async def run() -> tuple[ChunkCountingStore, Outbox]:
        store, outbox = ChunkCountingStore(), Outbox()
        await ingest_batch(months, store, no_letters)
        report = await evaluator(store, MemoryProfileStore(), outbox).on_tick(Tick(as_of, {0: 240}, "t"))
        assert report is not None and report.customers_due == 13
        assert await MemoryStore.due(store, as_of) == []  # every chunk's entries were removed
        return store, outbox

    chunked, by_chunk = await run()
    assert len(chunked.read_sizes) >= 4 and sum(chunked.read_sizes) == 240
    assert max(chunked.read_sizes) <= 2 * 31 + 2  # a chunk's days, never the whole agenda
    monkeypatch.setattr("agents.evaluator.CHUNK_STEPS", 10_000)  # the whole catch-up as one chunk
    whole, at_once = await run()
    assert whole.read_sizes == [240]
    assert [(c.change_id, c.reason, c.after) for c in by_chunk.changes] == [
        (c.change_id, c.reason, c.after) for c in at_once.changes
    ]
    assert len(by_chunk.changes) > 13

"""The segment evaluator's store: the in-memory twin and Redis must agree."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError

from agents.evaluator import SegmentEvaluator
from agents.ingest import ingest_batch
from agents.settings import Settings
from segstream.redis_cluster import RedisClusterInfo
from state.adapters.dedupe_window import DedupeWindow
from state.adapters.redis_access import RedisAccess
from state.adapters.redis_partition_rows import partition_key
from state.adapters.redis_profiles import RedisProfileStore
from state.adapters.retry import RetryPolicy
from state.customer.memory_store import MemoryStore
from state.customer.partitions import customer_partition
from state.customer.profile_store import MemoryProfileStore, ProfileStore, Superseded
from state.customer.profiles import Profile
from state.customer.rfm import DAY_MS, CustomerState
from state.segments.population import Population
from streams.campaign_contract import CampaignEvent
from streams.outputs import Tick
from tests.unit.test_evaluator_saves import CONFIG, history
from tests.unit.test_segment_evaluator import DAY0, TOPIC, Outbox, no_letters

pytestmark = pytest.mark.integration


def record(customer: str, row: int, frequency: int) -> dict[str, object]:
    return {
        "row": row,
        "customer_id": customer,
        "frequency": frequency,
        "profile": [5, 1, 1, "New Customers", None, None],
    }


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
async def profiles(request: pytest.FixtureRequest) -> AsyncIterator[ProfileStore]:
    if request.param == "memory":
        yield MemoryProfileStore()
        return
    if request.param == "redis-cluster":  # a real 3-master cluster: its MULTI runs in one slot
        cluster: RedisClusterInfo = request.getfixturevalue("redis_cluster")
        on_cluster = RedisProfileStore.connect(
            RedisAccess(cluster.url, cluster=True), f"t{uuid.uuid4().hex[:10]}:"
        )
        yield on_cluster
        await on_cluster.close()
        return
    settings: Settings = request.getfixturevalue("settings")
    store = RedisProfileStore.from_url(settings.redis_url, settings.redis_prefix)
    yield store
    await store.close()


async def test_nothing_saved_reads_as_nothing(profiles: ProfileStore) -> None:
    assert await profiles.generation() == 0
    assert await profiles.load() is None
    assert await profiles.profile("c1") is None
    assert await profiles.summary() is None


async def test_saves_accumulate_rows_and_keep_the_last_model(profiles: ProfileStore) -> None:
    model = bytes(range(256)) * 3  # binary, as a pickle is
    assert (
        await profiles.save(
            100, '{"version": 1}', model, [record("c1", 0, 1), record("c:2", 1, 1)], {"as_of_ms": 100}
        )
        == 1
    )
    assert await profiles.save(200, '{"version": 2}', None, [record("c1", 0, 3)], {"as_of_ms": 200}) == 2
    saved = await profiles.load()
    assert saved is not None
    assert (saved.generation, saved.clock_ms, saved.cutpoints_json, saved.model) == (
        2,
        200,
        '{"version": 2}',
        model,
    )
    assert sorted(saved.records, key=lambda r: str(r["customer_id"])) == [
        record("c1", 0, 3),
        record("c:2", 1, 1),
    ]
    assert await profiles.profile("c:2") == record("c:2", 1, 1)
    assert await profiles.summary() == {"as_of_ms": 200}
    assert await profiles.generation() == 2


async def test_a_save_in_an_epoch_is_refused_once_a_newer_one_began(profiles: ProfileStore) -> None:
    """The partitioned evaluation's fence: an owner that was replaced cannot save over its successor."""
    first = await profiles.next_epoch()
    assert await profiles.save(100, None, None, [record("c1", 0, 1)], {"as_of_ms": 100}, epoch=first) == 1
    second = await profiles.next_epoch()
    assert second > first
    with pytest.raises(Superseded, match=f"epoch {first} is not the last"):
        await profiles.save(200, None, None, [record("c1", 0, 2)], {"as_of_ms": 200}, epoch=first)
    saved = await profiles.load()
    assert saved is not None and (saved.generation, saved.clock_ms) == (1, 100)  # nothing written
    assert saved.records == [record("c1", 0, 1)]
    assert await profiles.save(300, None, None, [], {"as_of_ms": 300}, epoch=second) == 2
    assert await profiles.save(400, None, None, [], {"as_of_ms": 400}) == 3  # the one evaluator: no fence


async def test_a_save_after_another_evaluators_save_is_refused(profiles: ProfileStore) -> None:
    """The one evaluator's fence: two clock owners for a moment cannot interleave their saves."""
    assert (
        await profiles.save(100, None, None, [record("c1", 0, 1)], {"as_of_ms": 100}, after_generation=0) == 1
    )
    # both loaded generation 1; the new owner saves first
    assert (
        await profiles.save(200, None, None, [record("c1", 0, 2)], {"as_of_ms": 200}, after_generation=1) == 2
    )
    with pytest.raises(Superseded, match="saved generation 2 since generation 1"):
        await profiles.save(150, None, None, [record("c1", 0, 9)], {"as_of_ms": 150}, after_generation=1)
    saved = await profiles.load()
    assert saved is not None and (saved.generation, saved.clock_ms) == (2, 200)  # nothing written
    assert saved.records == [record("c1", 0, 2)]
    assert await profiles.summary() == {"as_of_ms": 200}
    assert await profiles.save(300, None, None, [], {"as_of_ms": 300}, after_generation=2) == 3


async def test_a_retried_save_whose_reply_was_lost_writes_nothing_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis applied the MULTI, the reply was lost: the retry finds its own save, not another's."""
    store = RedisProfileStore.connect(
        RedisAccess(settings.redis_url), settings.redis_prefix, retry=RetryPolicy(budget_s=5.0, base_s=0.01)
    )
    execute = Pipeline.execute
    lost: list[int] = []

    async def applied_then_lost(self: Pipeline, raise_on_error: bool = True) -> list[object]:
        saving = any(  # the save's MULTI: it writes the meta
            b'"generation"' in (a.encode() if isinstance(a, str) else a)
            for args, _ in self.command_stack
            for a in args
            if isinstance(a, str | bytes)
        )
        result: list[object] = await execute(self, raise_on_error)
        if saving and not lost:
            lost.append(1)
            raise RedisConnectionError("the reply was lost (injected after EXEC)")
        return result

    try:
        monkeypatch.setattr(Pipeline, "execute", applied_then_lost)
        assert (
            await store.save(100, None, None, [record("c1", 0, 1)], {"as_of_ms": 100}, after_generation=0)
            == 1
        )
        assert lost == [1]  # the reply was lost once, the save retried
        monkeypatch.undo()
        assert await store.generation() == 1  # written once, not twice
        assert await store.save(200, None, None, [], {"as_of_ms": 200}, after_generation=1) == 2
        with pytest.raises(Superseded):
            await store.save(300, None, None, [], {"as_of_ms": 300}, after_generation=1)
    finally:
        await store.close()


def campaign_event(event_id: str, customer: str, kind: str, at_ms: int) -> CampaignEvent:
    return CampaignEvent(event_id, customer, "8", "treatment", kind, at_ms)  # type: ignore[arg-type]


async def test_campaign_events_wait_on_the_agenda_once_each(profiles: ProfileStore) -> None:
    exposure, response = (
        campaign_event("e1", "c1", "exposure", 100),
        campaign_event("r1", "c1", "response", 300),
    )
    assert await profiles.add_campaign_events([response, exposure, exposure]) == 2
    assert await profiles.add_campaign_events([exposure]) == 0  # a resend
    assert await profiles.campaign_due(300) == [exposure]  # occurred before 300 only
    assert await profiles.campaign_due(301) == [exposure, response]
    await profiles.campaign_done([exposure])
    assert await profiles.campaign_due(10_000) == [response]
    assert await profiles.add_campaign_events([exposure]) == 0  # evaluated and resent: still known
    assert await profiles.campaign_due(10_000) == [response]
    # many customers, so every partition holds some: due is one list, by occurred_at then event_id
    many = [campaign_event(f"m{i}", f"cust-{i}", "exposure", 1_000 + i % 7) for i in range(40)]
    assert await profiles.add_campaign_events(many[::-1]) == 40
    due = await profiles.campaign_due(2_000)
    assert due == sorted([response, *many], key=lambda e: (e.occurred_at_ms, e.event_id))
    await profiles.campaign_done(many[:20])
    assert await profiles.campaign_due(2_000) == [e for e in due if e not in many[:20]]


def campaign_keys(store: RedisProfileStore, customer: str, partitions: int, name: str) -> str:
    return partition_key(store._prefix, customer_partition(customer, partitions), f"campaign-{name}")


async def test_campaign_events_wait_on_their_customers_partition(settings: Settings) -> None:
    """Redis only: each waiting event is under its customer's evaluation partition's tag, none in
    the evaluator's one slot, and the namespace's partition count decides where."""
    store = RedisProfileStore.from_url(settings.redis_url, settings.redis_prefix)
    store.campaigns.proposed_partitions = 3
    try:
        events = [campaign_event(f"e{i}", f"c{i}", "exposure", 100 + i) for i in range(30)]
        assert await store.add_campaign_events(events) == 30
        assert await store.campaigns.partitions() == 3
        for event in events:
            key = campaign_keys(store, event.customer_id, 3, "events")
            assert await store._redis.hexists(key, event.event_id), (event, key)
        used = {customer_partition(e.customer_id, 3) for e in events}
        assert used == {0, 1, 2}
        assert not await store._redis.keys(f"{settings.redis_prefix}eval:{{segments}}:campaign*")
        other = RedisProfileStore.from_url(settings.redis_url, settings.redis_prefix)
        other.campaigns.proposed_partitions = 8  # a worker started with another count agrees
        try:
            assert await other.campaigns.partitions() == 3
            assert await other.campaign_due(10_000) == events
        finally:
            await other.close()
    finally:
        await store.close()


async def test_campaign_events_leave_the_store_once_evaluated_and_their_ids_after_the_window(
    settings: Settings,
) -> None:
    """Redis only: an evaluated event's JSON leaves the events hash (state per event waiting, not per
    event ever seen); its id dedupes resends for the window (a wall clock the test moves), then expires,
    and a copy two windows later is evaluated again (the documented limit)."""
    window = 100
    now = [float((int(time.time()) // window + 1) * window + window // 2)]
    store = RedisProfileStore.from_url(settings.redis_url, settings.redis_prefix)
    store.campaigns.dedupe = DedupeWindow(window, wall_s=lambda: now[0])
    exposure = campaign_event("e1", "c1", "exposure", 100)
    try:
        partitions = await store.campaigns.partitions()
        assert await store.add_campaign_events([exposure]) == 1
        await store.campaign_done([exposure])
        events_key = campaign_keys(store, "c1", partitions, "events")
        assert await store._redis.hlen(events_key) == 0  # nothing kept per evaluated event
        now[0] += window - 1  # next generation, within the window
        assert await store.add_campaign_events([exposure]) == 0
        ids_key = campaign_keys(store, "c1", partitions, "ids")
        ttl = await store._redis.ttl(f"{ids_key}:{int(now[0]) // window - 1}")
        assert 0 < ttl <= 3 * window
        now[0] += 2 * window
        assert await store.add_campaign_events([exposure]) == 1  # forgotten: evaluated again
        assert await store.campaign_due(10_000) == [exposure]
    finally:
        await store.close()


async def test_an_earlier_versions_one_slot_campaign_agenda_is_moved_and_its_ids_still_stop_resends(
    settings: Settings,
) -> None:
    """Redis only: what a version before the partitions left in ``eval:{segments}``: an event still
    waiting (moved onto its partition, due as before), an evaluated event kept in the events hash by
    versions that kept every one, an id in the current dedupe generation's set. Resends of all
    three are ignored; the old keys are gone once nothing is left to move."""
    window = 100
    now = [float((int(time.time()) // window + 1) * window + window // 2)]
    legacy = f"{settings.redis_prefix}eval:{{segments}}"
    waiting, kept, recent = (
        campaign_event("w1", "c1", "exposure", 100),
        campaign_event("k1", "c2", "exposure", 50),
        campaign_event("s1", "c3", "response", 70),
    )
    store = RedisProfileStore.from_url(settings.redis_url, settings.redis_prefix)
    store.campaigns.dedupe = DedupeWindow(window, wall_s=lambda: now[0])
    try:
        generation = int(now[0]) // window
        await store._redis.hset(f"{legacy}:campaign-events", "w1", msgspec.json.encode(waiting))
        await store._redis.zadd(f"{legacy}:campaign-agenda", {"w1": 101})
        await store._redis.hset(f"{legacy}:campaign-events", "k1", msgspec.json.encode(kept))
        await store._redis.sadd(f"{legacy}:campaign-ids:{generation}", "w1", "s1")
        assert await store.campaign_due(10_000) == [waiting]  # moved at first use
        assert not await store._redis.exists(f"{legacy}:campaign-agenda")
        assert await store._redis.hkeys(f"{legacy}:campaign-events") == [b"k1"]
        fresh = campaign_event("f1", "c4", "exposure", 80)
        assert await store.add_campaign_events([waiting, kept, recent, fresh]) == 1  # only f1 is new
        assert await store.campaign_due(10_000) == [fresh, waiting]
        await store.campaign_done([fresh, waiting])
        assert await store.add_campaign_events([waiting]) == 0  # its id is still known
        await store._redis.delete(f"{legacy}:campaign-events", f"{legacy}:campaign-ids:{generation}")
        assert await store.add_campaign_events([kept]) == 1  # nothing of the old keys left: new
    finally:
        await store.close()


async def test_evaluator_rows_read_back_whole_from_every_read(profiles: ProfileStore) -> None:
    """Rows of the evaluator's shape (packed on Redis, state.adapters.view_rows) read back equal,
    whichever read takes them: load, one profile, many profiles."""
    pop = Population()
    pop.upsert(CustomerState("c1", 3, 12_345, 1, 86_400_000, 5 * 86_400_000, 2))
    pop.upsert(CustomerState("c:2", 0, -500, 1))
    pop.set_profile(0, Profile(4, 3, 5, "Loyal Customers", 2, "Cooling high-value frequent buyers"), 7)
    rows = [pop.record(0), pop.record(1)]
    await profiles.save(100, None, None, rows, {"as_of_ms": 100})
    saved = await profiles.load()
    assert saved is not None
    assert sorted(saved.records, key=lambda r: int(r["row"])) == rows
    assert await profiles.profile("c:2") == rows[1]
    assert await profiles.profiles(["c1", "c:2", "nobody"]) == {"c1": rows[0], "c:2": rows[1]}


async def test_open_batches_are_kept_apart_until_removed_and_read_back_oldest_first(
    profiles: ProfileStore,
) -> None:
    model = b"models\x00v1"
    await profiles.save(100, None, model, [], {}, batches_added=[(300, b"third"), (200, b"\x00second")])
    await profiles.save(400, None, None, [], {}, batches_added=[(400, b"fourth")], batches_removed=[200])
    saved = await profiles.load()
    assert saved is not None and saved.model == model
    assert saved.batches == [(300, b"third"), (400, b"fourth")]
    await profiles.save(500, None, None, [], {}, batches_removed=[300, 400, 999])  # 999: never there
    saved = await profiles.load()
    assert saved is not None and saved.batches == [] and saved.model == model


async def test_a_model_owners_versions_log_is_replaced_by_each_save_and_dropped_by_the_one_evaluators(
    profiles: ProfileStore,
) -> None:
    await profiles.save(100, None, b"m", [], {}, versions_log=b"\x00log one")
    saved = await profiles.load()
    assert saved is not None and saved.versions_log == b"\x00log one"
    await profiles.save(200, None, None, [], {}, versions_log=b"log two")
    saved = await profiles.load()
    assert saved is not None and saved.versions_log == b"log two" and saved.model == b"m"
    await profiles.save(300, None, None, [], {})  # the one evaluator keeps no log
    saved = await profiles.load()
    assert saved is not None and saved.versions_log is None


async def test_the_evaluator_writes_each_batch_once_and_the_model_only_when_it_changed(
    settings: Settings,
) -> None:
    """Redis only, the evaluator's own saves: a key a save rewrites loses the TTL the test put on it
    (``SET`` clears a TTL), so a key that keeps it was not written again. Batch keys keep theirs until
    their labels arrive and they are deleted; the model keeps its through an instant off the grid
    (nothing learned), and loses it at a grid instant (the cluster model and drift monitors moved).
    A reloaded evaluator writes the model once whole (it does not know what the store holds)."""
    messages = history()
    store, outbox = MemoryStore(), Outbox()
    await ingest_batch(messages, store, no_letters)
    profiles = RedisProfileStore.from_url(settings.redis_url, settings.redis_prefix)
    base = f"{settings.redis_prefix}eval:{{segments}}"
    redis = profiles._redis

    evaluator = SegmentEvaluator(CONFIG, store, profiles, outbox, TOPIC, poll_s=0.01)  # no reloads

    async def tick(at_ms: int) -> None:
        await evaluator.on_tick(Tick(at_ms, {0: len(messages)}, "test"))

    async def open_batches() -> set[int]:
        return {int(m) for m in await redis.zrange(f"{base}:batches", 0, -1)}

    async def marked(key: str) -> bool:
        """Whether ``key`` still has the TTL the test gave it (not written since)."""
        return int(await redis.pttl(key)) > 0

    try:
        await tick(DAY0 + 40 * DAY_MS)
        before = await open_batches()
        assert before and await redis.exists(*(f"{base}:batch:{m}" for m in before)) == len(before)
        for key in [f"{base}:model", *(f"{base}:batch:{m}" for m in before)]:
            await redis.pexpire(key, 10**9)
        await tick(DAY0 + 40 * DAY_MS + 3_600_000)  # off the grid: a quiet instant
        assert await marked(f"{base}:model")  # the same bytes: not written again
        await tick(DAY0 + 60 * DAY_MS)  # 20 grid instants: batches made and resolved
        after = await open_batches()
        assert after - before and before - after
        assert all([await marked(f"{base}:batch:{m}") for m in before & after])  # written once
        assert not await redis.exists(*(f"{base}:batch:{m}" for m in before - after))  # deleted
        assert not await marked(f"{base}:model")  # the models learned: written
        saved = await profiles.load()
        assert saved is not None and [m for m, _ in saved.batches] == sorted(after)
        for key in [f"{base}:model", *(f"{base}:batch:{m}" for m in after)]:
            await redis.pexpire(key, 10**9)
        evaluator = SegmentEvaluator(CONFIG, store, profiles, outbox, TOPIC, poll_s=0.01)  # a reload
        await tick(DAY0 + 60 * DAY_MS + 3_600_000)
        assert not await marked(f"{base}:model")
        assert all([await marked(f"{base}:batch:{m}") for m in after])  # the store has them already
        assert await open_batches() == after
    finally:
        await profiles.close()

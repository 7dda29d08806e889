"""One contract, two stores: the in-memory reference and Redis (Lua) must agree exactly."""

from __future__ import annotations

import random
import string
import time
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest
import redis.asyncio as redis

from agents.settings import Settings
from segstream.batch import RFM_COLUMNS, rfm_table
from segstream.export import customers_frame
from segstream.redis_cluster import RedisClusterInfo
from segstream.sources import load_cdnow
from state.adapters import redis_store_agenda
from state.adapters.redis_access import RedisAccess
from state.adapters.redis_store import RedisStore
from state.customer.event_log import CustomerLog, LogBase, LogEntry, LogFold
from state.customer.memory_store import MemoryStore
from state.customer.partitions import customer_partition
from state.customer.rfm import CustomerState
from state.customer.store import (
    CustomerStore,
    Delivery,
    Outcome,
    Stats,
    Tally,
    TopicReset,
    fence_field,
    parse_agenda_member,
)
from state.segments.segments import load_preset
from streams.contract import Purchase
from tests.store_helpers import DAY, delivery, purchase_days

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "redis", "redis-split-by-slot", "redis-cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CustomerStore]:
    """The reference store, Redis with one script call per batch, the Redis Cluster call pattern on
    one node, and a real 3-master Redis Cluster (``SEGSTREAM_REDIS_CLUSTER``)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "redis-cluster":
        cluster: RedisClusterInfo = request.getfixturevalue("redis_cluster")
        on_cluster = RedisStore.connect(RedisAccess(cluster.url, cluster=True), f"t{uuid.uuid4().hex[:10]}:")
        assert on_cluster.cluster
        yield on_cluster
        await on_cluster.close()
        return
    settings: Settings = request.getfixturevalue("settings")
    redis_store = RedisStore.from_url(
        settings.redis_url, settings.redis_prefix, cluster=request.param == "redis-split-by-slot"
    )
    yield redis_store
    await redis_store.close()


async def test_fold_counts_purchases_sums_money_and_keeps_min_max(store: CustomerStore) -> None:
    outcomes = await store.apply_batch(
        [
            delivery("e1", "c1", 5 * DAY, 1000, offset=0),
            delivery("e2", "c1", 2 * DAY, 250, offset=1),
            delivery("e3", "c1", 9 * DAY, -300, offset=2, refund=True),
            delivery("e4", "c2", 1 * DAY, 0, offset=3),
        ]
    )
    assert outcomes == [Outcome.NEW_CUSTOMER, Outcome.APPLIED, Outcome.APPLIED, Outcome.NEW_CUSTOMER]
    assert await store.get("c1") == CustomerState("c1", 2, 950, 1, 2 * DAY, 5 * DAY, purchase_days=2)
    assert await store.get("c2") == CustomerState("c2", 1, 0, 0, DAY, DAY, purchase_days=1)
    assert await store.get("nobody") is None
    assert await store.watermark() == 9 * DAY  # refunds move the watermark too


async def test_redelivery_below_the_offset_fence_is_ignored(store: CustomerStore) -> None:
    await store.apply_batch(
        [delivery("e1", "c1", DAY, 100, offset=10), delivery("e2", "c1", DAY, 100, offset=11)]
    )
    again = await store.apply_batch(
        [delivery("e1", "c1", DAY, 100, offset=10), delivery("e2", "c1", DAY, 100, 11)]
    )
    assert again == [Outcome.REDELIVERED, Outcome.REDELIVERED]
    assert (await store.get("c1")) == CustomerState("c1", 2, 200, 0, DAY, DAY, purchase_days=1)


async def test_fences_are_per_partition(store: CustomerStore) -> None:
    await store.apply_batch([delivery("e1", "c1", DAY, 100, offset=50, partition=0)])
    outcomes = await store.apply_batch([delivery("e2", "c1", DAY, 100, offset=3, partition=1)])
    assert outcomes == [Outcome.APPLIED]


async def test_producer_resend_with_new_offset_is_a_duplicate(store: CustomerStore) -> None:
    await store.apply_batch([delivery("e1", "c1", DAY, 100, offset=0)])
    outcomes = await store.apply_batch([delivery("e1", "c1", DAY, 100, offset=7)])
    assert outcomes == [Outcome.DUPLICATE]
    assert (await store.get("c1")) == CustomerState("c1", 1, 100, 0, DAY, DAY, purchase_days=1)
    stats = await store.stats()
    assert (stats.applied, stats.duplicates, stats.customers) == (1, 1, 1)


async def test_same_day_purchases_count_one_purchase_day_in_any_order(store: CustomerStore) -> None:
    """BG/NBD merges same-day purchases: days are UTC calendar days, whatever the arrival order."""
    noon, late, next_day = DAY + DAY // 2, 2 * DAY - 1, 2 * DAY
    await store.apply_batch([delivery("a", "c1", late, 100, 0), delivery("b", "c1", next_day, 100, 1)])
    await store.apply_batch(
        [delivery("c", "c1", noon, 100, 2), delivery("r", "c1", 5 * DAY, -50, 3, refund=True)]
    )
    state = await store.get("c1")
    assert state is not None and (state.frequency, state.purchase_days) == (3, 2)


async def test_refund_only_customer_has_no_purchase_dates(store: CustomerStore) -> None:
    await store.apply_batch([delivery("r1", "c9", DAY, -500, offset=0, refund=True)])
    assert await store.get("c9") == CustomerState("c9", 0, -500, 1, None, None)


async def test_empty_batch_changes_nothing(store: CustomerStore) -> None:
    assert await store.apply_batch([]) == []
    assert await store.watermark() is None
    assert await store.stats() == Stats()


async def test_dead_letter_fences_only_move_forward_and_count(store: CustomerStore) -> None:
    a, b = ("purchases", 0), ("purchases", 1)
    assert await store.dead_letter_fences([a, b]) == {a: -1, b: -1}
    await store.record_dead_letters({a: 7, b: 2}, count=3)
    await store.record_dead_letters({a: 5}, count=1)  # an older offset never moves a fence back
    assert await store.dead_letter_fences([a, b, ("other", 0)]) == {a: 7, b: 2, ("other", 0): -1}
    assert (await store.stats()).invalid == 4


async def test_cdnow_sample_shuffled_matches_pandas(store: CustomerStore) -> None:
    """Real data, arrival order shuffled, in batches: the store equals the batch oracle."""
    history = load_cdnow(sample=True)
    rows = list(history.itertuples(index=False))
    random.Random(7).shuffle(rows)
    deliveries = [
        delivery(r.event_id, r.customer_id, int(r.occurred_at.value // 1_000_000), round(r.amount * 100), i)
        for i, r in enumerate(rows)
    ]
    for start in range(0, len(deliveries), 700):
        await store.apply_batch(deliveries[start : start + 700])
    live = customers_frame(await store.all_customers(), await store.watermark(), load_preset())[RFM_COLUMNS]
    expected = rfm_table(history)
    assert len(live) == 2357
    assert live.drop(columns=["first_purchase_at", "last_purchase_at"]).equals(
        expected.drop(columns=["first_purchase_at", "last_purchase_at"])
    )
    assert (live["first_purchase_at"] == expected["first_purchase_at"]).all()
    assert (live["last_purchase_at"] == expected["last_purchase_at"]).all()
    everyone = {s.customer_id: s for s in await store.all_customers()}
    some = [*sorted(everyone)[::97], "nobody"]
    assert await store.current_states(some) == {c: everyone[c] for c in some if c != "nobody"}
    every = ["nobody", *sorted(everyone, reverse=True)]  # several script calls (500 customers each)
    assert await store.current_states(every) == everyone
    assert await store.current_states([]) == {}


async def test_applied_events_are_logged_once_and_every_delivery_goes_on_the_agenda(
    store: CustomerStore,
) -> None:
    await store.apply_batch(
        [
            delivery("e1", "c:1", 5 * DAY, 1000, offset=0),
            delivery("e2", "c:1", 2 * DAY, 250, offset=1),
            delivery("r1", "c:1", 9 * DAY, -300, offset=2, refund=True),
            delivery("e1", "c:1", 5 * DAY, 1000, offset=3),  # a resend: not logged twice
            delivery("x", "c2", 30 * DAY, 700, offset=4),
        ]
    )
    logs = await store.logs(["c:1", "c2", "nobody"])
    assert logs == {
        "c:1": CustomerLog(
            None,
            [
                LogEntry(2 * DAY, "e2", "purchase", 250),
                LogEntry(5 * DAY, "e1", "purchase", 1000),
                LogEntry(9 * DAY, "r1", "refund", -300),
            ],
        ),
        "c2": CustomerLog(None, [LogEntry(30 * DAY, "x", "purchase", 700)]),
        "nobody": CustomerLog(None, []),
    }
    due = await store.due(9 * DAY)
    assert [(parse_agenda_member(m), s) for m, s in due] == [("c:1", 2 * DAY + 1), ("c:1", 5 * DAY + 1)]
    await store.done(due[:1])
    assert [s for _, s in await store.due(10 * DAY)] == [5 * DAY + 1, 9 * DAY + 1]
    # a redelivery after a crash goes back on the agenda: the evaluator re-reads the log, harmless
    await store.apply_batch([delivery("e2", "c:1", 2 * DAY, 250, offset=1)])
    assert [s for _, s in await store.due(10 * DAY)] == [2 * DAY + 1, 5 * DAY + 1, 9 * DAY + 1]
    # a catch-up tick reads one chunk's range at a time: (after, up to], and where the agenda starts
    assert [s for _, s in await store.due(10 * DAY, after_ms=2 * DAY + 1)] == [5 * DAY + 1, 9 * DAY + 1]
    assert [s for _, s in await store.due(9 * DAY + 1, after_ms=5 * DAY)] == [5 * DAY + 1, 9 * DAY + 1]
    assert await store.due(5 * DAY + 1, after_ms=5 * DAY + 1) == []
    assert await store.earliest_due(10 * DAY) == 2 * DAY + 1
    assert await store.earliest_due(2 * DAY) is None  # nothing that early
    # a partition's host reads its own partition's entries alone: together they are every entry
    partitions = await store.eval_partitions()
    everyone = await store.due(40 * DAY)
    mine = [await store.due(40 * DAY, partition=p) for p in range(partitions)]
    assert sorted(e for part in mine for e in part) == sorted(everyone) and len(everyone) == 4
    for p, part in enumerate(mine):
        assert {customer_partition(parse_agenda_member(m), partitions) for m, _ in part} <= {p}
    with pytest.raises(ValueError, match=f"no evaluation partition {partitions} of {partitions}"):
        await store.due(40 * DAY, partition=partitions)


async def test_compaction_folds_the_head_of_a_log_and_late_events_go_into_the_base(
    store: CustomerStore,
) -> None:
    """The store's compaction (Lua on Redis) against the pure reference: the base holds exactly the
    events before the midnight, same-day purchases count one day across a late arrival, a refund
    counts no day, and the state folded from base + tail equals the state folded from every event."""
    events = [
        delivery("a", "c:1", 2 * DAY + 5, 1000, offset=0),
        delivery("b", "c:1", 2 * DAY + 9, 300, offset=1),  # same day as a
        delivery("r", "c:1", 3 * DAY, -200, offset=2, refund=True),
        delivery("c", "c:1", 6 * DAY + 1, 700, offset=3),  # after the base: stays in the log
        delivery("z", "c3", 7 * DAY, 50, offset=4),  # only after the base: no base for c3
    ]
    await store.apply_batch(events)
    assert await store.compact(["c:1", "c3", "nobody"], 5 * DAY) == 3
    logs = await store.logs(["c:1", "c3", "nobody"])
    assert logs["c:1"].base == LogBase(5 * DAY, CustomerState("c:1", 2, 1100, 1, 2 * DAY + 5, 2 * DAY + 9, 1))
    assert logs["c:1"].entries == [LogEntry(6 * DAY + 1, "c", "purchase", 700)]
    assert logs["c3"] == CustomerLog(None, [LogEntry(7 * DAY, "z", "purchase", 50)])
    assert logs["nobody"] == CustomerLog(None, [])
    assert await store.compact(["c:1"], 4 * DAY) == 0  # a base never moves back
    late = [
        delivery("d", "c:1", 2 * DAY + 1, 40, offset=5),  # late, on a day the base has: no new day
        delivery("e", "c:1", DAY, 60, offset=6),  # late, a new first purchase and a new day
        delivery("d", "c:1", 2 * DAY + 1, 40, offset=7),  # a resend of a late one: ignored
    ]
    assert await store.apply_batch(late) == [Outcome.APPLIED, Outcome.APPLIED, Outcome.DUPLICATE]
    after = (await store.logs(["c:1"]))["c:1"]
    assert after.base == LogBase(5 * DAY, CustomerState("c:1", 4, 1200, 1, DAY, 2 * DAY + 9, 2))
    every = [
        LogEntry(d.event.occurred_at_ms, d.event.event_id, d.event.type, d.event.amount_cents)
        for d in events[:4] + late[:2]
    ]
    expected = LogFold("c:1", every).advance(8 * DAY)
    assert LogFold("c:1", after.entries, after.base).advance(8 * DAY) == expected == await store.get("c:1")
    assert await store.compact(["c:1"], 7 * DAY) == 1
    again = (await store.logs(["c:1"]))["c:1"]
    assert again.entries == [] and again.base is not None
    assert again.base.state == expected and again.base.before_ms == 7 * DAY
    # with the log empty the base is the live state (stored bare on Redis); a late event stays in it, the
    # first event after it leaves the base as it was before that event
    await store.apply_batch(
        [delivery("f", "c:1", 3 * DAY, 10, offset=8), delivery("g", "c:1", 8 * DAY, 20, offset=9)]
    )
    last = (await store.logs(["c:1"]))["c:1"]
    assert last.entries == [LogEntry(8 * DAY, "g", "purchase", 20)]
    assert last.base == LogBase(7 * DAY, CustomerState("c:1", 6, 1910, 1, DAY, 6 * DAY + 1, 4))


async def test_compaction_of_a_shuffled_history_equals_the_whole_log(store: CustomerStore) -> None:
    """Random histories (purchases and refunds, many on the same days), applied in a random order
    with compactions at random midnights in between: base + tail always folds to the whole log's
    state at any instant after the base."""
    rng = random.Random(11)
    customers = [f"k{i}" for i in range(12)]
    history = [
        Purchase(
            f"e{i}",
            rng.choice(customers),
            occurred_at_ms=rng.randrange(0, 40 * DAY, 3_600_000),
            amount_cents=rng.randrange(-500, 5000),
            type="refund" if rng.random() < 0.15 else "purchase",
        )
        for i in range(400)
    ]
    arrivals = list(history)
    rng.shuffle(arrivals)
    midnight = 0
    for start in range(0, len(arrivals), 50):
        batch = arrivals[start : start + 50]
        await store.apply_batch([Delivery(e, "purchases", 0, start + i) for i, e in enumerate(batch)])
        midnight = max(midnight, rng.randrange(0, 45) * DAY)
        await store.compact(customers, midnight)
    logs = await store.logs(customers)
    for c in customers:
        mine = [
            LogEntry(e.occurred_at_ms, e.event_id, e.type, e.amount_cents)
            for e in history
            if e.customer_id == c
        ]
        log = logs[c]
        assert all(e.occurred_at_ms >= midnight for e in log.entries)
        for at in (midnight, midnight + DAY // 2, 50 * DAY):
            assert LogFold(c, log.entries, log.base).advance(at) == LogFold(c, mine).advance(at), (c, at)
        assert LogFold(c, log.entries, log.base).advance(50 * DAY) == await store.get(c)


async def test_consumed_offsets_only_move_forward_per_topic(store: CustomerStore) -> None:
    assert await store.consumed("purchases") == {}
    await store.record_consumed({("purchases", 0): 10, ("purchases", 3): 4, ("other", 0): 99})
    await store.record_consumed({("purchases", 0): 7, ("purchases", 1): 2})
    assert await store.consumed("purchases") == {0: 10, 1: 2, 3: 4}
    assert await store.consumed("other") == {0: 99}


async def test_a_topic_reset_starts_a_new_fence_epoch_and_forgets_its_offsets(store: CustomerStore) -> None:
    """A recreated topic starts again at offset 0: old fences must not drop its events."""
    await store.apply_batch(
        [delivery("e1", "c1", DAY, 100, offset=100), delivery("e2", "c1", DAY, 100, offset=101)]
    )
    await store.record_consumed({("purchases", 0): 102, ("purchases", 1): 7, ("other", 0): 5})
    await store.record_dead_letters({("purchases", 0): 99, ("other", 0): 3}, count=2)
    assert await store.fence_epoch("purchases") == 0
    assert await store.apply_batch([delivery("e3", "c1", 2 * DAY, 50, offset=0)]) == [Outcome.REDELIVERED]

    reset = TopicReset("purchases", 1, 1_700_000_000_000, {0: (102, 3)})
    assert await store.reset_topic(reset)
    assert not await store.reset_topic(reset), "a second worker with the same view finds it done"
    assert not await store.reset_topic(TopicReset("purchases", 3, 0, {})), "epochs move one at a time"
    assert await store.fence_epoch("purchases") == 1
    assert await store.fence_epoch("other") == 0
    assert await store.topic_resets() == [reset]
    assert await store.consumed("purchases") == {}
    assert await store.consumed("other") == {0: 5}
    fences = await store.dead_letter_fences([("purchases", 0), ("other", 0)])
    assert fences == {("purchases", 0): -1, ("other", 0): 3}
    assert (await store.stats()).invalid == 2

    # the new incarnation: offsets from 0 apply; a true resend is still a duplicate
    outcomes = await store.apply_batch(
        [delivery("e3", "c1", 2 * DAY, 50, offset=0), delivery("e1", "c1", DAY, 100, offset=1)]
    )
    assert outcomes == [Outcome.APPLIED, Outcome.DUPLICATE]
    assert await store.apply_batch([delivery("e3", "c1", 2 * DAY, 50, offset=0)]) == [Outcome.REDELIVERED]
    assert await store.get("c1") == CustomerState("c1", 3, 250, 0, DAY, 2 * DAY, purchase_days=2)

    second = TopicReset("purchases", 2, 1_700_000_100_000, {0: (2, 0), 3: (9, 1)})
    assert await store.reset_topic(second)
    assert await store.topic_resets() == [reset, second]
    assert await store.apply_batch([delivery("e4", "c1", 3 * DAY, 10, offset=0)]) == [Outcome.APPLIED]


async def test_tallies_count_once_per_applied_event(store: CustomerStore) -> None:
    """Resends and redeliveries add nothing; per-customer tables stay the customer's own."""
    mine = (
        Tally("cust:channel", "web", per_customer=True),
        Tally("cust:channel", "store", 2, per_customer=True),
    )
    first = Delivery(Purchase("e1", "c1", DAY, 100), "purchases", 0, 0, mine)
    resend = Delivery(Purchase("e1", "c1", DAY, 100), "purchases", 0, 5, mine)
    other = Delivery(
        Purchase("e2", "c2", DAY, 100), "purchases", 0, 1, (Tally("cust:channel", "web", per_customer=True),)
    )
    assert await store.apply_batch([first, other, resend]) == [
        Outcome.NEW_CUSTOMER,
        Outcome.NEW_CUSTOMER,
        Outcome.DUPLICATE,
    ]
    assert await store.apply_batch([first]) == [Outcome.REDELIVERED]
    assert await store.tally("cust:channel", "c1") == {"web": 1, "store": 2}
    assert await store.tallies("cust:channel", ["c1", "c2", "c3"]) == {
        "c1": {"web": 1, "store": 2},
        "c2": {"web": 1},
        "c3": {},
    }
    assert [s.customer_id for s in sorted(await store.all_customers(), key=lambda s: s.customer_id)] == [
        "c1",
        "c2",
    ]


async def test_shared_tallies_count_once_on_a_single_node(store: CustomerStore) -> None:
    shared = (Tally("basket:pair", "a|b"), Tally("basket:item", "a"), Tally("basket:item", "b"))
    batch = [
        Delivery(Purchase("e1", "c1", DAY, 100), "purchases", 0, 0, shared),
        Delivery(Purchase("e2", "c2", DAY, 100), "purchases", 1, 0, shared[1:2]),
        Delivery(Purchase("e1", "c1", DAY, 100), "purchases", 1, 1, shared),  # resend
    ]
    if isinstance(store, RedisStore) and store.cluster:
        with pytest.raises(ValueError, match="single Redis node"):
            await store.apply_batch(batch)
        return
    await store.apply_batch(batch)
    await store.apply_batch(batch[:1])  # redelivery
    assert await store.tally("basket:item") == {"a": 2, "b": 1}
    assert await store.tally("basket:pair") == {"a|b": 1}
    assert await store.tally("basket:none") == {}


async def test_receipt_times_keep_the_first_receipt_and_leave_with_the_agenda(store: CustomerStore) -> None:
    first = Delivery(Purchase("e1", "c1", DAY, 100), "purchases", 0, 0, received_ms=5_000)
    resend = Delivery(Purchase("e1", "c1", DAY, 100), "purchases", 0, 1, received_ms=9_000)
    unknown = Delivery(Purchase("e2", "c2", DAY, 100), "purchases", 0, 2)
    await store.apply_batch([first, resend, unknown])
    entries = await store.due(DAY + 1)
    members = sorted(m for m, _ in entries)
    assert len(members) == 2
    assert await store.received(members) == {m: 5_000 for m in members if parse_agenda_member(m) == "c1"}
    await store.done(entries)
    assert await store.received(members) == {}


async def test_the_dedupe_window_forgets_event_ids_two_generations_on(settings: Settings) -> None:
    """Redis only (the memory reference never forgets): ``SEGSTREAM_DEDUPE_WINDOW_S`` on a wall clock the
    test moves. A copy within the window is a duplicate, whichever generation it lands in; one two
    windows later is applied again (the documented limit); the id sets expire on their own; ids in the
    unbounded set of earlier versions still stop copies."""
    window = 100
    now = [
        float((int(time.time()) // window + 1) * window + window // 2)
    ]  # half-way into a generation to come
    store = RedisStore(
        redis.Redis.from_url(settings.redis_url, decode_responses=True),
        settings.redis_prefix,
        dedupe_window_s=window,
        wall_s=lambda: now[0],
    )
    try:
        assert await store.apply_batch([delivery("e1", "w", DAY, 100, offset=0)]) == [Outcome.NEW_CUSTOMER]
        now[0] += window - 1  # the window's last second: in the next generation, checked against this one
        assert await store.apply_batch([delivery("e1", "w", DAY, 100, offset=1)]) == [Outcome.DUPLICATE]
        key = f"{settings.redis_prefix}seg:{{w}}"
        generation = int(now[0]) // window - 1
        ttl = await store._redis.ttl(f"{key}:ids:{generation}")
        assert 0 < ttl <= 3 * window  # expires when generation + 2 begins, without any sweeper
        now[0] += 2 * window  # two windows later: forgotten, applied again
        assert await store.apply_batch([delivery("e1", "w", DAY, 100, offset=2)]) == [Outcome.APPLIED]
        assert (await store.get("w")) == CustomerState("w", 2, 200, 0, DAY, DAY, 1)
        await store._redis.sadd(f"{key}:ev", "old")  # written by a version before the window
        assert await store.apply_batch([delivery("old", "w", DAY, 5, offset=3)]) == [Outcome.DUPLICATE]
    finally:
        await store.close()


async def test_a_customers_counters_are_one_packed_map_in_their_hash_and_old_hash_fields_still_count(
    settings: Settings,
) -> None:
    """Redis only: every per-customer counter of a customer sits in one MessagePack map (table code ->
    field -> count; months and hours as numbers) kept in the fields t0, t1, ... of their state hash,
    counted once per applied event across script calls, refunds subtracting; the hash of fields that
    earlier versions wrote is still read and added."""
    store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
    key = f"{settings.redis_prefix}seg:{{packed}}"
    try:
        await store._redis.hset(f"{key}:t", mapping={"cohort:orders/1997-01": 4, "cust:channel/web": 1})
        months = [f"1997-{m:02d}" for m in range(1, 13)] + [f"1998-{m:02d}" for m in range(1, 13)]
        expected_orders: dict[str, int] = {"1997-01": 4}
        expected_cents: dict[str, int] = {}
        batches: list[list[Delivery]] = [[], []]
        for i, month in enumerate(months * 2):  # every month twice, in two script calls
            cents = -250 if i % 5 == 0 else 1_000 + i
            tallies = (
                Tally("cohort:orders", month, per_customer=True),
                Tally("cohort:cents", month, cents, per_customer=True),
                Tally("cust:channel", "web", per_customer=True),
                Tally("besttime:how", str(i % 3 + 1), per_customer=True),  # hours 1..3: cmsgpack's array form
            )
            event = Purchase(f"p{i}", "packed", DAY * i, cents, type="purchase" if cents > 0 else "refund")
            batches[i % 2].append(Delivery(event, "purchases", i % 2, i, tallies))  # a partition a call
            expected_orders[month] = expected_orders.get(month, 0) + 1
            expected_cents[month] = expected_cents.get(month, 0) + cents
        for batch in batches:
            await store.apply_batch(batch + batch[:3])  # resends in the same call count nothing
        assert await store.tally("cohort:orders", "packed") == expected_orders
        assert await store.tallies("cohort:cents", ["packed"]) == {"packed": expected_cents}
        assert await store.tally("cust:channel", "packed") == {"web": 1 + 2 * len(months)}
        assert await store.tally("besttime:how", "packed") == {"1": 16, "2": 16, "3": 16}
        assert await store._redis.exists(f"{key}:tp") == 0
        fields = await store._redis.execute_command("HGETALL", key, NEVER_DECODE=[])
        parts = []
        while f"t{len(parts)}".encode() in fields:
            parts.append(fields[f"t{len(parts)}".encode()])
        assert len(parts) > 1 and all(len(p) <= 60 for p in parts)
        assert await store._redis.object("encoding", key) == "listpack"

        def number(month: str) -> int:  # months since year 0, as the map keys them
            return 12 * int(month[:4]) + int(month[5:7]) - 1

        orders = {**expected_orders, "1997-01": expected_orders["1997-01"] - 4}  # the old hash held 4
        packed = msgspec.msgpack.decode(b"".join(parts))
        assert packed == {
            "o": {number(m): n for m, n in orders.items()},
            "c": {number(m): n for m, n in expected_cents.items()},
            "n": {"web": 2 * len(months)},
            "b": [16, 16, 16],
        }
        assert len(b"".join(parts)) < 6 * (2 * len(months) + 4)  # ~5 bytes a counter, not ~9 as text
    finally:
        await store.close()


async def test_a_state_hash_written_by_an_earlier_version_reads_the_same_and_is_renamed_at_its_next_fold(
    settings: Settings,
) -> None:
    """Redis only: before 2026-11-30 a state hash had long field names, a customer_id field and its
    counters in the string ``:tp`` with months as text. It reads the same; the next applied event
    renames the hash and moves the counters into it, in the same atomic call."""
    store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
    key = f"{settings.redis_prefix}seg:{{early}}"
    try:
        digits = string.digits + string.ascii_uppercase + string.ascii_lowercase
        day = 10_000  # 1997-05-19
        code = "".join(digits[day // unit % 62] for unit in (62 * 62, 62, 1))
        await store._redis.hset(
            key,
            mapping={
                "customer_id": "early",
                "frequency": 2,
                "monetary_cents": 900,
                "refunds": 0,
                "first_purchase_ms": day * DAY,
                "last_purchase_ms": day * DAY + 5,
                "purchase_days": 1,
                "days0": code,
                fence_field("purchases", 0, 0): 1,
                "log_base": str((day + 1) * DAY),
            },
        )
        await store._redis.set(f"{key}:tp", msgspec.msgpack.encode({"o": {"1997-05": 2}}))
        before = CustomerState("early", 2, 900, 0, day * DAY, day * DAY + 5, 1)
        assert await store.get("early") == before
        assert [s for s in await store.all_customers() if s.customer_id == "early"] == [before]
        assert await store.tally("cohort:orders", "early") == {"1997-05": 2}

        tallies = (Tally("cohort:orders", "1997-05", per_customer=True),)
        same_day = Purchase("e3", "early", day * DAY + 9, 100)  # a known purchase day, folded into the base
        assert await store.apply_batch([Delivery(same_day, "purchases", 0, 2, tallies)]) == [Outcome.APPLIED]
        assert await store.get("early") == CustomerState("early", 3, 1_000, 0, day * DAY, day * DAY + 9, 1)
        assert await store.tally("cohort:orders", "early") == {"1997-05": 3}
        names = set(await store._redis.hkeys(key))
        assert names == {"f", "m", "r", "a", "z", "n", "p0", "l", "t0", fence_field("purchases", 0, 0)}
        assert (await purchase_days(store._redis, key))[0] == [day]  # "days0" -> "d0" -> "p0"
        assert await store._redis.exists(f"{key}:tp") == 0
        base = await store.logs(["early"])
        assert base["early"].base is not None and base["early"].base.state.frequency == 3
    finally:
        await store.close()


async def test_the_agenda_is_read_in_pages_even_through_long_runs_of_one_score(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis only: a catch-up tick reads millions of agenda entries, so they come a page at a time
    (one reply of 3.96M entries outlasted redis-py's socket timeout). Pages of 7 here: runs of one
    score (a day's purchases at midnight) longer than a page, and page ends inside runs, give every
    entry once and in order, the same as one ZRANGEBYSCORE per partition, sorted by score then member."""
    monkeypatch.setattr(redis_store_agenda, "AGENDA_PAGE", 7)
    store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
    try:
        at = [DAY] * 30 + [DAY + 5] * 3 + [2 * DAY + i for i in range(12)] + [2 * DAY + 3] * 9 + [5 * DAY]
        await store.apply_batch([delivery(f"e{i}", f"c{i % 11}", ms, 100, i) for i, ms in enumerate(at)])
        keys = [store._agenda_key("agenda", p) for p in range(4)]
        assert all([await store._redis.zcard(k) for k in keys])  # 11 customers over the 4 partitions
        for up_to in (DAY, DAY + 6, 2 * DAY + 3, 2 * DAY + 4, 3 * DAY, 6 * DAY):
            one_reply = [
                e for k in keys for e in await store._redis.zrangebyscore(k, "-inf", up_to, withscores=True)
            ]
            paged = await store.due(up_to)
            assert paged == sorted(((m, int(s)) for m, s in one_reply), key=lambda e: (e[1], e[0]))
            assert len(paged) == sum(1 for ms in at if ms + 1 <= up_to)  # the agenda scores occurred + 1
            after = DAY + 1  # a range starting inside the run of DAY + 1 scores: none of it
            assert await store.due(up_to, after_ms=after) == [(m, s) for m, s in paged if s > after]
    finally:
        await store.close()

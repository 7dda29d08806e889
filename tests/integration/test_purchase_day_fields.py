"""Redis only: how the fold remembers a customer's purchase days (``state/adapters/rfm_fold.lua``).

A purchase on a day the customer has bought on before is not a new purchase day (BG/NBD's
frequency counts days), so the fold keeps every day, whatever order events arrive in: in the state
hash's fields ``p0``, ``p1``, ..., the first day and the gaps as LEB128 numbers. The stream is
checked here against ``tests.store_helpers.decode_days``, a decoder of its own.
"""

from __future__ import annotations

import itertools
import random
import string

import pytest

from agents.settings import Settings
from state.adapters.redis_store import RedisStore
from tests.store_helpers import DAY, delivery, purchase_days

pytestmark = pytest.mark.integration

DIGITS = string.digits + string.ascii_uppercase + string.ascii_lowercase


def base62(day: int) -> str:
    """A day as versions before 2026-11-30 wrote it: 3 base-62 characters."""
    return "".join(DIGITS[day // unit % 62] for unit in (62 * 62, 62, 1))


async def test_purchase_days_in_any_order_count_once_and_stay_in_compact_fields(settings: Settings) -> None:
    """150 purchase days of 2024-2026 (gaps of 1 to 300 days, one of 2,000 to reach 2031), shuffled,
    with repeats: each counts once, the stream holds them ascending at a byte a gap under 128 days,
    every field at most 60 bytes (Redis keeps the hash in its compact encoding) and none is left
    over."""
    store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
    rng = random.Random(5)
    days = [19_723]  # 2024-01-01
    for _ in range(148):
        days.append(days[-1] + rng.choice([1, 2, 7, 30, 130, 300]))
    days.append(days[-1] + 2_000)
    events = days + rng.sample(days, 40)
    rng.shuffle(events)
    key = f"{settings.redis_prefix}seg:{{busy}}"
    try:
        for offset, day in enumerate(events):  # one call each: every insertion point is taken in turn
            await store.apply_batch([delivery(f"p{offset}", "busy", day * DAY + offset, 100, offset)])
        state = await store.get("busy")
        assert state is not None and state.purchase_days == len(days) and state.frequency == len(events)
        stored, fields = await purchase_days(store._redis, key)
        assert stored == days
        gaps = [b - a for a, b in itertools.pairwise(days)]
        assert len(b"".join(fields)) == 3 + sum(1 if g < 128 else 2 for g in gaps)
        assert all(len(f) == 60 for f in fields[:-1]) and 0 < len(fields[-1]) <= 60
        assert await store._redis.object("encoding", key) == "listpack"
    finally:
        await store.close()


async def test_days_written_as_base62_text_by_earlier_versions_are_converted_by_the_next_purchase(
    settings: Settings,
) -> None:
    """A hash of before 2026-11-30 holds its days as text in ``d0``, ``d1``: a purchase on one of those
    days is no new day, one between them is; either way the next purchase moves them into the
    stream and deletes the text fields."""
    store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
    key = f"{settings.redis_prefix}seg:{{early}}"
    old = [10_000 + 3 * k for k in range(25)]  # 20 to a field, as earlier versions wrote them
    codes = "".join(base62(d) for d in old)
    await store._redis.hset(
        key,
        mapping={
            "f": 25,
            "m": 2_500,
            "r": 0,
            "n": 25,
            "a": old[0] * DAY,
            "z": old[-1] * DAY,
            "d0": codes[:60],
            "d1": codes[60:],
        },
    )
    try:
        await store.apply_batch([delivery("same", "early", old[7] * DAY + 5, 100, 0)])
        assert (await store.get("early")).purchase_days == 25  # type: ignore[union-attr]
        assert (await purchase_days(store._redis, key))[0] == old
        assert await store._redis.hexists(key, "d0") == 0 and await store._redis.hexists(key, "d1") == 0
        await store.apply_batch([delivery("between", "early", (old[3] + 1) * DAY, 100, 1)])
        assert (await store.get("early")).purchase_days == 26  # type: ignore[union-attr]
        assert (await purchase_days(store._redis, key))[0] == sorted([*old, old[3] + 1])
    finally:
        await store.close()


async def test_purchase_days_kept_by_earlier_versions_still_count_once(settings: Settings) -> None:
    """Before the days were fields of the state hash, they were a set of their own: still read, so a
    purchase on one of those days is not a new purchase day (the set is never written)."""
    store = RedisStore.from_url(settings.redis_url, settings.redis_prefix)
    key = f"{settings.redis_prefix}seg:{{old}}"
    try:
        await store._redis.sadd(f"{key}:days", 3)  # day 3, as sets held them
        await store._redis.hset(key, mapping={"customer_id": "old", "purchase_days": 1})
        await store.apply_batch(
            [delivery("a", "old", 3 * DAY + 7, 100, 0), delivery("b", "old", 70_000 * DAY, 5, 1)]
        )
        state = await store.get("old")
        assert state is not None and state.purchase_days == 2  # day 3 was known; day 70,000 (year 2161) new
        assert (await purchase_days(store._redis, key))[0] == [70_000]
        assert await store._redis.smembers(f"{key}:days") == {"3"}
    finally:
        await store.close()

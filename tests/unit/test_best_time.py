"""Best time: local hour of week from the event's own offset, counted once, profiles and windows.

Oracles: Python's own ``datetime`` for the local hour of week of an RFC 3339 text; pandas for
the per-customer and per-segment counts over the distinct purchases; numpy for the shrinkage.
The HTTP documents are checked against their JSON Schemas.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from agents.analytics_web import TtlCache, best_time_document, cohorts_document, segments_best_time_document
from agents.ingest import DeadLetter, RawMessage, ingest_batch
from agents.settings import Settings
from segstream.analytics_cli import segment_lines
from state.analytics.analytics_reads import customer_best_time, live_cohorts, segment_hours, segment_windows
from state.analytics.analytics_tallies import cohort_and_best_time_tallier
from state.analytics.best_time import BLOCKS, HOW_TABLE, block_counts, hour_of_week, shrink, top_windows
from state.customer.memory_store import MemoryStore
from state.customer.profile_store import MemoryProfileStore
from state.customer.store import Outcome
from streams.contract import decode_purchase, encode_purchase
from tests.schema_helpers import load_schema, validate, validator_for

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
SEGMENTS = ["Champions", "Lost", "At Risk"]


def stamp(rng: random.Random) -> str:
    """A random RFC 3339 time in a random offset (Z, +hh:mm, -hh:mm)."""
    local = datetime(2024, 1, 1, tzinfo=UTC) + pd.Timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
    hours, minutes = rng.randint(0, 14), rng.choice([0, 30, 45])
    suffix = rng.choice(["Z", f"+{hours:02d}:{minutes:02d}", f"-{hours:02d}:{minutes:02d}"])
    return local.strftime("%Y-%m-%dT%H:%M:%S") + suffix  # the wall time, written in that offset


def test_local_hour_of_week_is_the_one_written_in_the_event() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        text = stamp(rng)
        event = decode_purchase(encode_purchase(event_id="e", customer_id="c", occurred_at=text, amount=1))
        written = datetime.fromisoformat(text)  # the wall time the event was written in
        expected = written.weekday() * 24 + written.hour
        assert hour_of_week(event.occurred_at_ms, event.utc_offset_min) == expected, text


def test_offset_kept_only_when_known() -> None:
    def offset(at: str | int) -> int | None:
        return decode_purchase(
            encode_purchase(event_id="e", customer_id="c", occurred_at=at, amount=1)
        ).utc_offset_min

    assert offset("2024-05-04T09:30:00+09:00") == 540
    assert offset("2024-05-04T09:30:00-03:30") == -210
    assert offset("2024-05-04T09:30:00Z") == 0
    assert offset("2024-05-04T09:30:00-00:00") is None  # RFC 3339: the local offset is unknown
    assert offset(1_714_815_000_000) is None  # epoch ms: UTC


async def _no_dead_letters(letters: Sequence[DeadLetter]) -> None:
    assert not letters


def generated(seed: int, customers: int = 40) -> tuple[pd.DataFrame, list[tuple[str, bytes]]]:
    rng = random.Random(seed)
    rows, messages = [], []
    for c in range(customers):
        favourite = rng.randrange(7 * 24)
        for j in range(rng.randint(1, 12)):
            text = stamp(rng)
            if rng.random() < 0.5:  # habits: half the purchases near a favourite local hour
                day, hour = divmod((favourite + rng.randint(-1, 1)) % 168, 24)
                text = f"2024-01-{1 + day:02d}T{hour:02d}:15:00{text[19:]}"  # 2024-01-01 was a Monday
            kind = "refund" if rng.random() < 0.1 else "purchase"
            amount = -1.0 if kind == "refund" else 9.5
            written = datetime.fromisoformat(text.replace("Z", "+00:00"))
            rows.append((f"c{c:02d}", f"e{c}-{j}", kind, written.weekday() * 24 + written.hour))
            event = encode_purchase(
                event_id=f"e{c}-{j}", customer_id=f"c{c:02d}", occurred_at=text, amount=amount, type=kind
            )
            messages.append((f"c{c:02d}", event))
    return pd.DataFrame(rows, columns=["customer_id", "event_id", "type", "how"]), messages


def fold(messages: Sequence[tuple[str, bytes]], store: MemoryStore) -> list[Outcome]:
    tallier = cohort_and_best_time_tallier(Settings().cohort_split_names)
    raw = [RawMessage("purchases", 0, i, k.encode(), v) for i, (k, v) in enumerate(messages)]
    outcomes: list[Outcome] = []
    for start in range(0, len(raw), 64):
        result = asyncio.run(ingest_batch(raw[start : start + 64], store, _no_dead_letters, tallier=tallier))
        outcomes += result.outcomes
    return outcomes


def folded(seed: int = 3) -> tuple[pd.DataFrame, MemoryStore]:
    history, messages = generated(seed)
    rng = random.Random(seed)
    stream = messages + rng.sample(messages, len(messages) // 4)  # resends
    rng.shuffle(stream)
    store = MemoryStore()
    fold(stream, store)
    assert set(fold(stream, store)) == {Outcome.REDELIVERED}  # the whole stream delivered again
    return history, store


def test_counters_are_the_distinct_purchases_by_local_hour() -> None:
    history, store = folded()
    purchases = history[history["type"] == "purchase"]
    expected = purchases.groupby(["customer_id", "how"]).size()
    live = {
        (c, int(h)): n
        for c, hours in asyncio.run(store.tallies(HOW_TABLE, sorted(history["customer_id"].unique()))).items()
        for h, n in hours.items()
    }
    assert live == {k: int(v) for k, v in expected.items()}


def profiles_with_segments(customers: Sequence[str]) -> MemoryProfileStore:
    """The evaluator's saved rows, each customer in one of three segments (by position)."""
    profiles = MemoryProfileStore()
    rows = [
        {"customer_id": c, "profile": [3, 3, 3, SEGMENTS[i % 3], None, None]} for i, c in enumerate(customers)
    ]
    asyncio.run(profiles.save(0, None, None, rows, {}))
    return profiles


def test_segment_profiles_sum_their_current_members() -> None:
    history, store = folded()
    customers = sorted(history["customer_id"].unique())
    hours = asyncio.run(segment_hours(store, profiles_with_segments(customers[:-5])))  # 5 not evaluated yet
    purchases = history[history["type"] == "purchase"].copy()
    purchases["block"] = purchases["how"] // 3
    segment = {c: SEGMENTS[i % 3] for i, c in enumerate(customers[:-5])}
    purchases["segment"] = purchases["customer_id"].map(segment)
    for name in SEGMENTS:
        expected = purchases[purchases["segment"] == name]["block"].value_counts()
        assert hours.segments[name] == [int(expected.get(b, 0)) for b in range(BLOCKS)]
    everyone = purchases["block"].value_counts()
    assert hours.population == [int(everyone.get(b, 0)) for b in range(BLOCKS)]
    assert hours.buyers == purchases["customer_id"].nunique()


def test_a_customer_is_shrunk_toward_the_segment_toward_everyone() -> None:
    history, store = folded()
    customers = sorted(history["customer_id"].unique())
    hours = asyncio.run(segment_hours(store, profiles_with_segments(customers)))
    k = 5.0
    for customer in customers[:10]:
        found = asyncio.run(customer_best_time(store, hours, customer, k, n=BLOCKS))
        assert found is not None
        own = np.array(block_counts(asyncio.run(store.tally(HOW_TABLE, customer))), dtype=float)
        seg = np.array(hours.segments[found.segment or ""], dtype=float)
        pop = np.array(hours.population, dtype=float) / sum(hours.population)
        seg_share = (seg + k * pop) / (seg.sum() + k)
        blended = (own + k * seg_share) / (own.sum() + k)
        assert [w.share for w in found.windows] == pytest.approx(sorted(blended, reverse=True))
        assert sum(w.share for w in found.windows) == pytest.approx(1.0)
        assert found.purchases == own.sum()


def test_many_purchases_in_one_window_make_it_the_best() -> None:
    store = MemoryStore()
    saturday_morning = [  # 2024-05-04 was a Saturday; 10:30 in Tokyo
        (
            "fan",
            encode_purchase(
                event_id=f"s{i}",
                customer_id="fan",
                occurred_at=f"2024-05-{4 + 7 * i:02d}T10:30:00+09:00",
                amount=5,
            ),
        )
        for i in range(4)
    ]
    fold(
        [
            *saturday_morning,
            (
                "other",
                encode_purchase(
                    event_id="o", customer_id="other", occurred_at="2024-05-06T20:00:00Z", amount=5
                ),
            ),
        ],
        store,
    )
    hours = asyncio.run(segment_hours(store, MemoryProfileStore()))
    fan = asyncio.run(customer_best_time(store, hours, "fan", 5.0))
    assert fan is not None and fan.segment is None and fan.purchases == 4
    assert fan.windows[0].name == "Saturday 09-12"
    assert asyncio.run(customer_best_time(store, hours, "nobody", 5.0)) is None
    document = best_time_document(fan, 5.0)
    validate("http-best-time", document)
    assert document["windows"][0]["customer_share"] == 1.0


def test_top_windows_break_ties_by_population_then_time() -> None:
    shares = [1 / BLOCKS] * BLOCKS
    population = [0.0] * BLOCKS
    population[30] = 1.0
    assert [w.block for w in top_windows(shares, population, 3)] == [30, 0, 1]


def test_shrink_without_purchases_or_weight_is_the_prior() -> None:
    prior = [1 / BLOCKS] * BLOCKS
    assert shrink([0] * BLOCKS, prior, 0) == prior


def test_documents_match_their_schemas() -> None:
    history, store = folded()
    customers = sorted(history["customer_id"].unique())
    hours = asyncio.run(segment_hours(store, profiles_with_segments(customers)))
    validate("http-best-time-segments", segments_best_time_document(hours))
    for customer in customers[:5]:
        found = asyncio.run(customer_best_time(store, hours, customer, 5.0))
        assert found is not None
        validate("http-best-time", best_time_document(found, 5.0))
    for by in (None, "channel", "category"):
        rows = asyncio.run(live_cohorts(store, by))  # type: ignore[arg-type]
        validate("http-cohorts", cohorts_document(rows, by, 1_714_815_000_000))
    empty = cohorts_document([], None, None)
    validate("http-cohorts", empty)
    bad = best_time_document(found, 5.0) | {"extra": 1}
    with pytest.raises(Exception, match="Additional properties"):
        validate("http-best-time", bad)
    for name in ("http-cohorts", "http-best-time", "http-best-time-segments"):
        assert load_schema(name)["$id"] == f"{name}.schema.json" and validator_for(name)


def test_cache_keeps_a_result_for_its_ttl() -> None:
    now = [0.0]
    cache = TtlCache(30, clock=lambda: now[0])
    calls: list[int] = []

    async def compute() -> int:
        calls.append(1)
        return len(calls)

    async def scenario() -> list[int]:
        first = await cache.get("k", compute)
        now[0] = 29.0
        second = await cache.get("k", compute)
        now[0] = 30.5
        third = await cache.get("k", compute)
        return [first, second, third]

    assert asyncio.run(scenario()) == [1, 1, 2]


def test_segment_windows_are_the_busiest_blocks_of_their_members() -> None:
    history, store = folded()
    customers = sorted(history["customer_id"].unique())
    hours = asyncio.run(segment_hours(store, profiles_with_segments(customers)))
    everyone, segments = segment_windows(hours, 3)
    purchases = history[history["type"] == "purchase"].assign(block=lambda f: f["how"] // 3)
    purchases["segment"] = purchases["customer_id"].map({c: SEGMENTS[i % 3] for i, c in enumerate(customers)})

    def busiest(frame: pd.DataFrame) -> list[int]:
        counts = frame["block"].value_counts()
        return sorted(counts.index, key=lambda b: (-counts[b], b))[:3]

    assert [w.block for w in everyone] == busiest(purchases)
    for name in SEGMENTS:
        counts = purchases[purchases["segment"] == name]["block"].value_counts()
        assert (
            sorted(counts[[w.block for w in segments[name]]], reverse=True)
            == sorted(counts, reverse=True)[:3]
        )
    lines = segment_lines(hours, 3)
    assert lines[0].startswith(f"everyone ({hours.buyers:,} buyers") and everyone[0].name in lines[0]
    assert len(lines) == 1 + len(SEGMENTS)

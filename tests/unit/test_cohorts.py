"""Cohorts: the worker's counters, folded exactly once, give the pandas table cell for cell.

Events go through the worker's own ingest step (``agents.ingest.ingest_batch``) into the
reference store (:class:`state.customer.memory_store.MemoryStore`, the Redis store's twin) with the worker's
talliers; the table is read the way the CLI reads it (``live_cohorts`` + ``cohort_frame``)
and compared with an independent pandas computation over the distinct events
(``segstream.cohort_oracle``), itself checked on a case worked out by hand.
"""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.ingest import DeadLetter, RawMessage, ingest_batch
from agents.settings import Settings
from segstream.analytics_cli import cohort_frame
from segstream.cohort_oracle import cohort_mismatches, oracle_cohorts
from segstream.sources import load_cdnow, wire_events
from state.analytics.analytics_reads import live_cohorts
from state.analytics.analytics_tallies import cohort_and_best_time_tallier
from state.analytics.cohorts import acquisition_groups, cohort_rows, month_of
from state.customer.memory_store import MemoryStore
from state.customer.store import Outcome
from streams.contract import encode_purchase

START = pd.Timestamp("1997-01-01T00:00:00Z")
CHANNELS = ["web", "store", "app", None]
CATEGORIES = ["tea", "cake", "jam", None]


async def _no_dead_letters(letters: Sequence[DeadLetter]) -> None:
    assert not letters, letters


def fold(
    messages: Sequence[tuple[str, bytes]], store: MemoryStore, batch: int = 50, first_offset: int = 0
) -> list[Outcome]:
    """Feed ``(key, value)`` messages at offsets ``first_offset``.. of one partition through the worker's ingest step."""
    tallier = cohort_and_best_time_tallier(Settings().cohort_split_names)
    raw = [RawMessage("purchases", 0, first_offset + i, k.encode(), v) for i, (k, v) in enumerate(messages)]
    return redeliver(raw, store, tallier, batch)


def redeliver(raw: Sequence[RawMessage], store: MemoryStore, tallier: Any, batch: int = 50) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for start in range(0, len(raw), batch):
        chunk = raw[start : start + batch]
        result = asyncio.run(ingest_batch(chunk, store, _no_dead_letters, tallier=tallier))
        outcomes += result.outcomes
    return outcomes


def live_frame(store: MemoryStore, by: str | None) -> pd.DataFrame:
    """The table as ``segstream cohorts --format csv`` writes it, read back from its CSV text."""
    rows = asyncio.run(live_cohorts(store, by))  # type: ignore[arg-type]
    text = cohort_frame(rows, by).to_csv(index=False)
    return pd.read_csv(io.StringIO(text), dtype={"cohort": str, by or "cohort": str})


def generated(seed: int, customers: int = 80) -> tuple[pd.DataFrame, list[tuple[str, bytes]]]:
    """A history with refunds, zero amounts, channels, categories and UTC offsets, and its wire messages."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    messages: list[tuple[str, bytes]] = []
    for c in range(customers):
        for j in range(rng.randint(1, 7)):
            at = START + pd.Timedelta(minutes=rng.randrange(0, 420 * 24 * 60))
            refund = rng.random() < 0.12
            amount = (
                -round(rng.uniform(0, 40), 2) if refund else round(rng.choice([0, rng.uniform(1, 150)]), 2)
            )
            channel = rng.choice(CHANNELS)
            items = [
                {
                    "sku": f"s{rng.randrange(9)}",
                    "quantity": rng.randint(1, 3),
                    "unit_price": rng.choice([1.5, 2.0, 4.25]),
                }
                | ({"category": cat} if (cat := rng.choice(CATEGORIES)) else {})
                for _ in range(rng.randint(0, 4))
            ]
            row = {
                "event_id": f"g{c}-{j}",
                "customer_id": f"c{c:03d}",
                "occurred_at": at,
                "amount": amount,
                "type": "refund" if refund else "purchase",
                "channel": channel,
                "items": items or None,
            }
            rows.append(row)
            offset = rng.choice([0, 60, -300, 330, 540])  # the same instant written in some UTC offset
            local = (at + pd.Timedelta(minutes=offset)).strftime("%Y-%m-%dT%H:%M:%S")
            sign = "+" if offset >= 0 else "-"
            stamp = local + (f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}" if offset else "Z")
            wire = {k: v for k, v in row.items() if v is not None and k != "occurred_at"}
            messages.append((row["customer_id"], encode_purchase(**wire, occurred_at=stamp)))
    return pd.DataFrame(rows), messages


@pytest.mark.parametrize("by", [None, "channel", "category"])
def test_shuffled_stream_with_resends_and_a_redelivery_equals_pandas(by: str | None) -> None:
    history, messages = generated(seed=7)
    rng = random.Random(1)
    resends = rng.sample(messages, len(messages) // 5)  # same event_id, new offset
    stream = messages + resends
    rng.shuffle(stream)
    store = MemoryStore()
    outcomes = fold(stream, store)
    assert outcomes.count(Outcome.DUPLICATE) == len(resends)
    before = {k: dict(v) for k, v in store.counters.items()}

    tallier = cohort_and_best_time_tallier(Settings().cohort_split_names)
    again = [RawMessage("purchases", 0, i, k.encode(), v) for i, (k, v) in enumerate(stream)]
    assert set(redeliver(again[len(again) // 3 :], store, tallier)) == {Outcome.REDELIVERED}
    assert store.counters == before, "a redelivery changed a counter"

    expected = oracle_cohorts(history, by)
    live = live_frame(store, by)
    assert len(expected) > 50 and expected["revenue_cents"].lt(0).any()  # refunds made some cells negative
    if by:
        assert expected[by].nunique() >= 3
    assert cohort_mismatches(live, expected, by) == []


def test_a_late_first_purchase_moves_the_customer_to_its_cohort() -> None:
    history, messages = generated(seed=3, customers=30)
    late = pd.DataFrame(
        [
            {
                "event_id": "late-2",
                "customer_id": "late",
                "occurred_at": START + pd.Timedelta(days=200),
                "amount": 5.0,
                "type": "purchase",
            },
            {
                "event_id": "late-1",
                "customer_id": "late",
                "occurred_at": START + pd.Timedelta(days=3),
                "amount": 7.0,
                "type": "purchase",
            },
        ]
    )
    store = MemoryStore()
    fold([*messages, ("late", encode_purchase(**_wire(late.iloc[0])))], store)
    july = live_frame(store, None)
    joined = oracle_cohorts(pd.concat([history, late.iloc[:1]]), None)
    assert cohort_mismatches(july, joined, None) == []

    late_first = ("late", encode_purchase(**_wire(late.iloc[1])))  # the first purchase, arriving last
    assert fold([late_first], store, first_offset=len(messages) + 1) == [Outcome.APPLIED]
    full = pd.concat([history, late])
    moved = live_frame(store, None)
    assert cohort_mismatches(moved, oracle_cohorts(full, None), None) == []
    january_size = int(moved[moved["cohort"] == "1997-01"]["customers"].iloc[0])
    assert january_size == int(july[july["cohort"] == "1997-01"]["customers"].iloc[0]) + 1


def _wire(row: pd.Series) -> dict[str, Any]:
    return {
        "event_id": row["event_id"],
        "customer_id": row["customer_id"],
        "occurred_at": row["occurred_at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "amount": float(row["amount"]),
        "type": row["type"],
    }


def test_oracle_on_a_case_worked_by_hand() -> None:
    t = pd.Timestamp
    history = pd.DataFrame(
        [  # a: Jan 10 + Jan 20 + Mar; b: Feb, refund in Mar; r: a refund only; a resent row counts once
            ("a1", "a", t("1997-01-10T12:00Z"), 10.00, "purchase", "web"),
            ("a2", "a", t("1997-01-20T12:00Z"), 5.50, "purchase", "store"),
            ("a2", "a", t("1997-01-20T12:00Z"), 5.50, "purchase", "store"),
            ("a3", "a", t("1997-03-02T00:00Z"), 1.25, "purchase", None),
            ("b1", "b", t("1997-02-28T23:59Z"), 20.00, "purchase", "store"),
            ("b2", "b", t("1997-03-05T00:00Z"), -20.00, "refund", None),
            ("r1", "r", t("1997-04-01T00:00Z"), -3.00, "refund", None),
        ],
        columns=["event_id", "customer_id", "occurred_at", "amount", "type", "channel"],
    )
    table = oracle_cohorts(history)
    cells = [
        tuple(r)
        for r in table[["cohort", "period", "customers", "active", "revenue_cents"]].itertuples(index=False)
    ]
    assert cells == [
        ("1997-01", 0, 1, 1, 1550),
        ("1997-01", 1, 1, 0, 0),
        ("1997-01", 2, 1, 1, 125),
        ("1997-02", 0, 1, 1, 2000),
        ("1997-02", 1, 1, 0, -2000),
    ]
    by_channel = oracle_cohorts(history, "channel")
    assert set(zip(by_channel["channel"], by_channel["cohort"], strict=True)) == {
        ("store", "1997-01"),
        ("store", "1997-02"),
    }
    # a's January: one web, one store purchase: the tie goes to the alphabetically first, 'store'


def test_acquisition_group_ties_and_customers_without_a_value() -> None:
    orders = {"a": {"1997-01": 2}, "b": {"1997-02": 1, "1997-03": 4}, "r": {}}
    counters = {"a": {"1997-01 web": 1, "1997-01 app": 1}, "b": {"1997-03 web": 4}}
    assert acquisition_groups(orders, counters) == {"a": "app", "b": "(none)"}


def test_no_buyers_no_rows() -> None:
    assert cohort_rows({"r": {}}, {"r": {"1997-01": -100}}) == []
    assert oracle_cohorts(
        pd.DataFrame(
            [("r1", "r", START, -1.0, "refund")],
            columns=["event_id", "customer_id", "occurred_at", "amount", "type"],
        )
    ).empty


def test_cdnow_sample_through_the_worker_step_equals_pandas() -> None:
    history = load_cdnow(sample=True)
    messages = list(wire_events(history))
    random.Random(5).shuffle(messages)
    store = MemoryStore()
    fold(messages, store, batch=1000)
    assert cohort_mismatches(live_frame(store, None), oracle_cohorts(history), None) == []


@given(st.integers(min_value=-(10**12), max_value=4_102_444_800_000))  # 1938 .. 2100
def test_month_of_is_the_calendar_month_of_the_instant(occurred_at_ms: int) -> None:
    """The cached day-number path agrees with formatting the instant itself, either side of 1970."""
    expected = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=occurred_at_ms)).strftime("%Y-%m")
    assert month_of(occurred_at_ms) == expected

"""The pure RFM fold: single-step facts, and order-insensitivity on real CDNOW data vs the pandas oracle."""

from __future__ import annotations

import random
from functools import reduce

import pandas as pd
import pytest

from segstream.batch import rfm_table
from segstream.sources import load_cdnow, wire_events
from state.customer.rfm import DAY_MS, CustomerState, apply, purchase_day, recency_days
from streams.contract import Purchase, decode_purchase

EPOCH = pd.Timestamp(0, tz="UTC")


def buy(at_ms: int, cents: int, event_id: str = "e", customer: str = "c1") -> Purchase:
    return Purchase(event_id, customer, occurred_at_ms=at_ms, amount_cents=cents)


def refund(at_ms: int, cents: int, event_id: str = "r", customer: str = "c1") -> Purchase:
    return Purchase(event_id, customer, occurred_at_ms=at_ms, amount_cents=cents, type="refund")


def fold(events: list[Purchase]) -> dict[str, CustomerState]:
    """Fold like a store does: it remembers each customer's purchase days."""
    states: dict[str, CustomerState] = {}
    days: set[tuple[str, int]] = set()
    for event in events:
        day = (event.customer_id, purchase_day(event.occurred_at_ms))
        new_day = event.type == "purchase" and day not in days
        if new_day:
            days.add(day)
        states[event.customer_id] = apply(states.get(event.customer_id), event, new_purchase_day=new_day)
    return states


def step(state: CustomerState | None, event: Purchase) -> CustomerState:
    """One fold step on distinct days (the single-step tests use one purchase per day)."""
    return apply(state, event, new_purchase_day=event.type == "purchase")


def millis(ts: pd.Timestamp) -> int:
    return int((ts - EPOCH) // pd.Timedelta(milliseconds=1))


# --------------------------------------------------------------------------- single steps


def test_first_purchase_creates_the_state() -> None:
    state = step(None, buy(5 * DAY_MS, 1234))
    assert state == CustomerState(
        "c1",
        frequency=1,
        monetary_cents=1234,
        refunds=0,
        first_purchase_ms=5 * DAY_MS,
        last_purchase_ms=5 * DAY_MS,
        purchase_days=1,
    )


def test_purchases_widen_first_and_last_and_sum_money() -> None:
    state = reduce(step, [buy(5 * DAY_MS, 100), buy(2 * DAY_MS, 200), buy(9 * DAY_MS, 0)], None)
    assert state is not None
    assert (state.frequency, state.monetary_cents) == (3, 300)
    assert (state.first_purchase_ms, state.last_purchase_ms) == (2 * DAY_MS, 9 * DAY_MS)


def test_refund_lowers_money_and_leaves_frequency_and_dates() -> None:
    before = step(None, buy(5 * DAY_MS, 1000))
    after = step(before, refund(99 * DAY_MS, -300))
    assert (after.frequency, after.monetary_cents, after.refunds) == (1, 700, 1)
    assert (after.first_purchase_ms, after.last_purchase_ms) == (5 * DAY_MS, 5 * DAY_MS)


def test_refund_only_customer_has_no_purchase_dates_and_no_recency() -> None:
    state = step(None, refund(DAY_MS, -500))
    assert (state.frequency, state.monetary_cents, state.refunds) == (0, -500, 1)
    assert state.first_purchase_ms is None and state.last_purchase_ms is None
    assert recency_days(state, as_of_ms=10 * DAY_MS) is None


def test_apply_returns_a_new_state_and_leaves_the_old_one() -> None:
    before = step(None, buy(0, 100))
    after = step(before, buy(DAY_MS, 100))
    assert before.frequency == 1 and after.frequency == 2
    with pytest.raises(AttributeError):
        before.frequency = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("as_of_ms", "days"),
    [(10 * DAY_MS, 0), (11 * DAY_MS - 1, 0), (11 * DAY_MS, 1), (40 * DAY_MS + 1, 30)],
)
def test_recency_is_whole_days_rounded_down(as_of_ms: int, days: int) -> None:
    state = step(None, buy(10 * DAY_MS, 100))
    assert recency_days(state, as_of_ms) == days


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def cdnow_sample() -> pd.DataFrame:
    return load_cdnow(sample=True)


@pytest.fixture(scope="module")
def cdnow_events(cdnow_sample: pd.DataFrame) -> list[Purchase]:
    return [decode_purchase(value) for _, value in wire_events(cdnow_sample)]


def test_fold_is_order_insensitive_on_cdnow(cdnow_events: list[Purchase]) -> None:
    results = []
    for seed in (1, 2, 3):
        shuffled = list(cdnow_events)
        random.Random(seed).shuffle(shuffled)
        assert shuffled != cdnow_events  # the orders really differ
        results.append(fold(shuffled))
    assert len(results[0]) == 2357
    assert results[0] == results[1] == results[2] == fold(cdnow_events)


def test_fold_matches_the_pandas_oracle_on_cdnow(
    cdnow_sample: pd.DataFrame, cdnow_events: list[Purchase]
) -> None:
    shuffled = list(cdnow_events)
    random.Random(7).shuffle(shuffled)
    states = fold(shuffled)
    table = rfm_table(cdnow_sample)
    as_of_ms = millis(cdnow_sample["occurred_at"].max())
    expected = {
        row.customer_id: (
            int(row.frequency),
            int(row.purchase_days),
            int(row.monetary_cents),
            int(row.refunds),
            millis(row.first_purchase_at),
            millis(row.last_purchase_at),
            int(row.recency_days),
        )
        for row in table.itertuples(index=False)
    }
    got = {
        c: (
            s.frequency,
            s.purchase_days,
            s.monetary_cents,
            s.refunds,
            s.first_purchase_ms,
            s.last_purchase_ms,
            recency_days(s, as_of_ms),
        )
        for c, s in states.items()
    }
    assert len(expected) == 2357
    assert got == expected


def test_fold_matches_the_oracle_with_refunds_and_zero_amounts() -> None:
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    history = pd.DataFrame(
        {
            "event_id": ["a1", "a2", "a3", "b1", "b2"],
            "customer_id": ["a", "a", "a", "b", "b"],
            "occurred_at": [t0 + pd.Timedelta(days=d) for d in (3, 1, 9, 2, 5)],
            "amount": [10.10, 0.0, -4.05, -7.77, 0.0],
            "type": ["purchase", "purchase", "refund", "refund", "refund"],
        }
    )
    events = [decode_purchase(value) for _, value in wire_events(history)]
    states = fold(list(reversed(events)))
    table = rfm_table(history).set_index("customer_id")
    a, b = states["a"], states["b"]
    assert (
        (a.frequency, a.monetary_cents, a.refunds)
        == (2, 605, 1)
        == tuple(table.loc["a", ["frequency", "monetary_cents", "refunds"]])
    )
    assert (a.first_purchase_ms, a.last_purchase_ms) == (
        millis(table.loc["a", "first_purchase_at"]),
        millis(table.loc["a", "last_purchase_at"]),
    )
    assert (b.frequency, b.monetary_cents, b.refunds, b.last_purchase_ms) == (0, -777, 2, None)
    assert pd.isna(table.loc["b", "last_purchase_at"]) and pd.isna(table.loc["b", "recency_days"])

"""The summary's running sums against a pandas groupby over the rows, through every kind of write."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from state.customer.profiles import Profile
from state.customer.rfm import DAY_MS, CustomerState
from state.segments.population import Population, summarize
from tests.summary_oracle import ROW_COLUMNS, assert_same_groups, population_rows, same_recency

SEGMENTS = ["Champions", "Loyal", "Lost"]  # "Hibernating" profiles are outside the preset's list
CLUSTERS = {0: "steady", 1: "cooling", 3: "new"}  # cluster 2 exists in profiles but is not named
AS_OF = 400 * DAY_MS
CUSTOMERS = [f"c{i}" for i in range(8)]

states = st.builds(
    dict,
    frequency=st.integers(0, 40),
    monetary_cents=st.integers(-50_000, 500_000),
    refunds=st.integers(0, 3),
    first_ms=st.integers(0, 100 * DAY_MS),
    last_ms=st.one_of(st.integers(0, AS_OF), st.sampled_from([0, DAY_MS // 2, 7 * DAY_MS, AS_OF])),
)
profiles = st.tuples(st.sampled_from([*SEGMENTS, "Hibernating"]), st.sampled_from([None, 0, 1, 2, 3]))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.sampled_from(CUSTOMERS), states),
        st.tuples(st.just("profile"), st.sampled_from(CUSTOMERS), profiles),
        st.tuples(st.just("record"), st.sampled_from(CUSTOMERS), states),  # load_record over a live row
        st.tuples(st.just("reload"), st.just(""), st.just(None)),  # a fresh population from records
    ),
    max_size=60,
)


def customer_state(customer: str, s: dict[str, int]) -> CustomerState:
    return CustomerState(
        customer,
        frequency=s["frequency"],
        monetary_cents=s["monetary_cents"],
        refunds=s["refunds"],
        first_purchase_ms=s["first_ms"],
        last_purchase_ms=s["last_ms"],
    )


def truth_rows(truth: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The profiled customers as the test itself recorded them (not read back from the population)."""
    rows = [
        [
            t["profile"][0],
            -1 if t["profile"][1] is None else t["profile"][1],
            t["last_ms"],
            t["frequency"],
            t["money"],
        ]
        for t in truth.values()
        if t["profile"] is not None
    ]
    return pd.DataFrame(rows, columns=ROW_COLUMNS).astype({c: "int64" for c in ROW_COLUMNS[1:]})


def reload(pop: Population) -> Population:
    fresh = Population()
    for row in range(len(pop)):
        fresh.load_record(pop.record(row))
    return fresh


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_running_sums_equal_a_pandas_groupby_over_the_rows(ops: list[tuple[str, str, Any]]) -> None:
    pop = Population()
    truth: dict[str, dict[str, Any]] = {}
    for kind, customer, arg in ops:
        if kind == "upsert":
            pop.upsert(customer_state(customer, arg))
            truth.setdefault(customer, {"profile": None}).update(
                last_ms=arg["last_ms"], frequency=arg["frequency"], money=arg["monetary_cents"]
            )
        elif kind == "profile" and customer in truth:
            segment, cluster = arg
            name = None if cluster is None else CLUSTERS.get(cluster, "unnamed")
            pop.set_profile(pop.index[customer], Profile(3, 2, 1, segment, cluster, name), since_ms=5)
            truth[customer]["profile"] = arg
        elif kind == "record" and customer in truth:
            record = pop.record(pop.index[customer])
            record.update(arg)
            pop.load_record(record)
            truth[customer].update(
                last_ms=arg["last_ms"], frequency=arg["frequency"], money=arg["monetary_cents"]
            )
        elif kind == "reload":
            pop = reload(pop)
    assert_same_groups(summarize(pop, AS_OF, SEGMENTS, CLUSTERS), truth_rows(truth), AS_OF, CLUSTERS)


def test_a_reloaded_population_has_the_same_summary_and_an_empty_one_has_no_means() -> None:
    pop = Population()
    empty = summarize(pop, AS_OF, SEGMENTS, CLUSTERS)
    assert empty["customers"] == 0
    assert {g["mean_recency_days"] for g in empty["segments"] + empty["clusters"]} == {None}
    for i, customer in enumerate(CUSTOMERS):
        row, _ = pop.upsert(
            CustomerState(customer, frequency=i + 1, monetary_cents=100 * i, last_purchase_ms=i)
        )
        pop.set_profile(row, Profile(1, 1, 1, SEGMENTS[i % 3], i % 2, CLUSTERS.get(i % 2)), since_ms=0)
    assert summarize(reload(pop), AS_OF, SEGMENTS, CLUSTERS) == summarize(pop, AS_OF, SEGMENTS, CLUSTERS)


@pytest.mark.parametrize("name", ["frequency", "monetary_cents", "last_ms", "cluster"])
def test_the_summed_columns_cannot_be_written_past_the_sums(name: str) -> None:
    pop = Population()
    pop.upsert(CustomerState("c1", frequency=1, monetary_cents=5, last_purchase_ms=1))
    with pytest.raises(ValueError, match="read-only"):
        pop.column(name)[0] = 7
    pop.column("band")[0] = 2  # the other columns stay writable views
    assert pop.column("band").tolist() == [2] and np.shares_memory(pop.column("band"), pop.column("band"))


def test_recency_differs_from_a_row_by_row_mean_only_on_a_half_unit() -> None:
    """Two recencies whose exact mean is 192.175 days: the document divides the exact integer sum
    once (192.18); pandas averages the two rows' rounded floats (192.17499999999998, so 192.17).
    Off such ties the two agree (the hypothesis test above asks for equality there)."""
    pop = Population()
    for customer, days_ms in (("a", 8_832_482_746), ("b", 24_375_357_254)):
        row, _ = pop.upsert(
            CustomerState(customer, frequency=1, monetary_cents=1, last_purchase_ms=AS_OF - days_ms)
        )
        pop.set_profile(row, Profile(1, 1, 1, "Lost", None, None), since_ms=0)
    assert 192_175 * 2 * DAY_MS == (8_832_482_746 + 24_375_357_254) * 1000  # exactly on the half unit
    lost = summarize(pop, AS_OF, SEGMENTS, {})["segments"][2]
    by_rows = float(population_rows(pop).assign(d=lambda f: (AS_OF - f["last_ms"]) / DAY_MS)["d"].mean())
    assert (lost["mean_recency_days"], round(by_rows, 2)) == (192.18, 192.17)
    assert same_recency(lost["mean_recency_days"], by_rows)

"""The view hash's packed rows (state.adapters.view_rows) against the JSON they replace."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from state.adapters.view_rows import FIELDS, decode_row, encode_row
from state.customer.profiles import Profile
from state.customer.rfm import CustomerState
from state.segments.population import NO_TIME, Population

int64 = st.integers(-(2**63), 2**63 - 1)
profiles = st.none() | st.builds(
    lambda r, f, m, name, cluster, cname: [r, f, m, name, cluster, cname],
    st.integers(1, 5),
    st.integers(1, 5),
    st.integers(1, 5),
    st.text(max_size=40),
    st.none() | st.integers(0, 20),
    st.none() | st.text(max_size=60),
)
rows = st.fixed_dictionaries(
    {
        **{name: int64 for name in FIELDS},
        "customer_id": st.text(min_size=1, max_size=200),
        "profile": profiles,
    }
)


@settings(max_examples=300, deadline=None)
@given(rows)
def test_a_row_reads_back_as_its_json_would(record: dict[str, object]) -> None:
    packed = encode_row(record)
    assert packed[:1] != b"{"
    assert decode_row(str(record["customer_id"]), packed) == json.loads(json.dumps(record))


def test_rows_of_a_real_population_pack_to_a_third_of_their_json() -> None:
    pop = Population()
    pop.upsert(CustomerState("c1", 3, 12_345, 1, 86_400_000, 5 * 86_400_000, 2))
    pop.upsert(CustomerState("c2", 0, -500, 1))  # refunds only: no purchase times
    pop.set_profile(0, Profile(4, 3, 5, "Loyal Customers", 2, "Cooling high-value frequent buyers"), 7)
    for row, customer in enumerate(("c1", "c2")):
        record = pop.record(row)
        packed = encode_row(record)
        assert decode_row(customer, packed) == record
        assert len(packed) * 3 < len(json.dumps(record).encode())
    assert pop.record(1)["first_ms"] == NO_TIME


def test_other_shapes_and_rows_written_as_json_by_earlier_versions_still_read() -> None:
    partial = {
        "row": 1,
        "customer_id": "c:2",
        "frequency": 1,
        "profile": [5, 1, 1, "New Customers", None, None],
    }
    assert encode_row(partial) == json.dumps(partial).encode()
    assert decode_row("c:2", json.dumps(partial).encode()) == partial

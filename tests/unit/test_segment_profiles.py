"""Segment profiles: the math against pandas on a generated population, and the tallier that feeds it.

- ``segment_profiles`` on 400 generated customers (segments, clusters, churn bands, category and
  channel counts, traits for some, exposures for some) against the same figures computed with
  pandas group-bys; the result matches the ``GET /segments`` schema.
- ``mix_tallier`` through ``ingest_batch`` on the memory store: categories from the items or
  the catalogue as it stood at the fold (a later update labels only what follows), channels,
  and resends never counted twice.
- The exposures outside the control arm are read from the evaluator's saved snapshot.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import random
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import jsonschema
import msgspec
import pandas as pd
import pytest

from agents.ingest import DeadLetter, RawMessage, ingest_batch
from agents.segment_profiles import _exposures, profile_lines
from state.analytics.catalogue import Keyed, MemoryCatalogue
from state.analytics.profile_tallies import CATEGORY_TABLE, CHANNEL_TABLE, mix_tallier
from state.analytics.segment_profiles import TRAIT_FIELDS, segment_profiles
from state.customer.memory_store import MemoryStore
from streams.catalogue_contract import Product, Traits
from streams.contract import encode_purchase
from tests.schema_helpers import load_schema

SEGMENTS = ["Champions", "Loyal", "Lost", "Nobody"]
CLUSTERS = {0: "zero", 1: "one", 2: "two", 7: "empty"}
CATEGORIES = [f"cat{i}" for i in range(12)]
CHANNELS = ["web", "store", "app", "unknown"]
VALUES = {
    "age_band": ["19-24", "25-34", "45-54", None],
    "income_band": ["Under 15K", "50-74K", None],
    "household_size": ["1", "2", "5+"],
    "household_composition": ["1 Adult No Kids", "2 Adults Kids", None],
}


def _population(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    records, categories, channels, traits, exposures = [], {}, {}, {}, []
    for i in range(400):
        c = f"c{i}"
        profiled = rng.random() > 0.05
        segment = rng.choice(SEGMENTS[:3])
        cluster = rng.choice([None, 0, 1, 2])
        profile = [3, 3, 3, segment, cluster, None if cluster is None else CLUSTERS[cluster]]
        records.append(
            {"customer_id": c, "profile": profile if profiled else None, "band": rng.choice([0, 1, 2, 3])}
        )
        categories[c] = {k: rng.randint(0, 4) for k in rng.sample(CATEGORIES, rng.randint(0, 6))}
        channels[c] = {k: rng.randint(1, 5) for k in rng.sample(CHANNELS, rng.randint(0, 3))}
        if rng.random() < 0.6:
            traits[c] = Traits(c, *(rng.choice(VALUES[f]) for f in TRAIT_FIELDS))
        exposures += [(c, rng.random() < 0.3) for _ in range(rng.choice([0, 0, 1, 2]))]
    return {
        "records": records,
        "categories": categories,
        "channels": channels,
        "traits": traits,
        "exposures": exposures,
    }


def _members(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [r for r in records if r["profile"]]
    return pd.DataFrame(
        {
            "customer": [r["customer_id"] for r in rows],
            "segment": [r["profile"][3] for r in rows],
            "cluster": pd.array([r["profile"][4] for r in rows], dtype="Int64"),
            "band": [r["band"] for r in rows],
        }
    )


def _oracle(group: pd.DataFrame, members: pd.DataFrame, data: dict[str, Any], top: int) -> dict[str, Any]:
    """One group's profile with pandas."""
    bought = pd.DataFrame(
        [(c, k) for c, counts in data["categories"].items() for k, n in counts.items() if n > 0],
        columns=["customer", "category"],
    )
    in_group = bought[bought["customer"].isin(group["customer"])]
    share = in_group.groupby("category")["customer"].nunique() / len(group)
    everyone = bought[bought["customer"].isin(members["customer"])].groupby("category")["customer"].nunique()
    lift = share / (everyone / len(members))
    ranked = pd.DataFrame({"share": share, "lift": lift}).reset_index()
    ranked = ranked.sort_values(["share", "category"], ascending=[False, True]).head(top)
    used = pd.DataFrame(
        [(c, k, n) for c, counts in data["channels"].items() for k, n in counts.items()],
        columns=["customer", "channel", "n"],
    )
    used = used[used["customer"].isin(group["customer"])].groupby("channel")["n"].sum()
    known = group[group["customer"].isin(list(data["traits"]))]
    traits = None
    if len(known):
        table = pd.DataFrame([vars_of(data["traits"][c]) for c in known["customer"]]).fillna("unknown")
        traits = {
            "customers": len(known),
            **{f: table[f].value_counts(normalize=True).to_dict() for f in TRAIT_FIELDS},
        }
    seen = pd.DataFrame(data["exposures"], columns=["customer", "responded"])
    seen = seen[seen["customer"].isin(group["customer"])]
    banded = group[group["band"] > 0]
    return {
        "customers": len(group),
        "top_categories": ranked.to_dict("records"),
        "channel_mix": (used / used.sum()).to_dict() if used.sum() else {},
        "traits": traits,
        "response": (len(seen), int(seen["responded"].sum())),
        "churn_share": float((banded["band"] == 3).mean()) if len(banded) else None,
    }


def vars_of(t: Traits) -> dict[str, str | None]:
    return {f: getattr(t, f) for f in TRAIT_FIELDS}


def _assert_close(found: dict[str, Any], expected: dict[str, Any]) -> None:
    assert found["customers"] == expected["customers"]
    assert [c["category"] for c in found["top_categories"]] == [
        c["category"] for c in expected["top_categories"]
    ]
    for ours, theirs in zip(found["top_categories"], expected["top_categories"], strict=True):
        assert ours["share"] == pytest.approx(theirs["share"], abs=1e-4)
        assert ours["lift"] == pytest.approx(theirs["lift"], abs=1e-3)
    assert found["channel_mix"] == pytest.approx(expected["channel_mix"], abs=1e-4)
    assert list(found["channel_mix"].values()) == sorted(found["channel_mix"].values(), reverse=True)
    if expected["traits"] is None:
        assert found["traits"] is None
    else:
        assert found["traits"]["customers"] == expected["traits"]["customers"]
        for f in TRAIT_FIELDS:
            assert found["traits"][f] == pytest.approx(expected["traits"][f], abs=1e-4)
    exposures, responses = expected["response"]
    assert (found["response"]["exposures"], found["response"]["responses"]) == (exposures, responses)
    assert found["response"]["rate"] == (
        pytest.approx(responses / exposures, abs=1e-4) if exposures else None
    )
    assert found["churn_share"] == (
        None if expected["churn_share"] is None else pytest.approx(expected["churn_share"], abs=1e-4)
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_profiles_match_pandas(seed: int) -> None:
    data = _population(seed)
    found = segment_profiles(
        data["records"],
        SEGMENTS,
        CLUSTERS,
        data["categories"],
        data["channels"],
        data["traits"],
        data["exposures"],
        top=4,
    )
    members = _members(data["records"])
    _assert_close(found["population"], _oracle(members, members, data, 4))
    assert [s["segment"] for s in found["segments"]] == SEGMENTS[:3]  # "Nobody" has no members
    for row in found["segments"]:
        _assert_close(row, _oracle(members[members["segment"] == row["segment"]], members, data, 4))
    assert [(c["cluster"], c["name"]) for c in found["clusters"]] == [(0, "zero"), (1, "one"), (2, "two")]
    for row in found["clusters"]:
        _assert_close(row, _oracle(members[members["cluster"] == row["cluster"]], members, data, 4))
    schema = load_schema("http-segments")
    jsonschema.validate(
        {"as_of": "2026-11-29T00:00:00.000Z", **json.loads(json.dumps(found))},
        {"$ref": "#/$defs/segmentProfiles", "$defs": schema["$defs"]},
    )
    assert any("lift" in line for line in profile_lines({"as_of": "2026-11-29T00:00:00.000Z", **found}))


def test_no_members_no_profiles() -> None:
    empty = segment_profiles([{"customer_id": "a", "profile": None, "band": 0}], SEGMENTS, {}, {}, {}, {}, [])
    assert empty == {"top": 5, "population": None, "segments": [], "clusters": []}


def test_exposures_come_from_the_snapshot_without_the_control_arm() -> None:
    exposure = SimpleNamespace
    book = SimpleNamespace(
        exposures=[
            exposure(customer_id="a", variant="treatment", responded=True),
            exposure(customer_id="a", variant="control", responded=True),
            exposure(customer_id="b", variant="B", responded=False),
        ]
    )
    assert _exposures(pickle.dumps({"campaigns": book})) == [("a", True), ("b", False)]
    assert _exposures(None) == [] and _exposures(pickle.dumps({})) == []


# --------------------------------------------------------------------------- the tallier


def _message(
    offset: int, event_id: str, customer: str, items: list[dict[str, Any]], **extra: Any
) -> RawMessage:
    value = encode_purchase(
        event_id=event_id,
        customer_id=customer,
        occurred_at="2017-03-01T10:00:00Z",
        amount=10,
        items=items,
        **extra,
    )
    return RawMessage("purchases", 0, offset, customer.encode(), value)


async def _ingest(store: MemoryStore, catalogue: MemoryCatalogue, batch: Sequence[RawMessage]) -> None:
    async def publish(letters: Sequence[DeadLetter]) -> None:
        assert not letters

    await ingest_batch(batch, store, publish, tallier=mix_tallier(catalogue))


def test_the_tallier_counts_baskets_per_category_and_purchases_per_channel_exactly_once() -> None:
    store, catalogue = MemoryStore(), MemoryCatalogue()
    soup = Product("1", "GROCERY", "SOUP")
    asyncio.run(
        catalogue.apply_products([Keyed("1", soup, 0, 0), Keyed("2", Product("2", "GROCERY"), 0, 1)], 0)
    )
    line = {"quantity": 1, "unit_price": 1.0}
    first = [
        _message(
            0,
            "e1",
            "c1",
            [{"sku": "1", **line}, {"sku": "1", **line}, {"sku": "3", "category": "TEA", **line}],
            channel="web",
        ),
        _message(1, "e2", "c1", [{"sku": "2", **line}, {"sku": "9", **line}]),  # no category anywhere
        _message(2, "e3", "c2", [{"sku": "1", "category": "BROTH", **line}], channel="web"),  # its own wins
    ]
    asyncio.run(_ingest(store, catalogue, first))
    # the catalogue changes: only what is folded after it is labelled with the new category
    asyncio.run(catalogue.apply_products([Keyed("1", Product("1", "GROCERY", "NOODLES"), 0, 2)], 0))
    later = [
        _message(3, "e4", "c1", [{"sku": "1", **line}], channel="app"),
        _message(4, "e1", "c1", []),
    ]  # e1 resent
    asyncio.run(_ingest(store, catalogue, [*later, *first]))  # and the first batch redelivered
    categories = asyncio.run(store.tallies(CATEGORY_TABLE, ["c1", "c2"]))
    assert categories == {"c1": {"SOUP": 1, "TEA": 1, "NOODLES": 1}, "c2": {"BROTH": 1}}
    channels = asyncio.run(store.tallies(CHANNEL_TABLE, ["c1", "c2"]))
    assert channels == {"c1": {"web": 1, "unknown": 1, "app": 1}, "c2": {"web": 1}}


def test_refunds_tally_nothing() -> None:
    refund = encode_purchase(
        event_id="r1", customer_id="c1", occurred_at="2017-03-01T10:00:00Z", amount=-5, type="refund"
    )
    store = MemoryStore()

    async def publish(letters: Sequence[DeadLetter]) -> None:
        assert not letters

    asyncio.run(
        ingest_batch(
            [RawMessage("purchases", 0, 0, b"c1", refund)],
            store,
            publish,
            tallier=mix_tallier(MemoryCatalogue()),
        )
    )
    assert asyncio.run(store.tallies(CHANNEL_TABLE, ["c1"])) == {"c1": {}}


def test_live_profiles_read_the_stores_and_unpickle_the_models_once_per_save(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import agents.segment_profiles as module
    from agents.segment_profiles import ExposureCache, live_segment_profiles
    from state.customer.profile_store import MemoryProfileStore
    from state.evaluator.config import EvaluatorConfig
    from state.evaluator.evaluate import Evaluator
    from state.evaluator.read_model import ClusterGroup, SegmentGroup, summary_record
    from state.segments.segments import load_preset

    book = SimpleNamespace(exposures=[SimpleNamespace(customer_id="a", variant="treatment", responded=True)])
    saved = MemoryProfileStore()
    rows = [{"customer_id": "a", "profile": [5, 5, 5, "Champions", 0, "zero"], "band": 1}]
    figures: dict[str, Any] = dict.fromkeys(("mean_recency_days", "mean_frequency", "mean_monetary"))
    summary = summary_record(
        msgspec.structs.replace(
            Evaluator(EvaluatorConfig(load_preset("rfm11"))).summary(),  # before any tick: as_of_ms 0
            segments=[SegmentGroup(segment="Champions", customers=1, share=1.0, value_share=1.0, **figures)],
            clusters=[
                ClusterGroup(cluster=0, name="zero", customers=1, share=1.0, value_share=1.0, **figures)
            ],
        )
    )
    asyncio.run(saved.save(0, None, pickle.dumps({"campaigns": book}), rows, summary))
    store, catalogue = MemoryStore(), MemoryCatalogue()
    store.counters[(CATEGORY_TABLE, "a")] = {"SOUP": 2}
    asyncio.run(catalogue.apply_traits([Keyed("a", Traits("a", "45-54"), 0, 0)], 0))
    calls: list[bytes | None] = []
    real = module._exposures
    monkeypatch.setattr(module, "_exposures", lambda model: calls.append(model) or real(model))
    cache: ExposureCache = {}
    for _ in range(2):
        found = asyncio.run(live_segment_profiles(store, saved, catalogue, cache=cache))
        assert found is not None and found["as_of"] == "1970-01-01T00:00:00.000Z"
        (champions,) = found["segments"]
        assert champions["top_categories"] == [{"category": "SOUP", "share": 1.0, "lift": 1.0}]
        assert champions["traits"]["age_band"] == {"45-54": 1.0}
        assert champions["response"] == {"exposures": 1, "responses": 1, "rate": 1.0}
    assert len(calls) == 1  # the second call used the cache
    asyncio.run(saved.save(1, None, None, [], summary))  # the evaluator saved again: read anew
    asyncio.run(live_segment_profiles(store, saved, catalogue, cache=cache))
    assert len(calls) == 2
    assert asyncio.run(live_segment_profiles(store, MemoryProfileStore(), catalogue)) is None

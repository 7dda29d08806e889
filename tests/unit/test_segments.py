"""RFM scores and segment presets: the formula's edges, real CDNOW vs pandas ranks, every preset triple."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from segstream.batch import rfm_table
from segstream.sources import load_cdnow
from state.customer.rfm import CustomerState
from state.segments.segments import (
    Preset,
    PresetError,
    Rule,
    available_presets,
    exact_scores,
    load_preset,
    load_preset_file,
    rfm_scores,
    score,
    score_customers,
)

TRIPLES = [(r, f, m) for r, f, m in itertools.product(range(1, 6), repeat=3)]
EPOCH = pd.Timestamp(0, tz="UTC")
LAPSED = {"Can't Lose Them", "At Risk", "Hibernating", "Lost"}


def in_box(rule: dict[str, Any], triple: tuple[int, int, int]) -> bool:
    """The JSON rule's box, read straight from the file (independent of ``Rule.matches``)."""
    return all(rule[axis][0] <= s <= rule[axis][1] for axis, s in zip("rfm", triple, strict=True))


def raw_preset(name: str) -> dict[str, Any]:
    path = Path(__file__).parents[2] / "state" / "segments" / "presets" / f"{name}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# --------------------------------------------------------------------------- score


def test_population_of_five_gives_each_score_once() -> None:
    assert [score(worse, 5) for worse in range(5)] == [1, 2, 3, 4, 5]


def test_single_customer_scores_one() -> None:
    assert score(0, 1) == 1


def test_best_customer_of_a_small_population_cannot_reach_five() -> None:
    assert [score(n - 1, n) for n in range(1, 6)] == [1, 3, 4, 4, 5]


def test_scores_are_quintiles_of_a_large_population() -> None:
    assert Counter(score(w, 1000) for w in range(1000)) == {s: 200 for s in range(1, 6)}


@pytest.mark.parametrize(("worse", "population"), [(0, 0), (0, -3), (-1, 5), (5, 5), (9, 5)])
def test_invalid_arguments_raise(worse: int, population: int) -> None:
    with pytest.raises(ValueError, match=r"(population|worse) must be"):
        score(worse, population)


def test_ties_share_a_score() -> None:
    assert exact_scores([7, 7, 7, 7, 7]).tolist() == [1] * 5
    assert exact_scores([1, 2, 2, 2, 9]).tolist() == [1, 2, 2, 2, 5]


def test_exact_scores_equal_brute_force_counting() -> None:
    rng = random.Random(7)
    for _ in range(200):
        values = [rng.randint(-5, 5) for _ in range(rng.randint(1, 40))]
        expected = [score(sum(v < x for v in values), len(values)) for x in values]
        assert exact_scores(values).tolist() == expected


def test_rfm_scores_rejects_customers_without_purchases_and_ragged_input() -> None:
    with pytest.raises(ValueError, match="frequency >= 1"):
        rfm_scores([1, 2], [1, 0], [5, 5])
    with pytest.raises(ValueError, match="one length"):
        rfm_scores([1, 2], [1], [5, 5])
    with pytest.raises(ValueError, match="integers"):
        exact_scores([1.5, 2.0])  # type: ignore[list-item]  # the runtime check under test
    assert rfm_scores([], [], []) == []


def test_score_customers_skips_customers_without_a_purchase() -> None:
    states = [
        CustomerState("old", frequency=1, monetary_cents=100, first_purchase_ms=0, last_purchase_ms=0),
        CustomerState("new", frequency=3, monetary_cents=900, first_purchase_ms=5, last_purchase_ms=50),
        CustomerState("refund-only", monetary_cents=-300, refunds=1),
    ]
    assert score_customers(states) == {"old": (1, 1, 1), "new": (3, 3, 3)}


# --------------------------------------------------------------------------- CDNOW vs pandas


@pytest.fixture(scope="module")
def cdnow_rfm() -> pd.DataFrame:
    table = rfm_table(load_cdnow())
    expected = (
        table[["last_purchase_at", "frequency", "monetary_cents"]].rank(method="min").astype("int64") - 1
    )
    n = len(table)
    for dim, column in zip("RFM", expected.columns, strict=True):
        table[f"expected_{dim}"] = (1 + (5 * expected[column]) // n).clip(upper=5)
    last_ms = (table["last_purchase_at"] - EPOCH) // pd.Timedelta(milliseconds=1)
    scores = rfm_scores(last_ms.to_numpy(), table["frequency"].to_numpy(), table["monetary_cents"].to_numpy())
    table[["R", "F", "M"]] = pd.DataFrame(scores, index=table.index)
    return table


def test_rfm_scores_equal_pandas_min_rank_on_every_cdnow_customer(cdnow_rfm: pd.DataFrame) -> None:
    assert len(cdnow_rfm) == 23_570
    for dim in "RFM":
        mismatch = cdnow_rfm[cdnow_rfm[dim] != cdnow_rfm[f"expected_{dim}"]]
        assert mismatch.empty, mismatch.head()


def test_cdnow_recency_and_spend_fill_all_five_quintiles(cdnow_rfm: pd.DataFrame) -> None:
    n = len(cdnow_rfm)
    for dim in "RM":
        counts = cdnow_rfm[dim].value_counts()
        assert sorted(counts.index) == [1, 2, 3, 4, 5]
        assert all(abs(c / n - 0.2) < 0.01 for c in counts), counts


def test_cdnow_frequency_is_lopsided_and_ties_share_a_score(cdnow_rfm: pd.DataFrame) -> None:
    # 11,908 one-time buyers (50.5%) all have 0 worse customers: F=1, and F=2 never occurs.
    assert cdnow_rfm["F"].value_counts().to_dict() == {1: 11_908, 3: 4_079, 4: 3_658, 5: 3_925}
    for dim, column in zip("RFM", ["last_purchase_at", "frequency", "monetary_cents"], strict=True):
        assert (cdnow_rfm.groupby(column)[dim].nunique() == 1).all()


# --------------------------------------------------------------------------- shipped presets


def test_shipped_presets() -> None:
    assert {"rfm11", "rf_grid"} <= set(available_presets())
    assert load_preset() == load_preset("rfm11")
    assert len(load_preset("rfm11").rules) == 11
    assert len(load_preset("rf_grid").rules) == 10


@pytest.mark.parametrize("name", available_presets())
def test_every_triple_has_one_segment_and_every_rule_is_reached(name: str) -> None:
    preset, raw = load_preset(name), raw_preset(name)
    assert preset.name == name and preset.version == raw["version"] and preset.description
    first_hits: Counter[str] = Counter()
    for triple in TRIPLES:
        first = next(rule["segment"] for rule in raw["rules"] if in_box(rule, triple))
        assert preset.segment_for(*triple).segment == first
        first_hits[first] += 1
    assert set(first_hits) == {rule["segment"] for rule in raw["rules"]}
    assert sum(first_hits.values()) == 125
    assert all(rule.description for rule in preset.rules)


@pytest.mark.parametrize(
    ("triple", "segment"),
    [
        ((5, 5, 5), "Champions"),
        ((4, 4, 4), "Champions"),
        ((5, 3, 3), "Loyal Customers"),
        ((3, 5, 5), "Loyal Customers"),
        ((5, 2, 5), "Potential Loyalist"),
        ((5, 5, 1), "Potential Loyalist"),
        ((5, 1, 1), "New Customers"),
        ((5, 1, 5), "New Customers"),
        ((4, 1, 3), "Promising"),
        ((3, 4, 1), "Need Attention"),
        ((3, 1, 1), "About To Sleep"),
        ((1, 5, 5), "Can't Lose Them"),
        ((1, 4, 4), "Can't Lose Them"),
        ((2, 4, 4), "At Risk"),
        ((2, 5, 5), "At Risk"),
        ((1, 5, 1), "At Risk"),
        ((1, 1, 1), "Lost"),
        ((1, 2, 2), "Lost"),
        ((2, 1, 1), "Hibernating"),
        ((1, 1, 5), "Hibernating"),
    ],
)
def test_rfm11_makes_marketing_sense(triple: tuple[int, int, int], segment: str) -> None:
    assert load_preset("rfm11").segment_for(*triple).segment == segment


def test_rfm11_bands_follow_recency() -> None:
    preset = load_preset("rfm11")
    for r, f, m in TRIPLES:
        name = preset.segment_for(r, f, m).segment
        assert (name in LAPSED) == (r <= 2), (r, f, m, name)
        assert name != "Champions" or min(r, f, m) >= 4


def test_rf_grid_cells_are_disjoint_and_ignore_spend() -> None:
    preset = load_preset("rf_grid")
    for triple in TRIPLES:
        assert sum(rule.matches(*triple) for rule in preset.rules) == 1
        assert preset.segment_for(*triple) == preset.segment_for(triple[0], triple[1], 1)


@pytest.mark.parametrize("triple", [(0, 3, 3), (3, 6, 3), (3, 3, -1)])
def test_segment_for_rejects_scores_outside_1_to_5(triple: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match=r"1\.\.5"):
        load_preset().segment_for(*triple)


# --------------------------------------------------------------------------- preset validation


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "preset.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_valid_file_loads_like_the_shipped_preset(tmp_path: Path) -> None:
    assert load_preset_file(write(tmp_path, raw_preset("rfm11"))) == load_preset("rfm11")


def broken(change: str) -> dict[str, Any]:
    data = copy.deepcopy(raw_preset("rfm11"))
    rules = data["rules"]
    if change == "r below 1":
        rules[0]["r"] = [0, 5]
    elif change == "m reversed":
        rules[2]["m"] = [5, 4]
    elif change == "range not a pair":
        rules[1]["f"] = [3]
    elif change == "missing m":
        del rules[3]["m"]
    elif change == "typo fm for m":
        rules[4]["fm"] = rules[4].pop("m")
    elif change == "duplicate name":
        rules[5]["segment"] = "Champions"
    elif change == "empty name":
        rules[6]["segment"] = "  "
    elif change == "no rules":
        data["rules"] = []
    elif change == "not total":
        rules.pop()
    elif change == "unreachable":
        rules.append({"segment": "Ghosts", "r": [1, 1], "f": [1, 1], "m": [1, 1]})
    elif change == "version":
        data["version"] = True
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "r below 1",
            r"rules\[0\] \('Champions'\).*r must be \[lo, hi\] with 1 <= lo <= hi <= 5, got \[0, 5\]",
        ),
        ("m reversed", r"rules\[2\] \('Potential Loyalist'\).*m must be .* got \[5, 4\]"),
        ("range not a pair", r"rules\[1\] \('Loyal Customers'\): f must be a list \[lo, hi\]"),
        ("missing m", r"rules\[3\] \('New Customers'\) is missing \['m'\]"),
        ("typo fm for m", r"rules\[4\] \('Promising'\) is missing \['m'\]"),
        ("duplicate name", r"segment names must be unique, repeated: \['Champions'\]"),
        ("empty name", r"rules\[6\].*non-empty"),
        ("no rules", r"rules must be a non-empty list"),
        ("not total", r"16 score triples match no rule, e\.g\. \[\(1, 1, 3\)"),
        ("unreachable", r"rules \['Ghosts'\] never match first"),
        ("version", r"version must be an integer >= 1"),
    ],
)
def test_invalid_presets_name_the_file_and_rule(tmp_path: Path, change: str, message: str) -> None:
    path = write(tmp_path, broken(change))
    with pytest.raises(PresetError, match=message) as info:
        load_preset_file(path)
    assert str(info.value).startswith(str(path))


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    data = raw_preset("rf_grid")
    data["rules"][0]["weight"] = 2
    with pytest.raises(PresetError, match=r"rules\[0\] \('Champions'\) has unknown keys \['weight'\]"):
        load_preset_file(write(tmp_path, data))


def test_unreadable_files_and_unknown_names(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(PresetError, match="cannot read preset"):
        load_preset_file(bad)
    with pytest.raises(PresetError, match="cannot read preset"):
        load_preset_file(tmp_path / "missing.json")
    with pytest.raises(PresetError, match=r"unknown preset 'nope'; shipped presets: \[.*'rfm11'"):
        load_preset("nope")


def test_presets_built_in_code_are_validated_too() -> None:
    everything = Rule("Everyone", (1, 5), (1, 5), (1, 5))
    assert Preset("one", 1, "", (everything,)).segment_for(3, 3, 3) is everything
    with pytest.raises(PresetError, match="never match first"):
        Preset("two", 1, "", (everything, Rule("Nobody", (5, 5), (5, 5), (5, 5))))
    with pytest.raises(PresetError, match="r must be"):
        Rule("Bad", (2, 1), (1, 5), (1, 5))


def test_presets_as_cache_keys_equal_by_every_field_and_hash_by_name_and_version() -> None:
    first, again = load_preset("rfm11"), load_preset("rfm11")
    reworded = dataclasses.replace(
        first, rules=(dataclasses.replace(first.rules[0], description="reworded"), *first.rules[1:])
    )
    assert first == again and hash(first) == hash(again)  # a preset loaded twice shares cache entries
    assert reworded != first and hash(reworded) == hash(first)  # same name and version: one bucket
    assert len({first: 1, again: 2, reworded: 3}) == 2  # ... but equality still tells them apart

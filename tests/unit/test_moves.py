"""The playbook and the segment moves: pure tests against oracles computed another way.

- Moves: the oracle recomputes entries and exits with plain sets from each customer's
  consecutive profiles (the audiences a profile is in: its segment and its cluster id), never
  looking at the code under test; the recommended actions come from the preset JSON files read
  directly. Checked on generated profile walks here; on a worker's real changes over the CDNOW
  sample in ``tests/integration/test_segments_live.py``.
- Messages: every move message matches ``schemas/segment-move.schema.json``; broken ones do not.
- The change events and profiles carry the playbook entry of their segment.
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from state.evaluator.messages import change_message, move_message, profile_message
from state.segments.moves import segment_moves
from state.segments.playbook import recommended_action
from state.customer.profiles import REASONS, Change, Profile
from state.segments.segments import PresetError, available_presets, load_preset, parse_preset
from streams.topics import SEGMENT_MOVES, TOPICS
from tests.schema_helpers import load_schema, validate, validate_json

ROOT = Path(__file__).resolve().parents[2]
PRESET = load_preset("rfm11")


def _playbook(name: str) -> dict[str, dict[str, Any]]:
    """segment -> {action, channel, offer} straight from the preset file."""
    raw = json.loads((ROOT / "state" / "presets" / f"{name}.json").read_text(encoding="utf-8"))
    return {
        rule["segment"]: {"action": rule["action"], "channel": rule["channel"], "offer": None}
        for rule in raw["rules"]
    }


def _audiences(profile: Profile | None) -> set[tuple[str, str]]:
    """(audience id, kind) of every audience a profile is in."""
    if profile is None:
        return set()
    found = {(f"segment:{profile.rfm_segment}", "segment")}
    if profile.cluster is not None:
        found.add((f"cluster:{profile.cluster}", "cluster"))
    return found


def _oracle(changes: list[Change], preset_name: str) -> Counter[tuple[Any, ...]]:
    """Entries and exits between consecutive profiles, with sets; entered carries the playbook entry."""
    book = _playbook(preset_name)
    moves: Counter[tuple[Any, ...]] = Counter()
    for c in changes:
        before, after = _audiences(c.before), _audiences(c.after)
        action = json.dumps(book.get(c.after.rfm_segment), sort_keys=True)
        for audience, kind in before - after:
            moves[(c.customer_id, c.at_ms, "exited", audience, kind, c.reason, "null")] += 1
        for audience, kind in after - before:
            moves[(c.customer_id, c.at_ms, "entered", audience, kind, c.reason, action)] += 1
    return moves


def _found(changes: list[Change], preset_name: str) -> Counter[tuple[Any, ...]]:
    found: Counter[tuple[Any, ...]] = Counter()
    for m in segment_moves(changes, load_preset(preset_name)):
        action = None if m.recommended_action is None else m.recommended_action.to_json()
        (reason,) = m.reasons
        key = (m.customer_id, m.at_ms, m.type, m.audience.id, m.audience.kind, reason)
        found[(*key, json.dumps(action, sort_keys=True))] += 1
    return found


def _walks(seed: int, preset_name: str, customers: int = 300, steps: int = 12) -> list[Change]:
    """Random profile walks: each step changes scores, cluster (id or name) or both, never nothing."""
    rng = random.Random(seed)
    preset = load_preset(preset_name)
    changes = []
    for c in range(customers):
        profile: Profile | None = None
        for step in range(steps):
            r, f, m = (rng.randint(1, 5) for _ in range(3))
            cluster = rng.choice([None, 0, 1, 2])
            name = None if cluster is None else rng.choice([f"name {cluster}", f"renamed {cluster}"])
            after = Profile(r, f, m, preset.segment_for(r, f, m).segment, cluster, name)
            if after != profile:
                reason = rng.choice(REASONS)
                changes.append(Change(f"c{c}", step * 1000, reason, profile, after, 1, 1))
                profile = after
    return changes


@pytest.mark.parametrize("preset_name", available_presets())
def test_moves_are_the_set_differences_of_consecutive_profiles(preset_name: str) -> None:
    changes = _walks(seed=4, preset_name=preset_name)
    assert _found(changes, preset_name) == _oracle(changes, preset_name)


def test_a_cluster_rename_and_a_score_move_inside_a_segment_are_not_moves() -> None:
    a = Profile(5, 5, 5, "Champions", 1, "old name")
    b = Profile(4, 5, 5, "Champions", 1, "new name")
    assert segment_moves([Change("c", 0, "model_update", a, b, 2, 3)], PRESET) == []


def test_move_messages_match_the_schema() -> None:
    changes = _walks(seed=9, preset_name="rfm11", customers=40)
    moves = segment_moves(changes, PRESET)
    assert {m.type for m in moves} == {"entered", "exited"}
    assert {m.audience.kind for m in moves} == {"segment", "cluster"}
    ids = [validate_json("segment-move", move_message(m))["move_id"] for m in moves]
    assert len(set(ids)) == len(ids)


ENTERED = load_schema("segment-move")["examples"][1]


def _broken(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(ENTERED)
    for path, value in changes.items():
        node = doc
        *parents, last = path.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return doc


INVALID_MOVES = {
    "exited with an action": _broken(type="exited"),
    "unknown type": _broken(type="joined"),
    "segment kind with a cluster id": _broken(audience__id="cluster:5"),
    "cluster kind with a segment id": _broken(audience__kind="cluster"),
    "cluster id not a number": _broken(audience__kind="cluster", audience__id="cluster:x"),
    "no reasons": _broken(reasons=[]),
    "unknown reason": _broken(reasons=["churn"]),
    "extra property": _broken(segment="Champions"),
    "action without offer": _broken(recommended_action={"action": "a", "channel": "email"}),
    "as_of not UTC": _broken(as_of="2026-11-21T01:00:00.000+01:00"),
}


@pytest.mark.parametrize("instance", INVALID_MOVES.values(), ids=INVALID_MOVES.keys())
def test_invalid_moves_are_rejected(instance: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("segment-move", instance)


def test_shared_definitions_are_those_of_segment_change() -> None:
    ours, theirs = load_schema("segment-move")["$defs"], load_schema("segment-change")["$defs"]
    assert set(ours) <= set(theirs)
    for name in ours:
        assert ours[name] == theirs[name], name
    assert load_schema("customer-segment")["$defs"]["recommendedAction"] == theirs["recommendedAction"]


def test_segment_moves_topic_and_asyncapi() -> None:
    (spec,) = [s for s in TOPICS if s.name == SEGMENT_MOVES]
    assert spec.partitioned and not spec.compacted
    asyncapi = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))
    channel = asyncapi["channels"]["segmentMoves"]
    assert channel["address"] == channel["bindings"]["kafka"]["topic"] == SEGMENT_MOVES
    message = asyncapi["components"]["messages"]["SegmentMove"]
    assert message["payload"]["schema"]["$ref"] == "../schemas/segment-move.schema.json"
    for example in message["examples"]:
        validate("segment-move", example["payload"])
    actions = {(op["action"], op["channel"]["$ref"]) for op in asyncapi["operations"].values()}
    assert {("send", "#/channels/segmentMoves"), ("receive", "#/channels/segmentMoves")} <= actions


# --------------------------------------------------------------------------- the playbook


@pytest.mark.parametrize("preset_name", available_presets())
def test_every_segment_of_the_shipped_presets_has_a_playbook_entry(preset_name: str) -> None:
    preset, book = load_preset(preset_name), _playbook(preset_name)
    for segment in preset.segments:
        found = recommended_action(preset, segment)
        assert found is not None and found.to_json() == book[segment]


def test_changes_and_profiles_carry_the_after_segments_action() -> None:
    book = _playbook("rfm11")
    before, after = Profile(5, 1, 1, "New Customers", None, None), Profile(5, 5, 5, "Champions", 2, "x")
    change = Change("c1", 86_400_000 * 20_000, "purchase", before, after, 3, 1)
    assert (
        validate_json("segment-change", change_message(change, PRESET))["recommended_action"]
        == book["Champions"]
    )
    assert (
        validate_json("customer-segment", profile_message(change, PRESET))["recommended_action"]
        == book["Champions"]
    )


def test_a_preset_without_a_playbook_gives_null_and_a_half_entry_is_refused() -> None:
    plain = {
        "name": "p",
        "version": 1,
        "description": "",
        "rules": [{"segment": "All", "r": [1, 5], "f": [1, 5], "m": [1, 5]}],
    }
    preset = parse_preset(plain)
    change = Change("c1", 0, "purchase", None, Profile(1, 1, 1, "All", None, None), 1, 0)
    assert json.loads(change_message(change, preset))["recommended_action"] is None
    half = copy.deepcopy(plain)
    half["rules"][0]["action"] = "Call them."
    with pytest.raises(PresetError, match="both action and channel"):
        parse_preset(half)
    offer = recommended_action(PRESET, "Champions", offer="bundle-7")
    assert offer is not None and offer.to_json()["offer"] == "bundle-7"


def expected_move_keys(
    change_docs: list[dict[str, Any]], preset_name: str = "rfm11"
) -> Counter[tuple[Any, ...]]:
    """The moves ``segment-changes`` messages imply, as comparable keys (sets of audiences, as above)."""
    book = _playbook(preset_name)

    def audiences(profile: dict[str, Any] | None) -> set[tuple[str, str]]:
        if profile is None:
            return set()
        found = {(f"segment:{profile['rfm_segment']}", "segment")}
        if profile["cluster"] is not None:
            found.add((f"cluster:{profile['cluster']}", "cluster"))
        return found

    keys: Counter[tuple[Any, ...]] = Counter()
    for doc in change_docs:
        before, after = audiences(doc["before"]), audiences(doc["after"])
        at, who, reason = doc["occurred_at"], doc["customer_id"], doc["reason"]
        action = json.dumps(book.get(doc["after"]["rfm_segment"]), sort_keys=True)
        keys.update((who, at, "exited", a, k, reason, "null") for a, k in before - after)
        keys.update((who, at, "entered", a, k, reason, action) for a, k in after - before)
    return keys


def move_keys(move_docs: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """``segment-moves`` messages as the same keys."""
    return Counter(
        (
            m["customer_id"],
            m["as_of"],
            m["type"],
            m["audience"]["id"],
            m["audience"]["kind"],
            *m["reasons"],
            json.dumps(m["recommended_action"], sort_keys=True),
        )
        for m in move_docs
    )


def test_the_export_carries_the_playbook_of_each_customers_segment() -> None:
    import pandas as pd

    from segstream.export import PLAYBOOK_COLUMNS, with_playbook

    book = _playbook("rfm11")
    segments = [*book, None]
    frame = with_playbook(pd.DataFrame({"rfm_segment": pd.Series(segments, dtype=str)}), PRESET)
    assert list(frame.columns) == ["rfm_segment", *PLAYBOOK_COLUMNS]
    for row, segment in zip(frame.itertuples(), segments, strict=True):
        entry = book.get(segment) if segment else None
        assert (row.recommended_action if entry else None) == (entry["action"] if entry else None)
        assert (row.recommended_channel if entry else None) == (entry["channel"] if entry else None)
    assert frame["recommended_offer"].isna().all()
    assert frame["recommended_action"].isna().tolist() == [s is None for s in segments]


def test_the_export_offers_each_customers_top_bundle_where_the_playbook_has_an_entry() -> None:
    import pandas as pd

    from segstream.export import with_playbook

    book = _playbook("rfm11")
    segments = [*book, None]
    offers = [f"CATEGORY {i}" if i % 2 == 0 else None for i in range(len(segments))]
    frame = with_playbook(pd.DataFrame({"rfm_segment": pd.Series(segments, dtype=str)}), PRESET, offers)
    for row, segment, offer in zip(frame.itertuples(), segments, offers, strict=True):
        expected = offer if segment and book.get(segment) else None
        assert (None if pd.isna(row.recommended_offer) else row.recommended_offer) == expected

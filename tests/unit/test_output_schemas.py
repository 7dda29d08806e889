"""The messages segstream publishes (streams.outputs) match their JSON Schemas, and the schemas are strict.

Real messages are built with :mod:`streams.outputs` from :class:`state.customer.profiles.Change` objects and
validated with the helpers of tests/schema_helpers.py (date-time format asserted). The negative
cases are the produced messages with one thing broken. Also checks that docs/asyncapi.yaml
publishes the three topics as streams/topics.py declares them. Pure tests: no services.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]  # no types-jsonschema in the dev extras
import pytest
import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

from state.customer.profiles import REASONS, Change, Profile
from state.evaluator.messages import alert_message, change_message, profile_fields, profile_message
from state.models.alerts import Alert
from state.segments.segments import available_presets, load_preset
from streams.outputs import InvalidTick, decode_tick, rfc3339, tick_message
from streams.topics import TOPICS
from tests.schema_helpers import load_schema, validate, validate_json, validator_for

ROOT = Path(__file__).resolve().parents[2]
PRESET = load_preset("rfm11")
DAY_MS = 86_400_000
MIDNIGHT = 1_795_046_400_000  # 2026-11-19T00:00:00Z
CLUSTER_NAME = "Recent mid-value repeat buyers"


def _profile(r: int, f: int, m: int, cluster: int | None = None, name: str | None = None) -> Profile:
    return Profile(r, f, m, PRESET.segment_for(r, f, m).segment, cluster, name)


FIRST = Change("00042", MIDNIGHT, "purchase", None, _profile(5, 1, 1), 1, 0)
CLUSTERED = Change(
    "00042",
    MIDNIGHT + 2 * DAY_MS,
    "recency_decay",
    _profile(5, 2, 3, 1, CLUSTER_NAME),
    _profile(4, 2, 3, 1, CLUSTER_NAME),
    4,
    2,
)
INTO_CLUSTER = Change(
    "shop1:c-7@eu",  # a customer_id may itself contain "@"
    MIDNIGHT + 123,  # a clock tick's as_of need not be a midnight
    "model_update",
    _profile(2, 4, 4),
    _profile(2, 4, 4, 0, "Lapsed high-value frequent buyers"),
    7,
    1,
)
CHANGES = {"first profile": FIRST, "clustered": CLUSTERED, "into a cluster": INTO_CLUSTER}


def _decoded(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value


def _change(change: Change = CLUSTERED) -> dict[str, Any]:
    return _decoded(change_message(change, PRESET))


def _segment(change: Change = CLUSTERED) -> dict[str, Any]:
    return _decoded(profile_message(change, PRESET))


def _tick(
    as_of_ms: int = MIDNIGHT, offsets: dict[int, int] | None = None, source: str = "cli"
) -> dict[str, Any]:
    return _decoded(tick_message(as_of_ms, {0: 12, 1: 7} if offsets is None else offsets, source))


def _set(value: dict[str, Any], path: str, new: Any) -> dict[str, Any]:
    """A deep copy of ``value`` with the field at dotted ``path`` set to ``new``."""
    broken = copy.deepcopy(value)
    *parents, last = path.split(".")
    node = broken
    for part in parents:
        node = node[part]
    node[last] = new
    return broken


def _drop(value: dict[str, Any], path: str) -> dict[str, Any]:
    broken = copy.deepcopy(value)
    *parents, last = path.split(".")
    node = broken
    for part in parents:
        node = node[part]
    del node[last]
    return broken


# --------------------------------------------------------------------------- segment-changes


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_change_messages_match_the_schema(change: Change) -> None:
    value = validate_json("segment-change", change_message(change, PRESET))
    assert value["change_id"] == f"{change.customer_id}@{change.at_ms}"
    assert value["occurred_at"] == rfc3339(change.at_ms)
    assert value["after"] == profile_fields(change.after)
    assert value["rule"]["segment"] == value["after"]["rfm_segment"]


def test_a_provisional_change_is_marked_and_has_its_own_id() -> None:
    early = dataclasses.replace(CLUSTERED, provisional=True)
    value = validate_json("segment-change", change_message(early, PRESET))
    final = validate_json("segment-change", change_message(CLUSTERED, PRESET))
    assert value["provisional"] is True and final["provisional"] is False
    assert value["change_id"] == final["change_id"] + "~provisional"
    assert {k: v for k, v in value.items() if k not in {"provisional", "change_id"}} == {
        k: v for k, v in final.items() if k not in {"provisional", "change_id"}
    }


def test_first_profile_has_no_before_and_no_cluster() -> None:
    value = validate_json("segment-change", change_message(FIRST, PRESET))
    assert value["before"] is None
    assert value["after"]["cluster"] is None
    assert value["after"]["cluster_name"] is None
    assert value["occurred_at"] == "2026-11-19T00:00:00.000Z"
    assert value["change_id"] == "00042@1795046400000"


def test_change_with_clusters() -> None:
    value = validate_json("segment-change", change_message(CLUSTERED, PRESET))
    assert value["before"]["cluster"] == value["after"]["cluster"] == 1
    assert value["after"]["cluster_name"] == CLUSTER_NAME
    assert value["rule"] == {
        "preset": "rfm11",
        "preset_version": 1,
        "segment": "Potential Loyalist",
        "r": [4, 5],
        "f": [2, 5],
        "m": [1, 5],
    }


@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_every_reason_is_accepted(change: Change, reason: str) -> None:
    other = Change(
        change.customer_id,
        change.at_ms,
        reason,  # type: ignore[arg-type]  # REASONS holds exactly the Reason literals
        change.before,
        change.after,
        change.cutpoint_version,
        change.model_version,
    )
    assert validate_json("segment-change", change_message(other, PRESET))["reason"] == reason


def test_schema_reasons_are_the_code_reasons() -> None:
    assert load_schema("segment-change")["properties"]["reason"]["enum"] == list(REASONS)


@pytest.mark.parametrize("preset_name", available_presets())
def test_every_score_triple_of_every_preset_gives_a_valid_change(preset_name: str) -> None:
    preset = load_preset(preset_name)
    checked = 0
    for r, f, m in itertools.product(range(1, 6), repeat=3):
        after = Profile(r, f, m, preset.segment_for(r, f, m).segment, None, None)
        if after == FIRST.after:  # a change always moves something
            continue
        change = Change("c1", MIDNIGHT, "cutpoint_update", FIRST.after, after, 2, 0)
        validate_json("segment-change", change_message(change, preset))
        validate_json("customer-segment", profile_message(change, preset))
        checked += 1
    assert checked == 124


CHANGE = _change(CLUSTERED)
INVALID_CHANGES = {
    "r_score 6": _set(CHANGE, "after.r_score", 6),
    "f_score 0 in before": _set(CHANGE, "before.f_score", 0),
    "m_score as a string": _set(CHANGE, "after.m_score", "3"),
    "unknown reason": _set(CHANGE, "reason", "churn"),
    **{f"missing {field}": _drop(CHANGE, field) for field in CHANGE},
    "missing after.cluster_name": _drop(CHANGE, "after.cluster_name"),
    "missing rule.preset_version": _drop(CHANGE, "rule.preset_version"),
    "extra property": _set(CHANGE, "segment", "Champions"),
    "extra property in after": _set(CHANGE, "after.churn_risk", 0.2),
    "extra property in rule": _set(CHANGE, "rule.description", "x"),
    "schema_version 2": _set(CHANGE, "schema_version", 2),
    "before empty object": _set(CHANGE, "before", {}),
    "after null": _set(CHANGE, "after", None),
    "empty rfm_segment": _set(CHANGE, "after.rfm_segment", ""),
    "negative cluster": _set(CHANGE, "after.cluster", -1),
    "cluster as a string": _set(CHANGE, "after.cluster", "1"),
    "cluster without a name": _set(CHANGE, "after.cluster_name", None),
    "name without a cluster": _set(CHANGE, "after.cluster", None),
    "rule range of three": _set(CHANGE, "rule.r", [4, 5, 5]),
    "rule range of one": _set(CHANGE, "rule.f", [2]),
    "rule range score 0": _set(CHANGE, "rule.m", [0, 5]),
    "rule range score 6": _set(CHANGE, "rule.m", [1, 6]),
    "preset_version 0": _set(CHANGE, "rule.preset_version", 0),
    "cutpoint_version 0": _set(CHANGE, "cutpoint_version", 0),
    "model_version -1": _set(CHANGE, "model_version", -1),
    "change_id without @": _set(CHANGE, "change_id", "00042"),
    "change_id without ms": _set(CHANGE, "change_id", "00042@"),
    "change_id with non-digit ms": _set(CHANGE, "change_id", "00042@17952192e5"),
    "change_id with trailing newline": _set(CHANGE, "change_id", "00042@1795219200000\n"),
    "change_id with another suffix": _set(CHANGE, "change_id", "00042@1795219200000~early"),
    "provisional as a string": _set(CHANGE, "provisional", "true"),
    "empty customer_id": _set(CHANGE, "customer_id", ""),
    "occurred_at with +00:00": _set(CHANGE, "occurred_at", "2026-11-21T00:00:00.000+00:00"),
    "occurred_at without offset": _set(CHANGE, "occurred_at", "2026-11-21T00:00:00.000"),
    "occurred_at microseconds": _set(CHANGE, "occurred_at", "2026-11-21T00:00:00.000000Z"),
    "occurred_at as epoch ms": _set(CHANGE, "occurred_at", 1_795_219_200_000),
    "occurred_at impossible date": _set(CHANGE, "occurred_at", "2026-02-30T00:00:00.000Z"),
}


def test_the_broken_change_starts_valid() -> None:
    validate("segment-change", CHANGE)
    assert len(INVALID_CHANGES) > len(CHANGE)


@pytest.mark.parametrize("instance", INVALID_CHANGES.values(), ids=INVALID_CHANGES.keys())
def test_invalid_changes_are_rejected(instance: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("segment-change", instance)


# --------------------------------------------------------------------------- customer-segments


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_profile_messages_match_the_schema(change: Change) -> None:
    value = validate_json("customer-segment", profile_message(change, PRESET))
    assert value["customer_id"] == change.customer_id
    assert value["as_of"] == rfc3339(change.at_ms)
    assert {name: value[name] for name in Profile._fields} == profile_fields(change.after)
    assert value["rule"] == _change(change)["rule"]


def test_profile_message_is_the_flattened_change() -> None:
    """customer-segment is segment-change's after profile at the top level, and nothing more."""
    change, segment = _change(CLUSTERED), _segment(CLUSTERED)
    flattened = {
        **{
            k: v
            for k, v in change.items()
            if k not in {"change_id", "occurred_at", "reason", "changed", "before", "after", "provisional"}
        },
        "as_of": change["occurred_at"],
        **change["after"],
    }
    assert segment == flattened
    profile = load_schema("segment-change")["$defs"]["profile"]
    top = load_schema("customer-segment")
    for name in Profile._fields:
        assert top["properties"][name] == profile["properties"][name]
        assert name in top["required"]
    assert set(profile["required"]) == set(Profile._fields)


SEGMENT = _segment(CLUSTERED)
INVALID_SEGMENTS = {
    "r_score 6": _set(SEGMENT, "r_score", 6),
    **{f"missing {field}": _drop(SEGMENT, field) for field in SEGMENT},
    "extra property": _set(SEGMENT, "reason", "purchase"),
    "nested profile": _set(_drop(SEGMENT, "r_score"), "after", CHANGE["after"]),
    "cluster without a name": _set(SEGMENT, "cluster_name", None),
    "name without a cluster": _set(SEGMENT, "cluster", None),
    "as_of not UTC": _set(SEGMENT, "as_of", "2026-11-21T01:00:00.000+01:00"),
    "as_of impossible date": _set(SEGMENT, "as_of", "2026-13-01T00:00:00.000Z"),
    "rule with extra property": _set(SEGMENT, "rule.segments", []),
    "schema_version 0": _set(SEGMENT, "schema_version", 0),
}


def test_the_broken_segment_starts_valid() -> None:
    validate("customer-segment", SEGMENT)
    assert len(INVALID_SEGMENTS) > len(SEGMENT)


@pytest.mark.parametrize("instance", INVALID_SEGMENTS.values(), ids=INVALID_SEGMENTS.keys())
def test_invalid_segments_are_rejected(instance: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("customer-segment", instance)


# --------------------------------------------------------------------------- clock


TICKS = {
    "cli": (MIDNIGHT, {0: 12, 1: 7}, "cli"),
    "replay": (MIDNIGHT + 1, {3: 0, 0: 1_000_000, 12: 5}, "replay"),
    "the accepted floor (1990), no purchases topic yet": (631_152_000_000, {}, "cli"),
}


@pytest.mark.parametrize(("as_of_ms", "offsets", "source"), TICKS.values(), ids=TICKS.keys())
def test_tick_messages_match_the_schema(as_of_ms: int, offsets: dict[int, int], source: str) -> None:
    raw = tick_message(as_of_ms, offsets, source)
    value = validate_json("clock-tick", raw)
    assert value["as_of"] == rfc3339(as_of_ms)
    assert value["as_of_ms"] == as_of_ms
    assert value["source"] == source
    tick = decode_tick(raw)
    assert (tick.as_of_ms, tick.offsets, tick.source) == (as_of_ms, offsets, source)


TICK = _tick()
INVALID_TICKS = {
    "non-numeric partition key": _set(TICK, "purchases_offsets", {"p0": 12}),
    "negative partition key": _set(TICK, "purchases_offsets", {"-1": 12}),
    "partition key with leading zero": _set(TICK, "purchases_offsets", {"01": 12}),
    "partition key with trailing newline": _set(TICK, "purchases_offsets", {"1\n": 12}),
    "negative offset": _set(TICK, "purchases_offsets", {"0": -1}),
    "offset as a string": _set(TICK, "purchases_offsets", {"0": "12"}),
    "offsets as a list": _set(TICK, "purchases_offsets", [12, 7]),
    **{f"missing {field}": _drop(TICK, field) for field in TICK},
    "extra property": _set(TICK, "partition", 0),
    "negative as_of_ms": _set(TICK, "as_of_ms", -1),
    "as_of_ms as a string": _set(TICK, "as_of_ms", str(MIDNIGHT)),
    "as_of_ms past year 9999": _set(TICK, "as_of_ms", 253_402_300_800_000),
    "as_of not UTC": _set(TICK, "as_of", "2026-11-19T01:00:00+01:00"),
    "as_of impossible date": _set(TICK, "as_of", "2026-04-31T00:00:00.000Z"),
    "empty source": _set(TICK, "source", ""),
    "schema_version 2": _set(TICK, "schema_version", 2),
}


def test_the_broken_tick_starts_valid() -> None:
    validate("clock-tick", TICK)
    assert len(INVALID_TICKS) > len(TICK)


@pytest.mark.parametrize("instance", INVALID_TICKS.values(), ids=INVALID_TICKS.keys())
def test_invalid_ticks_are_rejected(instance: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("clock-tick", instance)


def test_evaluator_also_rejects_a_non_numeric_partition_key() -> None:
    """What the schema rejects for the partition keys, the evaluator's decoder rejects too."""
    with pytest.raises(InvalidTick):
        decode_tick(json.dumps(INVALID_TICKS["non-numeric partition key"]).encode())


# --------------------------------------------------------------------------- alerts

CHURN_RISK = Alert(
    "00042",
    861_926_400_000,
    "churn_risk",
    {
        "churn_probability": 0.81,
        "band": "High",
        "previous_band": "Medium",
        "p_alive": 0.4,
        "m_score": 5.0,
        "monetary": 240.5,
        "silent_days": 45.0,
        "model_version": 9.0,
        "model_auc": 0.72,
        "model_ece": 0.05,
    },
)
OVERDUE = Alert(
    "00042",
    854_064_000_000,
    "overdue",
    {"silent_days": 40.0, "usual_gap_days": 10.0, "ratio": 4.0, "purchase_days": 5.0},
)


LIKELY = Alert(
    "00042",
    861_926_400_000,
    "likely_responder",
    {
        "response_propensity": 0.74,
        "churn_probability": 0.03,
        "m_score": 5.0,
        "recency_days": 2.0,
        "model_version": 3.0,
        "model_auc": 0.69,
        "model_ece": 0.04,
    },
)
DRIFT = Alert(
    "segment:Champions",
    861_926_400_000,
    "segment_drift",
    {
        "group": "segment",
        "name": "Champions",
        "metrics": ["size_share"],
        **{
            f"{m}_{w}": v
            for m in ("size_share", "value_share")
            for w, v in (("before", 0.2), ("after", 0.25))
        },
        **{f"mean_{s}_{w}": 4.0 for s in "rfm" for w in ("before", "after")},
        "reference_days": 30.0,
        "customers": 1200.0,
        "entered": 240.0,
        "left": 15.0,
        "top_movers": ["00042", "00043"],
    },
)


@pytest.mark.parametrize(
    "alert",
    [CHURN_RISK, OVERDUE, LIKELY, DRIFT],
    ids=["churn_risk", "overdue", "likely_responder", "segment_drift"],
)
def test_alert_messages_match_the_schema(alert: Alert) -> None:
    value = validate_json("alert", alert_message(alert))
    assert value["alert_id"] == f"{alert.kind}:{alert.customer_id}@{alert.at_ms}"
    assert value["figures"] == alert.figures
    assert value["occurred_at"] == rfc3339(alert.at_ms) and value["reason"]


INVALID_ALERTS = {
    "unknown kind": _set(load_schema("alert")["examples"][1], "kind", "birthday"),
    "responder figures on a churn alert": {
        **load_schema("alert")["examples"][0],
        "figures": {"response_propensity": 0.8},
    },
    "churn figures missing the band": {
        **load_schema("alert")["examples"][0],
        "figures": {k: v for k, v in CHURN_RISK.figures.items() if k != "band"},
    },
    "overdue with churn figures": {**load_schema("alert")["examples"][1], "figures": CHURN_RISK.figures},
    "churn alert without its model's figures": {
        **load_schema("alert")["examples"][0],
        "figures": {k: v for k, v in CHURN_RISK.figures.items() if k != "model_auc"},
    },
    "drift alert naming too many movers": {
        **load_schema("alert")["examples"][3],
        "figures": {**DRIFT.figures, "top_movers": [str(i) for i in range(6)]},
    },
    "band Low is never alerted": {
        **load_schema("alert")["examples"][0],
        "figures": {**CHURN_RISK.figures, "band": "Low"},
    },
}


def test_the_alert_examples_are_valid() -> None:
    for example in load_schema("alert")["examples"]:
        validate("alert", example)


@pytest.mark.parametrize("instance", INVALID_ALERTS.values(), ids=INVALID_ALERTS.keys())
def test_invalid_alerts_are_rejected(instance: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("alert", instance)


# --------------------------------------------------------------------------- date-time profile

SCHEMAS_WITH_TIMES = {
    "segment-change": "occurred_at",
    "customer-segment": "as_of",
    "clock-tick": "as_of",
    "alert": "occurred_at",
}


def test_output_date_time_profile_is_the_same_in_the_three_schemas() -> None:
    defs = [load_schema(name)["$defs"]["rfc3339UtcDateTime"] for name in SCHEMAS_WITH_TIMES]
    assert {d["pattern"] for d in defs} == {defs[0]["pattern"]}
    assert {d["format"] for d in defs} == {"date-time"}


def test_shared_definitions_are_identical() -> None:
    change, segment = load_schema("segment-change")["$defs"], load_schema("customer-segment")["$defs"]
    shared = set(change) & set(segment)
    assert {"customerId", "rfc3339UtcDateTime", "score", "cluster", "clusterName", "rule"} <= shared
    for name in shared:
        assert change[name] == segment[name], name


@pytest.mark.parametrize(("name", "field"), SCHEMAS_WITH_TIMES.items())
def test_date_time_format_is_asserted(name: str, field: str) -> None:
    """2026-02-30 fits the pattern, so only the date-time format check can reject it."""
    valid = load_schema(name)["examples"][0]
    impossible = _set(valid, field, "2026-02-30T00:00:00.000Z")
    assert validator_for(name).format_checker is not None
    assert Draft202012Validator(load_schema(name)).is_valid(impossible)  # pattern only
    assert not validator_for(name).is_valid(impossible)


@pytest.mark.parametrize(("name", "field"), SCHEMAS_WITH_TIMES.items())
def test_utc_rule_holds_without_format_assertion(name: str, field: str) -> None:
    plain = Draft202012Validator(load_schema(name))  # no FormatChecker at all
    valid = load_schema(name)["examples"][0]
    assert plain.is_valid(valid)
    assert plain.is_valid(_set(valid, field, "2026-11-19T00:00:00Z"))
    for bad in ("2026-11-19T00:00:00.000+00:00", "2026-11-19T00:00:00.000z", "2026-11-19 00:00:00.000Z"):
        assert not plain.is_valid(_set(valid, field, bad)), bad


# --------------------------------------------------------------------------- docs/asyncapi.yaml

OUTPUT_CHANNELS = {
    "segmentChanges": ("segment-changes", "segment-change"),
    "customerSegments": ("customer-segments", "customer-segment"),
    "clock": ("clock", "clock-tick"),
    "alerts": ("alerts", "alert"),
}


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _message(asyncapi: dict[str, Any], channel: dict[str, Any]) -> dict[str, Any]:
    (ref,) = [m["$ref"] for m in channel["messages"].values()]
    message: dict[str, Any] = asyncapi["components"]["messages"][ref.removeprefix("#/components/messages/")]
    return message


@pytest.mark.parametrize("channel_id", OUTPUT_CHANNELS)
def test_asyncapi_output_channels(asyncapi: dict[str, Any], channel_id: str) -> None:
    address, schema = OUTPUT_CHANNELS[channel_id]
    channel = asyncapi["channels"][channel_id]
    assert channel["address"] == channel["bindings"]["kafka"]["topic"] == address
    message = _message(asyncapi, channel)
    assert message["payload"]["schemaFormat"] == "application/schema+json;version=draft-2020-12"
    assert message["payload"]["schema"]["$ref"] == f"../schemas/{schema}.schema.json"
    assert message["examples"]
    for example in message["examples"]:
        validate(schema, example["payload"])


def test_asyncapi_topics_are_configured_as_segstream_creates_them(asyncapi: dict[str, Any]) -> None:
    by_address = {channel["address"]: channel for channel in asyncapi["channels"].values()}
    for spec in TOPICS:
        kafka = by_address[spec.name]["bindings"]["kafka"]
        policy = kafka["topicConfiguration"]["cleanup.policy"]
        assert policy == (["compact"] if spec.compacted else ["delete"]), spec.name
        if "partitions" in kafka:
            assert not spec.partitioned and kafka["partitions"] == 1, spec.name
    assert by_address["clock"]["bindings"]["kafka"]["partitions"] == 1
    for address in ("segment-changes", "customer-segments"):
        assert "SEGSTREAM_PARTITIONS" in by_address[address]["description"]


def test_asyncapi_message_keys(asyncapi: dict[str, Any]) -> None:
    keys = {
        cid: _message(asyncapi, asyncapi["channels"][cid])["bindings"]["kafka"]["key"]
        for cid in OUTPUT_CHANNELS
    }
    assert keys["segmentChanges"]["type"] == keys["customerSegments"]["type"] == "string"
    assert "customer_id" in keys["segmentChanges"]["description"]
    assert "customer_id" in keys["customerSegments"]["description"]
    assert keys["clock"]["type"] == "null"


def test_asyncapi_output_operations(asyncapi: dict[str, Any]) -> None:
    operations = asyncapi["operations"].values()
    by_channel = {(op["action"], op["channel"]["$ref"]) for op in operations}
    for channel_id in OUTPUT_CHANNELS:
        assert ("send", f"#/channels/{channel_id}") in by_channel
        assert ("receive", f"#/channels/{channel_id}") in by_channel
    (tick_senders,) = [
        op for op in operations if op["action"] == "send" and op["channel"]["$ref"] == "#/channels/clock"
    ]
    text = json.dumps(tick_senders)
    assert "segstream clock advance" in text
    assert "segstream replay" in text


def test_asyncapi_promises_nothing_for_later(asyncapi: dict[str, Any]) -> None:
    description = asyncapi["info"]["description"]
    assert "Coming later" not in description
    for shipped in ("`alerts`", "`campaign-events`"):
        assert shipped in description


HOSTILE_TICKS = {
    "as_of_ms 1e30": (b'{"as_of_ms": 1e30, "purchases_offsets": {}}', "as_of_ms:"),
    "as_of_ms huge integer": (b'{"as_of_ms": ' + b"9" * 40 + b', "purchases_offsets": {}}', "as_of_ms:"),
    "as_of_ms in 2099": (tick_message(4_070_908_800_000, {}, "cli"), "SEGSTREAM_MAX_CLOCK_SKEW_S"),
    "as_of_ms in 1970": (tick_message(0, {}, "cli"), "SEGSTREAM_EVENT_TIME_FLOOR"),
    "as_of_ms a fraction": (b'{"as_of_ms": 1714521600000.5, "purchases_offsets": {}}', "whole number"),
    "as_of_ms true": (b'{"as_of_ms": true, "purchases_offsets": {}}', "whole number"),
    "negative offset": (b'{"as_of_ms": 1714521600000, "purchases_offsets": {"0": -1}}', ">= 0"),
    "partition not a number": (b'{"as_of_ms": 1714521600000, "purchases_offsets": {"x": 1}}', "partition"),
    "not an object": (b"[1, 2]", "JSON object"),
    "not JSON": (b"\xff{", "payload:"),
    "missing offsets": (b'{"as_of_ms": 1714521600000}', "purchases_offsets: missing"),
    "deep nesting": (
        b'{"as_of_ms": 1714521600000, "purchases_offsets": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "payload:",
    ),
    "over the size limit": (
        b'{"as_of_ms": 1714521600000, "purchases_offsets": {}, "x": "' + b"x" * 300_000 + b'"}',
        "payload:",
    ),
}


@pytest.mark.parametrize(("raw", "says"), HOSTILE_TICKS.values(), ids=HOSTILE_TICKS.keys())
def test_hostile_ticks_are_refused_with_a_short_reason(raw: bytes, says: str) -> None:
    with pytest.raises(InvalidTick) as caught:
        decode_tick(raw, now_ms=1_795_000_000_000)
    assert says in str(caught.value)
    assert len(str(caught.value)) < 400

"""The ``reviews`` contract: the JSON Schema and ``decode_review`` agree, and say why.

Pure tests: every valid review passes both; every invalid one fails both, and the decoder's
reason names the field.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from streams.limits import InputLimits, InvalidEvent
from streams.review_contract import decode_review
from streams.topics import REVIEWS, REVIEWS_DLQ, TOPICS
from tests.schema_helpers import load_schema, validate

REVIEW = {
    "event_id": "rv-1",
    "order_id": "ord-1",
    "customer_id": "00042",
    "score": 4,
    "region": "north",
    "occurred_at": "2017-05-08T00:00:00.000Z",
    "delivered_at": "2017-05-06T12:00:00Z",
    "promised_at": "2017-05-05T00:00:00Z",
}
NOW_MS = 1_795_046_400_000  # 2026-11-19


def _with(**changes: Any) -> dict[str, Any]:
    review = copy.deepcopy(REVIEW)
    review.update(changes)
    return review


def _without(*fields: str) -> dict[str, Any]:
    review = copy.deepcopy(REVIEW)
    for field in fields:
        del review[field]
    return review


# event, expected lateness
VALID = {
    "late": (REVIEW, "late"),
    "on time: delivered before the promise": (_with(delivered_at="2017-05-04T23:59:59Z"), "on_time"),
    "on time: delivered at the promise": (_with(delivered_at="2017-05-05T00:00:00Z"), "on_time"),
    "no delivered_at": (_without("delivered_at"), "undated"),
    "no promised_at": (_without("promised_at"), "undated"),
    "neither date": (_without("delivered_at", "promised_at"), "undated"),
    "null dates": (_with(delivered_at=None, promised_at=None), "undated"),
    "epoch ms everywhere": (
        _with(occurred_at=1494201600000, delivered_at=1494072000000, promised_at=1493942400000),
        "late",
    ),
    "offsets": (
        _with(occurred_at="2017-05-08T02:00:00+02:00", promised_at="2017-05-05T02:00:00+02:00"),
        "late",
    ),
    "score 1": (_with(score=1), "late"),
    "score 5": (_with(score=5), "late"),
    "score as a whole float": (_with(score=3.0), "late"),
    "promise in the future": (_with(promised_at="2030-01-01T00:00:00Z"), "on_time"),
    "unknown field ignored": (_with(channel="app", schema_version=2), "late"),
    "unicode region": (_with(region="Île-de-France"), "late"),
}

INVALID = {
    "missing event_id": (_without("event_id"), "event_id"),
    "missing order_id": (_without("order_id"), "order_id"),
    "missing customer_id": (_without("customer_id"), "customer_id"),
    "missing score": (_without("score"), "score"),
    "missing region": (_without("region"), "region"),
    "missing occurred_at": (_without("occurred_at"), "occurred_at"),
    "blank customer_id": (_with(customer_id="  "), "customer_id"),
    "empty region": (_with(region=""), "region"),
    "region too long": (_with(region="r" * 201), "region"),
    "region as a number": (_with(region=7), "region"),
    "order_id too long": (_with(order_id="o" * 201), "order_id"),
    "score 0": (_with(score=0), "score"),
    "score 6": (_with(score=6), "score"),
    "score fractional": (_with(score=4.5), "score"),
    "score as text": (_with(score="4"), "score"),
    "score true": (_with(score=True), "score"),
    "score null": (_with(score=None), "score"),
    "occurred_at without offset": (_with(occurred_at="2017-05-08T00:00:00"), "occurred_at"),
    "occurred_at in 2099": (_with(occurred_at="2099-01-01T00:00:00Z"), "occurred_at"),
    "occurred_at in epoch seconds": (_with(occurred_at=1494201600), "occurred_at"),
    "delivered_at date only": (_with(delivered_at="2017-05-06"), "delivered_at"),
    "delivered_at in 2099": (_with(delivered_at="2099-01-01T00:00:00Z"), "delivered_at"),
    "delivered_at fractional ms": (_with(delivered_at=1494072000000.5), "delivered_at"),
    "promised_at before the floor": (_with(promised_at="1980-01-01T00:00:00Z"), "promised_at"),
    "promised_at negative": (_with(promised_at=-1), "promised_at"),
    "promised_at as a bool": (_with(promised_at=True), "promised_at"),
}
# the schema cannot see the event-time window, which depends on the wall clock and the settings
WINDOW_ONLY = {
    "occurred_at in 2099",
    "occurred_at in epoch seconds",
    "delivered_at in 2099",
    "promised_at before the floor",
}


@pytest.mark.parametrize(("event", "lateness"), VALID.values(), ids=VALID.keys())
def test_valid_reviews_pass_schema_and_decoder(event: dict[str, Any], lateness: str) -> None:
    validate("review", event)
    decoded = decode_review(json.dumps(event).encode(), now_ms=NOW_MS)
    assert (decoded.customer_id, decoded.region, decoded.score) == (
        event["customer_id"],
        event["region"],
        int(event["score"]),
    )
    assert decoded.occurred_at_ms == 1494201600000
    assert decoded.lateness == lateness


@pytest.mark.parametrize(("event", "field"), INVALID.values(), ids=INVALID.keys())
def test_invalid_reviews_fail_both_naming_the_field(event: dict[str, Any], field: str) -> None:
    name = next(k for k, v in INVALID.items() if v[0] is event)
    if name not in WINDOW_ONLY:
        with pytest.raises(jsonschema.ValidationError):
            validate("review", event)
    with pytest.raises(InvalidEvent) as caught:
        decode_review(json.dumps(event).encode(), now_ms=NOW_MS)
    assert caught.value.reason.startswith(f"{field}: "), caught.value.reason


def test_reasons_read_as_sentences_and_name_the_setting() -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_review(json.dumps(_with(score=6)).encode(), now_ms=NOW_MS)
    assert caught.value.reason == "score: expected a whole number in 1..5, got 6"
    with pytest.raises(InvalidEvent) as caught:
        decode_review(json.dumps(_with(region="r" * 300)).encode(), now_ms=NOW_MS)
    assert "SEGSTREAM_MAX_STRING_LENGTH" in caught.value.reason
    with pytest.raises(InvalidEvent) as caught:
        decode_review(json.dumps(_with(delivered_at="2099-01-01T00:00:00Z")).encode(), now_ms=NOW_MS)
    assert "SEGSTREAM_MAX_CLOCK_SKEW_S" in caught.value.reason


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"not json", "payload: not valid JSON"),
        (b"[1, 2]", "payload: Expected `object`, got `array`"),
        (b"\xff\xfe", "payload: not UTF-8"),
        (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "payload: nested deeper than 32"),
    ],
)
def test_payloads_that_are_no_review_are_rejected(raw: bytes, says: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_review(raw, now_ms=NOW_MS)
    assert caught.value.reason.startswith(says), caught.value.reason


def test_size_limit_applies_before_parsing() -> None:
    raw = json.dumps(_with(note="x" * 3000)).encode()
    with pytest.raises(InvalidEvent) as caught:
        decode_review(raw, InputLimits(max_message_bytes=2048), now_ms=NOW_MS)
    assert "SEGSTREAM_MAX_MESSAGE_BYTES" in caught.value.reason


def test_time_rules_are_the_purchase_rules() -> None:
    ours, purchase = load_schema("review"), load_schema("purchase")
    assert ours["$defs"] == {name: purchase["$defs"][name] for name in ("rfc3339DateTime", "epochMillis")}
    times = purchase["properties"]["occurred_at"]["oneOf"]
    assert ours["properties"]["occurred_at"]["oneOf"] == times
    for field in ("delivered_at", "promised_at"):  # optional: null or absent is "not known"
        assert ours["properties"][field]["oneOf"] == [{"type": "null"}, *times]


def test_topics_are_declared_and_keyed_by_customer() -> None:
    (spec,) = [spec for spec in TOPICS if spec.name == REVIEWS]
    assert spec.partitioned and not spec.compacted
    (dlq,) = [spec for spec in TOPICS if spec.name == REVIEWS_DLQ]
    assert not dlq.partitioned
    assert "customer_id" in load_schema("review")["description"]
    for example in load_schema("review")["examples"]:
        decode_review(json.dumps(example).encode(), now_ms=NOW_MS)

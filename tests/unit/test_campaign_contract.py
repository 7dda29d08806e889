"""The ``campaign-events`` contract: the JSON Schema and ``decode_campaign_event`` agree, and say why.

Pure tests: every valid event passes both; every invalid one fails both, and the decoder's
reason names the field.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from streams.campaign_contract import CONTROL, InvalidEvent, PriorPurchases, decode_campaign_event
from streams.topics import CAMPAIGN_EVENTS, TOPICS
from tests.schema_helpers import load_schema, validate

EXPOSURE = {
    "event_id": "cjc:8:1029:exposure",
    "customer_id": "1029",
    "campaign_id": "8",
    "variant": "treatment",
    "type": "exposure",
    "occurred_at": "2017-05-08T00:00:00.000Z",
}


def _with(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(EXPOSURE)
    event.update(changes)
    return event


def _without(field: str) -> dict[str, Any]:
    event = copy.deepcopy(EXPOSURE)
    del event[field]
    return event


VALID = {
    "exposure": EXPOSURE,
    "response": _with(type="response", event_id="cjc:8:1029:response"),
    "control variant": _with(variant=CONTROL),
    "epoch ms": _with(occurred_at=1494201600000),
    "offset": _with(occurred_at="2017-05-08T02:00:00+02:00"),
    "unknown field ignored": _with(channel="email", schema_version=3),
    "unicode ids": _with(customer_id="kunde-ä", variant="B-ü"),
    "described": _with(
        campaign_type="Type A", campaign_days=49, coupons=209, covered_products=17178, discount_depth=0.2
    ),
    "partly described": _with(covered_products=0, discount_depth=1),
    "prior purchases": _with(prior_days=56, prior_covered_products=4, prior_covered_spend=12.87),
    "prior purchases, none bought": _with(prior_days=38, prior_covered_products=0, prior_covered_spend=0),
    "prior spend only": _with(prior_covered_spend=3),
}

INVALID = {
    "missing event_id": (_without("event_id"), "event_id"),
    "missing customer_id": (_without("customer_id"), "customer_id"),
    "missing campaign_id": (_without("campaign_id"), "campaign_id"),
    "missing variant": (_without("variant"), "variant"),
    "missing type": (_without("type"), "type"),
    "missing occurred_at": (_without("occurred_at"), "occurred_at"),
    "empty customer_id": (_with(customer_id=""), "customer_id"),
    "blank variant": (_with(variant="   "), "variant"),
    "campaign_id too long": (_with(campaign_id="c" * 201), "campaign_id"),
    "campaign_id as a number": (_with(campaign_id=8), "campaign_id"),
    "type click": (_with(type="click"), "type"),
    "type null": (_with(type=None), "type"),
    "occurred_at without offset": (_with(occurred_at="2017-05-08T00:00:00"), "occurred_at"),
    "occurred_at date only": (_with(occurred_at="2017-05-08"), "occurred_at"),
    "occurred_at fractional ms": (_with(occurred_at=1494201600000.5), "occurred_at"),
    "occurred_at negative": (_with(occurred_at=-1), "occurred_at"),
    "occurred_at bool": (_with(occurred_at=True), "occurred_at"),
    "campaign_days 0": (_with(campaign_days=0), "campaign_days"),
    "campaign_days fractional": (_with(campaign_days=4.5), "campaign_days"),
    "coupons negative": (_with(coupons=-1), "coupons"),
    "covered_products as text": (_with(covered_products="12"), "covered_products"),
    "discount_depth above 1": (_with(discount_depth=1.5), "discount_depth"),
    "blank campaign_type": (_with(campaign_type=" "), "campaign_type"),
    "prior_days 0": (_with(prior_days=0), "prior_days"),
    "prior_days above ten years": (_with(prior_days=3661), "prior_days"),
    "prior_covered_products negative": (_with(prior_covered_products=-1), "prior_covered_products"),
    "prior_covered_products fractional": (_with(prior_covered_products=1.5), "prior_covered_products"),
    "prior_covered_spend negative": (_with(prior_covered_spend=-0.01), "prior_covered_spend"),
    "prior_covered_spend as text": (_with(prior_covered_spend="7.5"), "prior_covered_spend"),
    "prior_covered_spend too large": (_with(prior_covered_spend=1e12), "prior_covered_spend"),
}


@pytest.mark.parametrize("event", VALID.values(), ids=VALID.keys())
def test_valid_events_pass_schema_and_decoder(event: dict[str, Any]) -> None:
    validate("campaign-event", event)
    decoded = decode_campaign_event(json.dumps(event).encode())
    assert (decoded.customer_id, decoded.campaign_id, decoded.variant) == (
        event["customer_id"],
        event["campaign_id"],
        event["variant"],
    )
    assert decoded.occurred_at_ms == 1494201600000


@pytest.mark.parametrize(("event", "field"), INVALID.values(), ids=INVALID.keys())
def test_invalid_events_fail_both_naming_the_field(event: dict[str, Any], field: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("campaign-event", event)
    with pytest.raises(InvalidEvent) as caught:
        decode_campaign_event(json.dumps(event).encode())
    assert caught.value.reason.startswith(f"{field}: "), caught.value.reason


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"not json", "payload: not valid JSON"),
        (b"[1, 2]", "payload: Expected `object`, got `array`"),
        (b"\xff\xfe", "payload: not UTF-8"),
    ],
)
def test_payloads_that_are_no_object_are_rejected(raw: bytes, says: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_campaign_event(raw)
    assert caught.value.reason.startswith(says), caught.value.reason


def test_reasons_read_as_sentences() -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_campaign_event(json.dumps(_with(type="click")).encode())
    assert caught.value.reason == "type: expected 'exposure' or 'response', got 'click'"
    with pytest.raises(InvalidEvent) as caught:
        decode_campaign_event(json.dumps(_without("variant")).encode())
    assert caught.value.reason == "variant: missing required field"


def test_time_rules_are_the_purchase_rules() -> None:
    ours, purchase = load_schema("campaign-event"), load_schema("purchase")
    assert ours["$defs"] == {name: purchase["$defs"][name] for name in ("rfc3339DateTime", "epochMillis")}
    assert ours["properties"]["occurred_at"]["oneOf"] == purchase["properties"]["occurred_at"]["oneOf"]


def test_topic_is_declared_and_keyed_by_customer() -> None:
    (spec,) = [spec for spec in TOPICS if spec.name == CAMPAIGN_EVENTS]
    assert spec.partitioned and not spec.compacted
    assert "customer_id" in load_schema("campaign-event")["description"]


def test_descriptor_fields_reach_the_event_and_old_events_carry_none() -> None:
    described = decode_campaign_event(json.dumps(VALID["described"]).encode())
    assert described.descriptor is not None
    assert (described.descriptor.campaign_type, described.descriptor.covered_products) == ("Type A", 17178)
    assert decode_campaign_event(json.dumps(EXPOSURE).encode()).descriptor is None


def test_prior_purchase_fields_reach_the_event_and_old_events_carry_none() -> None:
    prior = decode_campaign_event(json.dumps(VALID["prior purchases"]).encode()).prior
    assert prior == PriorPurchases(prior_days=56, prior_covered_products=4, prior_covered_spend=12.87)
    assert decode_campaign_event(json.dumps(VALID["prior spend only"]).encode()).prior == PriorPurchases(
        prior_covered_spend=3.0
    )
    assert decode_campaign_event(json.dumps(EXPOSURE).encode()).prior is None
    assert decode_campaign_event(json.dumps(VALID["described"]).encode()).prior is None

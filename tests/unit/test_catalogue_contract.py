"""The ``products`` and ``customer-traits`` contracts: the JSON Schemas and the decoders agree, and say why.

Pure tests: every valid message passes both the schema and the decoder; every invalid one fails
both, and the decoder's reason names the field. Hypothesis generates further valid bodies from
the schemas themselves (an oracle independent of the decoder), which the decoder must accept.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis_jsonschema import from_schema

from streams.catalogue_contract import (
    Product,
    Traits,
    decode_product,
    decode_traits,
    encode_product,
    encode_traits,
)
from streams.limits import InputLimits, InvalidEvent
from streams.topics import CUSTOMER_TRAITS, PRODUCTS, TOPICS
from tests.schema_helpers import load_schema, validate

PRODUCT: dict[str, Any] = {
    "sku": "26190",
    "department": "GROCERY",
    "category": "FRUIT - SHELF STABLE",
    "brand": "Private",
    "price": 2.49,
    "attributes": {"package_size": "50 OZ", "product_type": "APPLE SAUCE"},
}
TRAITS: dict[str, Any] = {
    "customer_id": "1",
    "age_band": "65+",
    "income_band": "35-49K",
    "household_size": "2",
    "household_composition": "2 Adults No Kids",
    "region": "North West",
    "attributes": {"home_ownership": "Homeowner"},
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(base)
    body.update(changes)
    return body


def _without(base: dict[str, Any], field: str) -> dict[str, Any]:
    body = copy.deepcopy(base)
    del body[field]
    return body


VALID_PRODUCTS = {
    "full": PRODUCT,
    "department only": {"sku": "1", "department": "MISC"},
    "nulls": _with(PRODUCT, category=None, brand=None, price=None, attributes=None),
    "integer price": _with(PRODUCT, price=3),
    "free price precision": _with(PRODUCT, price=0.333),
    "unknown field ignored": _with(PRODUCT, colour="red"),
    "unicode": _with(PRODUCT, category="Käse", attributes={"Größe": ""}),
}
INVALID_PRODUCTS = {
    "missing department": (_without(PRODUCT, "department"), "department"),
    "missing sku": (_without(PRODUCT, "sku"), "sku"),
    "blank department": (_with(PRODUCT, department="  "), "department"),
    "empty category": (_with(PRODUCT, category=""), "category"),
    "category too long": (_with(PRODUCT, category="c" * 201), "category"),
    "brand as a number": (_with(PRODUCT, brand=7), "brand"),
    "negative price": (_with(PRODUCT, price=-0.01), "price"),
    "huge price": (_with(PRODUCT, price=1e11), "price"),
    "price as text": (_with(PRODUCT, price="2.49"), "price"),
    "price true": (_with(PRODUCT, price=True), "price"),
    "attribute value a number": (_with(PRODUCT, attributes={"size": 50}), "attributes"),
    "attribute name blank": (_with(PRODUCT, attributes={" ": "x"}), "attributes"),
    "attribute value too long": (_with(PRODUCT, attributes={"a": "v" * 201}), "attributes"),
    "too many attributes": (_with(PRODUCT, attributes={f"a{i}": "v" for i in range(1001)}), "attributes"),
    "attributes a list": (_with(PRODUCT, attributes=["a"]), "attributes"),
}
VALID_TRAITS = {
    "full": TRAITS,
    "id only": {"customer_id": "c-7"},
    "size as a number": _with(TRAITS, household_size=5),
    "size band": _with(TRAITS, household_size="5+"),
    "nulls": _with(TRAITS, age_band=None, region=None, attributes=None),
}
INVALID_TRAITS = {
    "missing customer_id": (_without(TRAITS, "customer_id"), "customer_id"),
    "blank age_band": (_with(TRAITS, age_band=" "), "age_band"),
    "size 0": (_with(TRAITS, household_size=0), "household_size"),
    "size fractional": (_with(TRAITS, household_size=2.5), "household_size"),
    "region too long": (_with(TRAITS, region="r" * 201), "region"),
    "income as a list": (_with(TRAITS, income_band=["50-74K"]), "income_band"),
}


def _raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


@pytest.mark.parametrize("body", VALID_PRODUCTS.values(), ids=VALID_PRODUCTS.keys())
def test_valid_products_pass_schema_and_decoder(body: dict[str, Any]) -> None:
    validate("product", body)
    sku, product = decode_product(body["sku"].encode(), _raw(body))
    assert product is not None and sku == product.sku == body["sku"]
    assert product.department == body["department"]
    assert product.category == body.get("category") and product.price == body.get("price")
    assert product.attributes == (body.get("attributes") or {})


@pytest.mark.parametrize(("body", "field"), INVALID_PRODUCTS.values(), ids=INVALID_PRODUCTS.keys())
def test_invalid_products_fail_schema_and_decoder(body: dict[str, Any], field: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("product", body)
    key = str(body.get("sku", "26190")).encode()
    with pytest.raises(InvalidEvent) as caught:
        decode_product(key, _raw(body))
    assert caught.value.reason.startswith(field), caught.value.reason


@pytest.mark.parametrize("body", VALID_TRAITS.values(), ids=VALID_TRAITS.keys())
def test_valid_traits_pass_schema_and_decoder(body: dict[str, Any]) -> None:
    validate("customer-traits", body)
    customer, traits = decode_traits(body["customer_id"].encode(), _raw(body))
    assert traits is not None and customer == traits.customer_id == body["customer_id"]
    size = body.get("household_size")
    assert traits.household_size == (None if size is None else str(size))


@pytest.mark.parametrize(("body", "field"), INVALID_TRAITS.values(), ids=INVALID_TRAITS.keys())
def test_invalid_traits_fail_schema_and_decoder(body: dict[str, Any], field: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("customer-traits", body)
    with pytest.raises(InvalidEvent) as caught:
        decode_traits(str(body.get("customer_id", "1")).encode(), _raw(body))
    assert caught.value.reason.startswith(field), caught.value.reason


MESSAGES = {  # (key, value, reason prefix): what the schema cannot see, the message itself
    "no key": (None, _raw(PRODUCT), "key: missing"),
    "key not UTF-8": (b"\xff\xfe", _raw(PRODUCT), "key: not UTF-8"),
    "blank key": (b" ", _raw(PRODUCT), "key: must be a non-empty"),
    "key too long": (b"k" * 201, None, "key: 201 characters"),
    "key is another sku": (b"26191", _raw(PRODUCT), "sku: '26190' does not match the message key '26191'"),
    "empty value": (b"26190", b"", "payload: empty message value"),
    "not JSON": (b"26190", b"{oops", "payload: not valid JSON"),
    "not UTF-8": (b"26190", b'{"sku":"26190","department":"\xff"}', "payload: not UTF-8"),
    "too deep": (
        b"26190",
        b'{"sku":"26190","department":"D","x":' + b"[" * 40 + b"]" * 40 + b"}",
        "payload: nested",
    ),
    "too large": (
        b"26190",
        b'{"sku":"26190","department":"D","x":"' + b"y" * 300_000 + b'"}',
        "payload: 300,",
    ),
}


@pytest.mark.parametrize(("key", "value", "reason"), MESSAGES.values(), ids=MESSAGES.keys())
def test_hostile_messages_are_refused_with_a_reason(
    key: bytes | None, value: bytes | None, reason: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_product(key, value)
    assert caught.value.reason.startswith(reason), caught.value.reason


def test_a_tombstone_deletes_and_needs_only_a_valid_key() -> None:
    assert decode_product(b"26190", None) == ("26190", None)
    assert decode_traits(b"c-7", None) == ("c-7", None)
    with pytest.raises(InvalidEvent, match="key: missing"):
        decode_traits(None, None)


def test_limits_are_settings() -> None:
    tight = InputLimits(max_string_length=5, max_items=1)
    with pytest.raises(InvalidEvent, match="SEGSTREAM_MAX_STRING_LENGTH"):
        decode_product(b"26190", _raw({"sku": "26190", "department": "GROCERY"}), tight)
    with pytest.raises(InvalidEvent, match="SEGSTREAM_MAX_ITEMS"):
        decode_traits(b"1", _raw({"customer_id": "1", "attributes": {"a": "1", "b": "2"}}), tight)


def test_encoded_values_round_trip_and_match_the_schemas() -> None:
    product = Product("812", "GROCERY", "SOUP", None, 1.29, {"size": "10 OZ"})
    traits = Traits("7", "45-54", None, "2", "2 Adults Kids", None, {})
    validate("product", json.loads(encode_product(product)))
    validate("customer-traits", json.loads(encode_traits(traits)))
    assert decode_product(b"812", encode_product(product)) == ("812", product)
    assert decode_traits(b"7", encode_traits(traits)) == ("7", traits)


def test_the_topics_are_compacted_and_have_dead_letter_topics() -> None:
    specs = {spec.name: spec for spec in TOPICS}
    for name in (PRODUCTS, CUSTOMER_TRAITS):
        assert specs[name].compacted and specs[name].partitioned
        assert not specs[f"{name}.dlq"].compacted


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=from_schema(load_schema("product")))
def test_every_product_the_schema_accepts_the_decoder_accepts(body: dict[str, Any]) -> None:
    raw = msgspec.json.encode(body)
    sku, product = decode_product(body["sku"].encode(), raw)
    assert product is not None and product.sku == sku


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=from_schema(load_schema("customer-traits")))
def test_every_traits_body_the_schema_accepts_the_decoder_accepts(body: dict[str, Any]) -> None:
    raw = msgspec.json.encode(body)
    customer, traits = decode_traits(body["customer_id"].encode(), raw)
    assert traits is not None and traits.customer_id == customer


def test_the_customer_page_shows_traits_as_the_topic_defines_them() -> None:
    page = load_schema("http-customer")["$defs"]["traits"]
    assert page["properties"] == load_schema("customer-traits")["properties"]
    assert "traits" in load_schema("http-customer")["required"]

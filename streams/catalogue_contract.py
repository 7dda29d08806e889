"""The ``products`` and ``customer-traits`` wire contracts: compacted topics of the latest value per key.

``products`` (key = sku, ``schemas/product.schema.json``): a product's department, optional
category and brand, optional price and string attributes. ``customer-traits`` (key =
customer_id, ``schemas/customer-traits.schema.json``): a customer's optional age band, income
band, household size and composition, region and string attributes. Both topics are compacted:
the latest message per key is the entry, and a *tombstone* (a null value) deletes it.

The body repeats its key (``sku``, ``customer_id``) and must equal the message key, so a
record can never land under another key than the one compaction keeps it by. Everything is
checked against the same hostile-input bounds as purchases (``streams.limits``: size,
nesting, string lengths; at most ``max_items`` attributes); a message that breaks the contract
goes to ``products.dlq`` / ``customer-traits.dlq`` with the reason.

>>> decode_product(b"812", b'{"sku":"812","department":"GROCERY","category":"SOUP","price":1.29}')
('812', Product(sku='812', department='GROCERY', category='SOUP', brand=None, price=1.29, attributes={}))
>>> decode_product(b"812", None)  # a tombstone: delete the entry
('812', None)
>>> decode_traits(b"7", b'{"customer_id":"7","age_band":"45-54","household_size":2}')[1].household_size
'2'
>>> decode_product(b"812", b'{"sku":"813","department":"GROCERY"}')
Traceback (most recent call last):
...
streams.limits.InvalidEvent: sku: '813' does not match the message key '812'
"""

from __future__ import annotations

import math

import msgspec

from streams.contract import DEFAULT_LIMITS, _check_id, decode_wire
from streams.limits import InputLimits, InvalidEvent, brief

__all__ = [
    "MAX_HOUSEHOLD_SIZE",
    "MAX_PRICE",
    "Product",
    "Traits",
    "decode_product",
    "decode_traits",
    "encode_product",
    "encode_traits",
]

MAX_PRICE = 1e11
MAX_HOUSEHOLD_SIZE = 1000


class Product(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """The latest catalogue entry of one product (``sku`` = the message key)."""

    sku: str
    department: str
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    attributes: dict[str, str] = {}


class Traits(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """What is known of one customer besides their purchases; every trait optional.

    ``household_size`` is a band as text (``"2"``, ``"5+"``); a whole number on the wire is
    kept as its text.
    """

    customer_id: str
    age_band: str | None = None
    income_band: str | None = None
    household_size: str | None = None
    household_composition: str | None = None
    region: str | None = None
    attributes: dict[str, str] = {}


class _WireProduct(msgspec.Struct, forbid_unknown_fields=False):
    sku: str
    department: str
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    attributes: dict[str, str] | None = None


class _WireTraits(msgspec.Struct, forbid_unknown_fields=False):
    customer_id: str
    age_band: str | None = None
    income_band: str | None = None
    household_size: str | int | None = None
    household_composition: str | None = None
    region: str | None = None
    attributes: dict[str, str] | None = None


_products = msgspec.json.Decoder(_WireProduct)
_traits = msgspec.json.Decoder(_WireTraits)
_encode = msgspec.json.Encoder().encode


def encode_product(product: Product) -> bytes:
    """The ``products`` value of ``product`` (what the replay publishes and the store keeps)."""
    return _encode(product)


def encode_traits(traits: Traits) -> bytes:
    """The ``customer-traits`` value of ``traits``."""
    return _encode(traits)


def _key(field: str, key: bytes | None, limits: InputLimits) -> str:
    """The message key as text: required, UTF-8, non-empty, within the string limit."""
    if key is None:
        raise InvalidEvent(f"key: missing; the message key is the {field}")
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEvent("key: not UTF-8") from None
    _check_id("key", text, limits)
    return text


def _value(
    field: str, key: bytes | None, value: bytes | None, limits: InputLimits
) -> tuple[str, bytes | None]:
    name = _key(field, key, limits)
    if value is not None:
        if not value:
            raise InvalidEvent("payload: empty message value (a deletion is a null value, a tombstone)")
        limits.check_size(value)
    return name, value


def _same_key(field: str, body: str, key: str, limits: InputLimits) -> None:
    _check_id(field, body, limits)
    if body != key:
        raise InvalidEvent(f"{field}: {brief(body)} does not match the message key {brief(key)}")


def _optional_text(limits: InputLimits, **fields: str | None) -> None:
    for name, value in fields.items():
        if value is not None:
            _check_id(name, value, limits)


def _attributes(attributes: dict[str, str] | None, limits: InputLimits) -> dict[str, str]:
    """String attributes: at most ``max_items`` of them, names and values within the string limit."""
    found = attributes or {}
    limits.check_count("attributes", len(found))
    for name, value in found.items():
        _check_id("attributes (a name)", name, limits)
        limits.check_string(f"attributes[{brief(name)}]", value)
    return dict(sorted(found.items()))


def decode_product(
    key: bytes | None, value: bytes | None, limits: InputLimits = DEFAULT_LIMITS
) -> tuple[str, Product | None]:
    """``(sku, product)`` of one ``products`` message, ``(sku, None)`` for a tombstone.

    Raises :class:`~streams.limits.InvalidEvent` naming the field and the rule broken.
    """
    sku, raw = _value("sku", key, value, limits)
    if raw is None:
        return sku, None
    wire = decode_wire(_products, raw, limits)
    _same_key("sku", wire.sku, sku, limits)
    _check_id("department", wire.department, limits)
    _optional_text(limits, category=wire.category, brand=wire.brand)
    price = wire.price
    if price is not None and not (math.isfinite(price) and 0 <= price < MAX_PRICE):
        raise InvalidEvent(f"price: expected a number in [0, {MAX_PRICE:.0e}), got {brief(price)}")
    return sku, Product(
        sku, wire.department, wire.category, wire.brand, price, _attributes(wire.attributes, limits)
    )


def decode_traits(
    key: bytes | None, value: bytes | None, limits: InputLimits = DEFAULT_LIMITS
) -> tuple[str, Traits | None]:
    """``(customer_id, traits)`` of one ``customer-traits`` message, ``(customer_id, None)`` for a tombstone."""
    customer, raw = _value("customer_id", key, value, limits)
    if raw is None:
        return customer, None
    wire = decode_wire(_traits, raw, limits)
    _same_key("customer_id", wire.customer_id, customer, limits)
    size = wire.household_size
    if isinstance(size, int):
        if not 1 <= size <= MAX_HOUSEHOLD_SIZE:
            raise InvalidEvent(f"household_size: expected a number in 1..{MAX_HOUSEHOLD_SIZE}, got {size}")
        size = str(size)
    _optional_text(
        limits,
        age_band=wire.age_band,
        income_band=wire.income_band,
        household_size=size,
        household_composition=wire.household_composition,
        region=wire.region,
    )
    return customer, Traits(
        customer,
        wire.age_band,
        wire.income_band,
        size,
        wire.household_composition,
        wire.region,
        _attributes(wire.attributes, limits),
    )

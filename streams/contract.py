"""The ``purchases`` wire contract (README "Wire contract", ``schemas/purchase.schema.json``) and its validation.

``decode_purchase`` turns raw message bytes into a :class:`Purchase` or raises
:class:`InvalidEvent` whose ``reason`` names the field and the rule broken.

>>> p = decode_purchase(b'{"event_id":"e1","customer_id":"c1",'
...                     b'"occurred_at":"1997-01-01T00:00:00Z","amount":11.77}')
>>> p.amount_cents, p.type, p.occurred_at_ms
(1177, 'purchase', 852076800000)
>>> decode_purchase(b'{"event_id":"e1","customer_id":"c1","amount":1}')
Traceback (most recent call last):
...
streams.limits.InvalidEvent: occurred_at: missing required field
>>> decode_purchase(b'{"event_id":"e1","customer_id":"c1","occurred_at":"2099-01-01T00:00:00Z","amount":1}')
Traceback (most recent call last):
...
streams.limits.InvalidEvent: occurred_at: 2099-01-01T00:00:00.000Z is later than the wall clock at receipt plus the allowed skew of 3600 s (SEGSTREAM_MAX_CLOCK_SKEW_S)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from streams.limits import InputLimits, InvalidEvent, brief, wall_clock_ms

__all__ = [
    "DEFAULT_LIMITS",
    "EventType",
    "InvalidEvent",
    "Item",
    "Purchase",
    "decode_purchase",
    "decode_wire",
    "encode_purchase",
]

EventType = Literal["purchase", "refund"]
DEFAULT_LIMITS = InputLimits()

# Same profile as schemas/purchase.schema.json: uppercase T and Z, seconds, offset required.
_RFC3339 = re.compile(
    r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]+)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_JSON_NUMBER = re.compile(rb"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MISSING = re.compile(r"Object missing required field `([^`]+)`(?: - at `([^`]+)`)?")
_AT_PATH = re.compile(r"(.+) - at `([^`]+)`")
_CENT = Decimal("0.01")
_MAX_AMOUNT = Decimal(10) ** 11


class Item(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """One basket line; feeds basket analytics."""

    sku: str
    quantity: float
    unit_price: float
    category: str | None = None


class _WirePurchase(msgspec.Struct, forbid_unknown_fields=False):
    event_id: str
    customer_id: str
    occurred_at: str | int | float
    amount: msgspec.Raw
    type: str = "purchase"
    order_id: str | UnsetType = UNSET
    currency: str | UnsetType = UNSET
    channel: str | UnsetType = UNSET
    region: str | UnsetType = UNSET
    items: list[Item] | UnsetType = UNSET


class Purchase(msgspec.Struct, frozen=True):
    """A validated purchase or refund: event time in epoch ms, money in cents."""

    event_id: str
    customer_id: str
    occurred_at_ms: int
    amount_cents: int
    type: EventType = "purchase"
    order_id: str | None = None
    currency: str | None = None
    channel: str | None = None
    region: str | None = None
    items: tuple[Item, ...] | None = None
    utc_offset_min: int | None = None
    """The offset of ``occurred_at`` from UTC in minutes when it came as RFC 3339 text with one
    (``+09:00`` -> 540, ``Z`` -> 0); None for epoch milliseconds and for ``-00:00`` (RFC 3339:
    local offset unknown). Best time reads the customer's local hour from it."""


_decoder = msgspec.json.Decoder(_WirePurchase)
_Wire = TypeVar("_Wire")


def decode_wire(
    decoder: msgspec.json.Decoder[_Wire], raw: bytes, limits: InputLimits = DEFAULT_LIMITS
) -> _Wire:
    """``raw`` JSON as the decoder's wire struct; :class:`InvalidEvent` names the field at fault.

    The whole payload must be UTF-8 (msgspec does not look at the bytes of fields it skips), and
    nesting too deep for the decoder is refused, not raised.
    """
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"payload: not UTF-8 (invalid byte at position {exc.start})") from None
    limits.check_depth(raw)
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(_field_first(str(exc))) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"payload: not valid JSON ({exc})") from None
    except RecursionError:
        raise InvalidEvent("payload: nested too deeply to decode") from None


def decode_purchase(raw: bytes, limits: InputLimits = DEFAULT_LIMITS, now_ms: int | None = None) -> Purchase:
    """Validate one ``purchases`` message value; raise :class:`InvalidEvent` on any breach.

    ``now_ms`` is the wall clock at receipt (the accepted window's upper end; default: now).
    """
    limits.check_size(raw)
    wire = decode_wire(_decoder, raw, limits)
    _check_id("event_id", wire.event_id, limits)
    _check_id("customer_id", wire.customer_id, limits)
    for field in ("order_id", "currency", "channel", "region"):
        value = getattr(wire, field)
        if value is not UNSET:
            limits.check_string(field, value)
    if wire.type not in ("purchase", "refund"):
        raise InvalidEvent(f"type: expected 'purchase' or 'refund', got {brief(wire.type)}")
    kind: EventType = "purchase" if wire.type == "purchase" else "refund"
    occurred_at_ms = _epoch_ms(wire.occurred_at)
    offset_min = _offset_minutes(wire.occurred_at)
    limits.check_event_time("occurred_at", occurred_at_ms, wall_clock_ms() if now_ms is None else now_ms)
    cents = _amount_cents(bytes(wire.amount))
    if kind == "purchase" and cents < 0:
        raise InvalidEvent("amount: a purchase amount must be >= 0 (refunds use type 'refund')")
    if kind == "refund" and cents > 0:
        raise InvalidEvent("amount: a refund carries the money returned as a negative number")
    items = wire.items or None
    limits.check_count("items", len(items or ()))
    for i, item in enumerate(items or ()):
        limits.check_string(f"items[{i}].sku", item.sku)
        if item.category is not None:
            limits.check_string(f"items[{i}].category", item.category)
        if item.quantity <= 0 or item.unit_price < 0:
            raise InvalidEvent(f"items: sku {brief(item.sku)} needs quantity > 0 and unit_price >= 0")
    currency = None if wire.currency is UNSET else wire.currency
    if currency is not None and not _CURRENCY.fullmatch(currency):
        raise InvalidEvent(f"currency: expected a 3-letter uppercase ISO 4217 code, got {brief(currency)}")
    return Purchase(
        event_id=wire.event_id,
        customer_id=wire.customer_id,
        occurred_at_ms=occurred_at_ms,
        amount_cents=cents,
        type=kind,
        order_id=wire.order_id or None,
        currency=currency,
        channel=wire.channel or None,
        region=wire.region or None,
        items=tuple(items) if items is not None else None,
        utc_offset_min=offset_min,
    )


def _field_first(message: str) -> str:
    """msgspec's wording, field first: ``customer_id: expected `str`, got `int```.

    >>> _field_first("Object missing required field `occurred_at`")
    'occurred_at: missing required field'
    >>> _field_first("Expected `str`, got `int` - at `$.items[0].sku`")
    'items[0].sku: expected `str`, got `int`'
    """
    if match := _MISSING.fullmatch(message):
        path = match.group(2)
        prefix = f"{path.removeprefix('$.')}." if path else ""
        return f"{prefix}{match.group(1)}: missing required field"
    if match := _AT_PATH.fullmatch(message):
        text, path = match.groups()
        return f"{path.removeprefix('$.') if path != '$' else 'payload'}: {text[0].lower()}{text[1:]}"
    return f"payload: {message}"


def encode_purchase(**fields: Any) -> bytes:
    """Serialise a wire event (used by producers and tests): ``encode_purchase(event_id=..., ...)``."""
    return msgspec.json.encode(fields)


def _check_id(field: str, value: str, limits: InputLimits) -> None:
    if not value.strip():
        raise InvalidEvent(f"{field}: must be a non-empty string")
    limits.check_string(field, value)


def _amount_cents(text: bytes) -> int:
    if not _JSON_NUMBER.fullmatch(text):
        raise InvalidEvent("amount: expected a JSON number")
    value = Decimal(text.decode())
    if abs(value) >= _MAX_AMOUNT:
        raise InvalidEvent(f"amount: magnitude must be below {_MAX_AMOUNT}")
    try:
        exact = value.quantize(_CENT) == value
    except InvalidOperation:
        exact = False
    if not exact:
        raise InvalidEvent("amount: money is exact to the cent (at most 2 decimal places)")
    return int(value * 100)


def _offset_minutes(occurred_at: str | int | float) -> int | None:
    """The UTC offset of a validated RFC 3339 time in minutes; None for epoch ms or ``-00:00``.

    >>> _offset_minutes("2024-05-01T10:00:00+09:30"), _offset_minutes("2024-05-01T10:00:00Z")
    (570, 0)
    >>> _offset_minutes("2024-05-01T10:00:00-05:00"), _offset_minutes("2024-05-01T10:00:00-00:00")
    (-300, None)
    >>> _offset_minutes(1714557600000) is None
    True
    """
    if not isinstance(occurred_at, str):
        return None
    if occurred_at.endswith("Z"):
        return 0
    sign, hours, minutes = occurred_at[-6], int(occurred_at[-5:-3]), int(occurred_at[-2:])
    if sign == "-" and hours == minutes == 0:
        return None
    return (hours * 60 + minutes) * (1 if sign == "+" else -1)


def _epoch_ms(occurred_at: str | int | float, field: str = "occurred_at") -> int:
    """``occurred_at`` (RFC 3339 with offset, or whole epoch ms) as epoch ms; ``field`` names it in a reason."""
    if isinstance(occurred_at, float):
        if not occurred_at.is_integer():
            raise InvalidEvent(f"{field}: epoch milliseconds must be a whole number")
        occurred_at = int(occurred_at)
    if isinstance(occurred_at, int):
        if not 0 <= occurred_at <= MAX_EPOCH_MS:
            raise InvalidEvent(f"{field}: epoch milliseconds must be in 0..{MAX_EPOCH_MS}")
        return occurred_at
    if not _RFC3339.fullmatch(occurred_at):
        raise InvalidEvent(f"{field}: expected RFC 3339 with offset (e.g. 2024-05-01T10:00:00Z)")
    try:
        moment = datetime.fromisoformat(occurred_at)
    except ValueError as exc:
        raise InvalidEvent(f"{field}: {exc}") from None
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    millis = delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    if not 0 <= millis <= MAX_EPOCH_MS:
        raise InvalidEvent(f"{field}: must lie between 1970-01-01 and 9999-12-31 (UTC)")
    return millis

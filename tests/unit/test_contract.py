"""``decode_purchase`` against the wire contract, and the JSON Schema against the decoder.

One table drives three tests: what the decoder does with each payload, whether the reason
names the offending field first (the DLQ contract), and whether ``schemas/purchase.schema.json``
reaches the same valid/invalid verdict. Rows where the two cannot agree say why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from jsonschema import ValidationError

from streams.contract import InvalidEvent, decode_purchase
from streams.limits import InputLimits
from tests.conftest import purchase
from tests.schema_helpers import validate_json

AT = "2024-05-01T10:00:00Z"
AT_MS = 1_714_557_600_000
FLOOR_MS = 631_152_000_000  # the default SEGSTREAM_EVENT_TIME_FLOOR, 1990-01-01
WINDOW = "the accepted event-time window depends on settings and the receipt time; the schema checks shape"
SIZE = "the message size limit is on bytes (SEGSTREAM_MAX_MESSAGE_BYTES), which a schema cannot state"


def wire(drop: tuple[str, ...] = (), **overrides: Any) -> bytes:
    """A valid event as JSON bytes; ``overrides`` may set a field to ``None`` (JSON null)."""
    event = purchase(event_id="e-1", customer_id="c1", occurred_at=AT, amount=12.5)
    event.update(overrides)
    for name in drop:
        del event[name]
    return json.dumps(event).encode()


def raw(amount: str = "12.5", occurred_at: str = f'"{AT}"', **fields: str) -> bytes:
    """Hand-written JSON, for number spellings ``json.dumps`` never produces (``1e2``, ``1.7e12``)."""
    extra = "".join(f',"{name}":{value}' for name, value in fields.items())
    return (
        f'{{"event_id":"e-1","customer_id":"c1","occurred_at":{occurred_at},"amount":{amount}{extra}}}'
    ).encode()


@dataclass(frozen=True)
class Case:
    id: str
    raw: bytes
    cents: int | None = None  # valid: expected amount_cents
    at_ms: int | None = None  # valid: expected occurred_at_ms
    kind: str = "purchase"  # valid: expected type
    field: str | None = None  # invalid: the field the reason must name ("" = whole document)
    mentions: str = ""  # invalid, whole document: text the reason must contain
    schema_differs: str = ""  # legitimate disagreement: the schema must give the opposite verdict

    @property
    def valid(self) -> bool:
        return self.cents is not None


CASES = [
    # ---- valid
    Case("rfc3339-utc", wire(), cents=1250, at_ms=AT_MS),
    Case("type-omitted-means-purchase", wire(drop=("type",)), cents=1250, at_ms=AT_MS),
    Case("refund-negative", wire(type="refund", amount=-5.25), cents=-525, at_ms=AT_MS, kind="refund"),
    Case("refund-zero", wire(type="refund", amount=0), cents=0, at_ms=AT_MS, kind="refund"),
    Case("purchase-zero", wire(amount=0), cents=0, at_ms=AT_MS),
    Case("two-decimals-19.99", wire(amount=19.99), cents=1999, at_ms=AT_MS),
    Case("exponent-1e2", raw(amount="1e2"), cents=10_000, at_ms=AT_MS),
    Case("just-below-1e11", raw(amount="99999999999.99"), cents=9_999_999_999_999, at_ms=AT_MS),
    Case("epoch-ms-int", wire(occurred_at=AT_MS), cents=1250, at_ms=AT_MS),
    Case("epoch-ms-whole-float-1.7e12", raw(occurred_at="1.7e12"), cents=1250, at_ms=1_700_000_000_000),
    Case("epoch-ms-at-the-floor", wire(occurred_at=FLOOR_MS), cents=1250, at_ms=FLOOR_MS),
    Case("rfc3339-offset", wire(occurred_at="2024-05-01T12:00:00+02:00"), cents=1250, at_ms=AT_MS),
    Case("rfc3339-fraction", wire(occurred_at="2024-05-01T10:00:00.123Z"), cents=1250, at_ms=AT_MS + 123),
    Case("id-200-chars", wire(event_id="x" * 200), cents=1250, at_ms=AT_MS),
    Case("unknown-extra-field", wire(gift_wrap=True), cents=1250, at_ms=AT_MS),
    Case(
        "items-ok",
        wire(items=[{"sku": "a", "quantity": 2, "unit_price": 1.5, "colour": "red"}]),
        cents=1250,
        at_ms=AT_MS,
    ),
    Case("order_id-null", wire(order_id=None), field="order_id"),
    Case("currency-lowercase", wire(currency="usd"), field="currency"),
    # ---- invalid: the document
    Case("not-json", b"{oops", field="", mentions="malformed"),
    Case("empty-bytes", b"", field="", mentions="truncated"),
    Case("json-array", b'[{"event_id":"e-1"}]', field="", mentions="object"),
    Case(
        "lone-surrogate-escape",
        b'{"event_id":"\\ud800","customer_id":"c1","occurred_at":1,"amount":1}',
        field="",
        mentions="surrogate",
        schema_differs="Python's json.loads accepts a lone \\ud800 escape (RFC 8259 leaves it "
        "undefined); msgspec rejects it, which is the safer verdict",
    ),
    # ---- invalid: required fields and types
    *(
        Case(f"missing-{name}", wire(drop=(name,)), field=name)
        for name in ("event_id", "customer_id", "occurred_at", "amount")
    ),
    Case("amount-as-string", wire(amount="12.50"), field="amount"),
    Case("amount-as-bool", wire(amount=True), field="amount"),
    Case("customer_id-as-number", wire(customer_id=42), field="customer_id"),
    Case("occurred_at-bool", wire(occurred_at=True), field="occurred_at"),
    Case("occurred_at-float-fraction", wire(occurred_at=1.5), field="occurred_at"),
    Case("occurred_at-negative-ms", wire(occurred_at=-1), field="occurred_at"),
    Case("occurred_at-past-9999", wire(occurred_at=253_402_300_800_000), field="occurred_at"),
    # ---- invalid: outside the accepted event-time window (settings and receipt time; shape is fine)
    Case("epoch-ms-zero", wire(occurred_at=0), field="occurred_at", schema_differs=WINDOW),
    Case("just-before-the-floor", wire(occurred_at=FLOOR_MS - 1), field="occurred_at", schema_differs=WINDOW),
    Case(
        "epoch-seconds",
        wire(occurred_at=AT_MS // 1000),
        field="occurred_at",
        mentions="epoch seconds",
        schema_differs=WINDOW,
    ),
    Case("year-1900", wire(occurred_at="1900-01-01T00:00:00Z"), field="occurred_at", schema_differs=WINDOW),
    Case("year-2099", wire(occurred_at="2099-01-01T00:00:00Z"), field="occurred_at", schema_differs=WINDOW),
    Case("epoch-ms-max", wire(occurred_at=253_402_300_799_999), field="occurred_at", schema_differs=WINDOW),
    # ---- invalid: money
    Case("negative-purchase", wire(amount=-5), field="amount"),
    Case("positive-refund", wire(type="refund", amount=5), field="amount"),
    Case("three-decimals", wire(amount=12.345), field="amount"),
    Case("amount-1e11", raw(amount="100000000000"), field="amount"),
    Case(
        "refund-minus-1e11",
        raw(amount="-1e11", type='"refund"'),
        field="amount",
    ),
    Case(
        "amount-1e-400",
        raw(amount="1e-400"),
        field="amount",
        schema_differs="json.loads rounds 1e-400 to 0.0, so the schema sees a valid 0; the "
        "decoder reads the number as written",
    ),
    # ---- invalid: type
    Case("type-gift", wire(type="gift"), field="type"),
    Case("type-null", wire(type=None), field="type"),
    # ---- invalid: timestamps
    Case("lowercase-t", wire(occurred_at="2024-05-01t10:00:00Z"), field="occurred_at"),
    Case("lowercase-z", wire(occurred_at="2024-05-01T10:00:00z"), field="occurred_at"),
    Case("no-offset", wire(occurred_at="2024-05-01T10:00:00"), field="occurred_at"),
    Case("no-seconds", wire(occurred_at="2024-05-01T10:00Z"), field="occurred_at"),
    Case("leap-second", wire(occurred_at="2016-12-31T23:59:60Z"), field="occurred_at"),
    Case("trailing-newline", wire(occurred_at=AT + "\n"), field="occurred_at"),
    Case(
        "impossible-date-2024-02-30",
        wire(occurred_at="2024-02-30T10:00:00Z"),
        field="occurred_at",
    ),
    # ---- invalid: ids
    Case("event_id-empty", wire(event_id=""), field="event_id"),
    Case("event_id-whitespace", wire(event_id="   "), field="event_id"),
    Case("customer_id-whitespace", wire(customer_id="\t\n"), field="customer_id"),
    Case("event_id-201-chars", wire(event_id="x" * 201), field="event_id"),
    Case("customer_id-201-chars", wire(customer_id="é" * 201), field="customer_id"),
    # ---- invalid: limits (SEGSTREAM_MAX_STRING_LENGTH, _MAX_ITEMS, _MAX_MESSAGE_BYTES)
    *(
        Case(f"{name}-201-chars", wire(**{name: "x" * 201}), field=name)
        for name in ("order_id", "channel", "region")
    ),
    Case("order_id-500-KB", wire(order_id="x" * 500_000), field="payload"),
    Case(
        "items-1001",
        wire(items=[{"sku": f"s{i}", "quantity": 1, "unit_price": 1} for i in range(1001)]),
        field="items",
    ),
    Case(
        "items-50k",
        wire(items=[{"sku": "s", "quantity": 1, "unit_price": 1}] * 50_000),
        field="payload",
    ),
    Case(
        "sku-201-chars",
        wire(items=[{"sku": "x" * 201, "quantity": 1, "unit_price": 1}]),
        field="items[0].sku",
    ),
    Case(
        "category-201-chars",
        wire(items=[{"sku": "a", "category": "x" * 201, "quantity": 1, "unit_price": 1}]),
        field="items[0].category",
    ),
    Case("payload-1-MB", wire(note="x" * 1_000_000), field="payload", schema_differs=SIZE),
    Case(
        "nested-1000-deep",
        raw(note=("[" * 1000) + ("]" * 1000)),
        field="payload",
        mentions="nested deeper than 32",
    ),
    Case(
        "nested-33-deep",
        raw(note=("[" * 32) + ("]" * 32)),
        field="payload",
        mentions="nested deeper than 32",
        schema_differs="nesting depth is a setting (SEGSTREAM_MAX_NESTING_DEPTH) a schema cannot state",
    ),
    Case("nested-32-deep-is-fine", raw(note=("[" * 31) + ("]" * 31)), cents=1250, at_ms=AT_MS),
    Case("brackets-inside-strings-do-not-nest", raw(note='"' + "[" * 100 + '"'), cents=1250, at_ms=AT_MS),
    Case("currency-empty", wire(currency=""), field="currency"),
    Case(
        "not-utf8-in-an-unknown-field",
        raw(note='"XX"').replace(b"XX", b"\xff\xfe"),
        field="payload",
        mentions="UTF-8",
    ),
    Case(
        "not-utf8-in-region", raw(region='"aXXb"').replace(b"XX", b"\xff"), field="payload", mentions="UTF-8"
    ),
    # ---- invalid: items
    Case("item-quantity-0", wire(items=[{"sku": "a", "quantity": 0, "unit_price": 1}]), field="items"),
    Case("item-negative-price", wire(items=[{"sku": "a", "quantity": 1, "unit_price": -1}]), field="items"),
    Case(
        "item-without-sku",
        wire(items=[{"quantity": 1, "unit_price": 1}]),
        field="items[0].sku",
    ),
]

INVALID_FIELD_CASES = [c for c in CASES if c.field]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_decoder_verdict(case: Case) -> None:
    if case.valid:
        event = decode_purchase(case.raw)
        assert (event.amount_cents, event.occurred_at_ms, event.type) == (case.cents, case.at_ms, case.kind)
        return
    with pytest.raises(InvalidEvent) as caught:
        decode_purchase(case.raw)
    assert (case.field or case.mentions) in caught.value.reason
    assert case.mentions in caught.value.reason
    assert len(caught.value.reason) < 400, "a reason never carries the offending value whole"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in INVALID_FIELD_CASES])
def test_reason_names_the_field_first(case: Case) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_purchase(case.raw)
    assert caught.value.reason.startswith(f"{case.field}:")


def _schema_accepts(payload: bytes) -> bool:
    try:
        validate_json("purchase", payload)
    except (ValidationError, RecursionError):  # json.loads cannot read 1,000 levels either
        return False
    return True


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_schema_agrees_with_decoder(case: Case) -> None:
    expected = not case.valid if case.schema_differs else case.valid
    assert _schema_accepts(case.raw) is expected, case.schema_differs or "schema and decoder disagree"


def test_table_covers_valid_and_invalid_payloads() -> None:
    assert len(CASES) >= 25
    assert sum(c.valid for c in CASES) >= 10
    assert sum(not c.valid for c in CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


def test_same_instant_in_any_offset_gives_the_same_millis() -> None:
    spellings = [
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00+00:00",
        "2024-05-01T10:00:00-00:00",
        "2024-05-01T12:00:00+02:00",
        "2024-05-01T04:30:00-05:30",
        "2024-05-02T00:45:00+14:45",
        "2024-04-30T23:00:00-11:00",
        "2024-05-01T10:00:00.000Z",
    ]
    millis = {s: decode_purchase(wire(occurred_at=s)).occurred_at_ms for s in spellings}
    assert set(millis.values()) == {AT_MS}, millis
    assert decode_purchase(wire(occurred_at=AT_MS)).occurred_at_ms == AT_MS


def test_sub_millisecond_fraction_is_truncated_not_rounded() -> None:
    event = decode_purchase(wire(occurred_at="2024-05-01T10:00:00.9999999Z"))
    assert event.occurred_at_ms == AT_MS + 999


def test_valid_event_keeps_optional_fields() -> None:
    event = decode_purchase(
        wire(
            order_id="o-9",
            currency="EUR",
            channel="web",
            region="north",
            items=[{"sku": "a", "quantity": 1, "unit_price": 2.5, "category": "music"}],
        )
    )
    assert (event.order_id, event.currency, event.channel, event.region) == ("o-9", "EUR", "web", "north")
    assert event.items is not None and [(i.sku, i.quantity, i.category) for i in event.items] == [
        ("a", 1, "music")
    ]


def test_invalid_utf8_inside_a_string_is_an_invalid_event() -> None:
    payload = b'{"event_id":"e\xff","customer_id":"c1","occurred_at":1714557600000,"amount":1}'
    with pytest.raises(InvalidEvent):
        decode_purchase(payload)


def test_the_window_ends_at_receipt_plus_the_skew() -> None:
    now = AT_MS
    limits = InputLimits(max_skew_ms=3_600_000)
    assert decode_purchase(wire(occurred_at=now + 3_600_000), limits, now).occurred_at_ms == now + 3_600_000
    with pytest.raises(InvalidEvent, match=r"^occurred_at: .*SEGSTREAM_MAX_CLOCK_SKEW_S"):
        decode_purchase(wire(occurred_at=now + 3_600_001), limits, now)


def test_limits_are_settings() -> None:
    tight = InputLimits(max_message_bytes=100, max_string_length=3, max_items=1, floor_ms=AT_MS + 1)
    with pytest.raises(InvalidEvent, match=r"^payload: .* over the limit of 100"):
        decode_purchase(wire(note="x" * 100), tight)
    roomy = InputLimits(max_string_length=10_000, max_items=60_000, max_message_bytes=10_000_000)
    big = wire(order_id="x" * 5000, items=[{"sku": "s", "quantity": 1, "unit_price": 1}] * 50_000)
    assert decode_purchase(big, roomy).items is not None
    with pytest.raises(InvalidEvent, match=r"^occurred_at: .* before the accepted floor"):
        decode_purchase(wire(), InputLimits(floor_ms=AT_MS + 1))

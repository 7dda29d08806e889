"""``ingest_batch`` with the in-memory store: valid events folded, the rest dead-lettered first."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from agents.ingest import DeadLetter, RawMessage, ingest_batch
from state.customer.memory_store import MemoryStore
from state.customer.store import Outcome, Stats, Tally, agenda_member
from streams.contract import Purchase
from streams.dlq import dead_letter
from tests.conftest import purchase
from tests.schema_helpers import validate_json

NOW = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
TOPIC = "t1.purchases"


def now() -> datetime:
    return NOW


def message(offset: int, value: bytes | None, key: bytes | None = b"c1", partition: int = 0) -> RawMessage:
    return RawMessage(TOPIC, partition, offset, key, value)


def event(**overrides: Any) -> bytes:
    return json.dumps(purchase(**overrides)).encode()


class Publisher:
    """Records every call; optionally fails like Kafka refusing the dead letters."""

    def __init__(self, store: MemoryStore | None = None, error: Exception | None = None) -> None:
        self.calls: list[list[DeadLetter]] = []
        self.store_sizes_at_call: list[int] = []
        self._store = store
        self._error = error

    async def __call__(self, letters: Sequence[DeadLetter]) -> None:
        self.calls.append(list(letters))
        if self._store is not None:
            self.store_sizes_at_call.append(len(self._store.states))
        if self._error is not None:
            raise self._error

    @property
    def letters(self) -> list[DeadLetter]:
        return [letter for call in self.calls for letter in call]


BAD = {
    3: b"{not json",
    4: event(customer_id="c9", amount=-5),  # negative purchase
    6: event(customer_id="c8", occurred_at="2024-05-01T10:00:00"),  # no offset
}


def mixed_batch() -> list[RawMessage]:
    good = {
        0: event(customer_id="c1", amount=10),
        1: event(customer_id="c2", amount=20),
        2: event(customer_id="c1", amount=5.5),
        5: event(customer_id="c3", amount=0),
    }
    by_offset = {**good, **BAD}
    return [message(o, by_offset[o], key=f"k{o}".encode()) for o in sorted(by_offset)]


async def test_valid_events_are_folded_and_invalid_ones_dead_lettered() -> None:
    store, publisher = MemoryStore(), Publisher()
    result = await ingest_batch(mixed_batch(), store, publisher, now=now)
    assert result.outcomes == [
        Outcome.NEW_CUSTOMER,
        Outcome.NEW_CUSTOMER,
        Outcome.APPLIED,
        Outcome.NEW_CUSTOMER,
    ]
    assert len(result.invalid_reasons) == 3
    assert len(publisher.calls) == 1 and len(publisher.letters) == 3
    c1 = await store.get("c1")
    assert c1 is not None and (c1.frequency, c1.monetary_cents) == (2, 1550)


async def test_invalid_events_never_reach_the_store() -> None:
    store = MemoryStore()
    await ingest_batch(mixed_batch(), store, Publisher(), now=now)
    assert sorted(store.states) == ["c1", "c2", "c3"]
    assert await store.get("c9") is None and await store.get("c8") is None
    assert await store.stats() == Stats(applied=4, duplicates=0, redelivered=0, invalid=3, customers=3)


async def test_every_dead_letter_matches_the_dlq_schema_and_points_at_its_source() -> None:
    publisher = Publisher()
    result = await ingest_batch(mixed_batch(), MemoryStore(), publisher, now=now)
    letters = [(key, validate_json("purchase-dlq", value)) for key, value in publisher.letters]
    assert [(key, d["source"]) for key, d in letters] == [
        (f"k{o}".encode(), {"topic": TOPIC, "partition": 0, "offset": o, "key": f"k{o}"}) for o in sorted(BAD)
    ]
    assert [d["reason"] for _, d in letters] == result.invalid_reasons
    assert [d["reason"].split(":")[0] for _, d in letters[1:]] == ["amount", "occurred_at"]
    assert [(d["payload"], d["payload_encoding"]) for _, d in letters] == [
        (BAD[o].decode(), "utf-8") for o in sorted(BAD)
    ]
    assert {d["failed_at"] for _, d in letters} == {"2026-01-02T03:04:05.678000+00:00"}
    assert {d["schema_version"] for _, d in letters} == {1}


async def test_non_utf8_payload_is_base64_encoded() -> None:
    payload = b"\xff\xfe\x00binary\x80"
    publisher = Publisher()
    await ingest_batch([message(7, payload, partition=2)], MemoryStore(), publisher, now=now)
    [(key, value)] = publisher.letters
    letter = validate_json("purchase-dlq", value)
    assert letter["payload_encoding"] == "base64"
    assert base64.b64decode(letter["payload"], validate=True) == payload
    assert (key, letter["source"]["partition"], letter["source"]["offset"]) == (b"c1", 2, 7)


@pytest.mark.parametrize("value", [None, b""], ids=["tombstone", "empty-bytes"])
async def test_empty_value_is_dead_lettered_with_a_reason(value: bytes | None) -> None:
    store, publisher = MemoryStore(), Publisher()
    result = await ingest_batch([message(0, value, key=None)], store, publisher, now=now)
    [(key, raw)] = publisher.letters
    letter = validate_json("purchase-dlq", raw)
    assert result.invalid_reasons == ["payload: empty message value"] == [letter["reason"]]
    assert (key, letter["source"]["key"]) == (None, None)
    assert (letter["payload"], letter["payload_encoding"]) == ("", "utf-8")
    assert result.outcomes == [] and store.states == {}
    assert (await store.stats()).invalid == 1


async def test_no_publish_call_when_everything_is_valid() -> None:
    publisher = Publisher()
    result = await ingest_batch([message(0, event()), message(1, event())], MemoryStore(), publisher, now=now)
    assert publisher.calls == []
    assert result.invalid_reasons == [] and len(result.outcomes) == 2


async def test_dead_letters_are_published_before_anything_is_applied() -> None:
    store = MemoryStore()
    publisher = Publisher(store=store)
    await ingest_batch(mixed_batch(), store, publisher, now=now)
    assert publisher.store_sizes_at_call == [0]
    assert len(store.states) == 3


async def test_failing_publisher_propagates_and_leaves_the_store_untouched() -> None:
    store = MemoryStore()
    publisher = Publisher(store=store, error=ConnectionError("kafka said no"))
    with pytest.raises(ConnectionError, match="kafka said no"):
        await ingest_batch(mixed_batch(), store, publisher, now=now)
    assert len(publisher.calls) == 1
    assert (store.states, store.fences, store.seen, store.partition_watermarks) == ({}, {}, {}, {})
    assert await store.stats() == Stats()


async def test_redelivered_batch_changes_no_state_and_dead_letters_nothing_again() -> None:
    store, publisher = MemoryStore(), Publisher()
    first = await ingest_batch(mixed_batch(), store, publisher, now=now)
    before, letters = dict(store.states), len(publisher.letters)
    again = await ingest_batch(mixed_batch(), store, publisher, now=now)
    assert again.outcomes == [Outcome.REDELIVERED] * 4
    assert again.invalid_reasons == [] and len(first.invalid_reasons) == letters > 0
    assert store.states == before
    assert len(publisher.letters) == letters, "the dead-letter fence stops a second copy"
    assert (await store.stats()).invalid == letters


async def test_dead_letters_lost_before_the_fence_moved_are_sent_again() -> None:
    """A crash between Kafka's ack and the fence write re-sends: the DLQ stays at-least-once."""
    store, publisher = MemoryStore(), Publisher()
    first = await ingest_batch(mixed_batch(), store, publisher, now=now)
    store.letter_fences.clear()  # as if the fence write never happened
    again = await ingest_batch(mixed_batch(), store, publisher, now=now)
    assert again.invalid_reasons == first.invalid_reasons
    assert len(publisher.letters) == 2 * len(first.invalid_reasons)


async def test_resent_event_id_at_a_new_offset_counts_once() -> None:
    store = MemoryStore()
    value = event(event_id="same", amount=3)
    result = await ingest_batch([message(0, value), message(1, value)], store, Publisher(), now=now)
    assert result.outcomes == [Outcome.NEW_CUSTOMER, Outcome.DUPLICATE]
    state = await store.get("c1")
    assert state is not None and (state.frequency, state.monetary_cents) == (1, 300)


async def test_invalid_utf8_inside_a_string_is_dead_lettered() -> None:
    store, publisher = MemoryStore(), Publisher()
    bad = b'{"event_id":"e\xff","customer_id":"c1","occurred_at":1,"amount":1}'
    result = await ingest_batch([message(0, bad), message(1, event())], store, publisher, now=now)
    assert len(publisher.letters) == 1 and len(result.outcomes) == 1


def test_dead_letter_key_replaces_undecodable_bytes() -> None:
    letter = json.loads(dead_letter(b"{}", b"\xffc1", "r", TOPIC, 0, 1, NOW))
    assert letter["source"]["key"] == "\ufffdc1"


async def test_a_decoder_that_raises_anything_dead_letters_the_message_instead_of_crashing() -> None:
    """Bad input never stops the pipeline, even when it finds a bug in a decoder."""
    from agents.ingest import _decode_all

    def brittle(raw: bytes) -> bytes:
        if raw == b"boom":
            raise ZeroDivisionError("a decoder bug")
        return raw

    messages = [RawMessage("t", 0, i, None, value) for i, value in enumerate((b"ok", b"boom", b"fine"))]
    valid, rejected = _decode_all(messages, brittle)
    assert [event for _, event in valid] == [b"ok", b"fine"]
    assert [(m.offset, reason) for m, reason in rejected] == [
        (1, "payload: could not be decoded (ZeroDivisionError)")
    ]


async def test_tallies_reach_the_store_only_for_valid_applied_events() -> None:
    """The tallier sees only valid events, one tally tuple each; resends add nothing."""
    seen: list[list[str]] = []

    async def by_customer(events: Sequence[Purchase]) -> list[tuple[Tally, ...]]:
        seen.append([e.event_id for e in events])
        return [(Tally("buyers", e.customer_id),) for e in events]

    store = MemoryStore()
    messages = [
        message(0, event(event_id="a", customer_id="c1")),
        message(1, b"{not json"),
        message(2, event(event_id="b", customer_id="c2")),
        message(3, event(event_id="a", customer_id="c1")),  # resend
    ]
    await ingest_batch(messages, store, Publisher(), now=now, tallier=by_customer)
    assert seen == [["a", "b", "a"]]
    assert await store.tally("buyers") == {"c1": 1, "c2": 1}


def test_a_tally_table_name_is_checked() -> None:
    with pytest.raises(ValueError, match="tally table"):
        Tally("Bad Name", "x")


async def test_each_event_keeps_its_arrival_as_its_receipt_and_unknown_arrivals_take_the_batch_start() -> (
    None
):
    batch_start_ms = int(NOW.timestamp() * 1000)
    messages = [
        RawMessage(
            TOPIC, 0, 0, b"c1", event(customer_id="c1", event_id="e1"), arrived_ms=batch_start_ms - 900
        ),
        RawMessage(TOPIC, 0, 1, b"c2", event(customer_id="c2", event_id="e2")),  # arrival not known
        RawMessage(TOPIC, 0, 2, b"c9", BAD[3], arrived_ms=batch_start_ms - 800),  # dead-lettered: no receipt
    ]
    store = MemoryStore()
    result = await ingest_batch(messages, store, Publisher(), now=now)
    assert [e.customer_id for e in result.events] == ["c1", "c2"]
    assert result.receipts == [batch_start_ms - 900, batch_start_ms]
    assert result.received_ms == batch_start_ms
    # the evaluator's receipt -> change latency starts at the same arrival
    assert store.receipts == {
        agenda_member("c1", "e1"): batch_start_ms - 900,
        agenda_member("c2", "e2"): batch_start_ms,
    }

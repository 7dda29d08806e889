"""The ``reviews`` wire contract and its validation (``schemas/review.schema.json``).

A review is one customer's score (1 to 5) of one order, in a region, with the order's
delivery date and the date it was promised for when the producer knows them. A delivery is
*late* when it came after the promised date; when either date is missing, lateness is
unknown (counted apart, never guessed). ``decode_review`` turns raw message bytes into a
:class:`Review` or raises :class:`~streams.limits.InvalidEvent` whose ``reason`` names the
field and the rule broken, with the same limits as purchases (sizes, string lengths, nesting,
UTF-8, the accepted event-time window for ``occurred_at`` and ``delivered_at``).

>>> r = decode_review(b'{"event_id":"r1","order_id":"o1","customer_id":"42","score":2,"region":"north",'
...                   b'"occurred_at":"2017-05-08T00:00:00Z","delivered_at":"2017-05-06T10:00:00Z",'
...                   b'"promised_at":"2017-05-05T00:00:00Z"}')
>>> r.score, r.region, r.lateness
(2, 'north', 'late')
>>> decode_review(b'{"event_id":"r1","order_id":"o1","customer_id":"42","score":2,"region":"north",'
...               b'"occurred_at":1494201600000}').lateness
'undated'
>>> decode_review(b'{"event_id":"r1","order_id":"o1","customer_id":"42","score":6,"region":"north",'
...               b'"occurred_at":1494201600000}')
Traceback (most recent call last):
...
streams.limits.InvalidEvent: score: expected a whole number in 1..5, got 6
"""

from __future__ import annotations

from typing import Literal

import msgspec

from streams.contract import DEFAULT_LIMITS, _check_id, _epoch_ms, decode_wire
from streams.limits import InputLimits, InvalidEvent, brief, wall_clock_ms

__all__ = ["LATENESS", "MAX_SCORE", "MIN_SCORE", "Lateness", "Review", "decode_review"]

MIN_SCORE, MAX_SCORE = 1, 5
Lateness = Literal["late", "on_time", "undated"]
LATENESS: tuple[Lateness, ...] = ("late", "on_time", "undated")


class _WireReview(msgspec.Struct, forbid_unknown_fields=False):
    event_id: str
    order_id: str
    customer_id: str
    score: int | float
    region: str
    occurred_at: str | int | float
    delivered_at: str | int | float | None = None
    promised_at: str | int | float | None = None


class Review(msgspec.Struct, frozen=True):
    """A validated review: times in epoch ms (``None``: the producer did not say)."""

    event_id: str
    order_id: str
    customer_id: str
    score: int
    region: str
    occurred_at_ms: int
    delivered_at_ms: int | None = None
    promised_at_ms: int | None = None

    @property
    def lateness(self) -> Lateness:
        """``late`` if delivered after the promised date, ``on_time`` if not, ``undated`` if a date is missing."""
        if self.delivered_at_ms is None or self.promised_at_ms is None:
            return "undated"
        return "late" if self.delivered_at_ms > self.promised_at_ms else "on_time"


_decoder = msgspec.json.Decoder(_WireReview)


def decode_review(raw: bytes, limits: InputLimits = DEFAULT_LIMITS, now_ms: int | None = None) -> Review:
    """Validate one ``reviews`` message value; raise ``InvalidEvent`` on any breach.

    ``occurred_at`` and ``delivered_at`` must lie in the accepted event-time window (they are
    in the past when the review is written); ``promised_at`` only after the floor, since a
    promise may lie in the future of an early delivery.
    """
    limits.check_size(raw)
    wire = decode_wire(_decoder, raw, limits)
    for field in ("event_id", "order_id", "customer_id", "region"):
        _check_id(field, getattr(wire, field), limits)
    score = wire.score
    if isinstance(score, float) and not score.is_integer():
        raise InvalidEvent(f"score: expected a whole number in {MIN_SCORE}..{MAX_SCORE}, got {brief(score)}")
    if not MIN_SCORE <= score <= MAX_SCORE:  # also rejects NaN and infinities
        raise InvalidEvent(f"score: expected a whole number in {MIN_SCORE}..{MAX_SCORE}, got {brief(score)}")
    now = wall_clock_ms() if now_ms is None else now_ms
    occurred_at_ms = _epoch_ms(wire.occurred_at)
    limits.check_event_time("occurred_at", occurred_at_ms, now)
    delivered_at_ms = promised_at_ms = None
    if wire.delivered_at is not None:
        delivered_at_ms = _epoch_ms(wire.delivered_at, "delivered_at")
        limits.check_event_time("delivered_at", delivered_at_ms, now)
    if wire.promised_at is not None:
        promised_at_ms = _epoch_ms(wire.promised_at, "promised_at")
        # a promise may lie in the future: only the floor applies (the window's end moved past it)
        limits.check_event_time("promised_at", promised_at_ms, max(now, promised_at_ms))
    return Review(
        event_id=wire.event_id,
        order_id=wire.order_id,
        customer_id=wire.customer_id,
        score=int(score),
        region=wire.region,
        occurred_at_ms=occurred_at_ms,
        delivered_at_ms=delivered_at_ms,
        promised_at_ms=promised_at_ms,
    )

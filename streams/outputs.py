"""The wire of segstream's outputs (schema version, timestamps) and of the clock ticks it reads.

The messages built from the domain (changes, profiles, alerts, moves) are in ``state.evaluator.messages``;

- ``clock`` (one partition): :func:`tick_message` / :func:`decode_tick`: "every purchase that
  occurred before ``as_of`` has been published", with the ``purchases`` end offsets at that
  moment so the evaluator first waits until the workers have folded them.

Schemas: ``schemas/segment-change.schema.json``, ``customer-segment.schema.json``,
``alert.schema.json``, ``clock-tick.schema.json``; AsyncAPI: ``docs/asyncapi.yaml``.

>>> decode_tick(tick_message(1_714_521_600_000, {0: 12}, source="cli"))
Tick(as_of_ms=1714521600000, offsets={0: 12}, source='cli', refit=False, campaign_offsets={})
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from streams.limits import InputLimits, InvalidEvent, brief, wall_clock_ms

DEFAULT_LIMITS = InputLimits()

__all__ = [
    "SCHEMA_VERSION",
    "InvalidTick",
    "Tick",
    "decode_tick",
    "rfc3339",
    "tick_message",
]

SCHEMA_VERSION = 1


@lru_cache(maxsize=4096)  # the changes of one instant share it
def rfc3339(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC with milliseconds.

    >>> rfc3339(0)
    '1970-01-01T00:00:00.000Z'
    """
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Tick(NamedTuple):
    as_of_ms: int
    offsets: dict[int, int]  # purchases partition -> end offset when the tick was sent
    source: str
    refit: bool = False  # also refit the lifetime model at the tick (``segstream fit``)
    campaign_offsets: dict[int, int] = {}  # campaign-events partition -> end offset; never mutated


class InvalidTick(ValueError):
    """A ``clock`` message that is not a valid tick; ``str()`` is the reason (safe to publish)."""


def tick_message(
    as_of_ms: int,
    offsets: Mapping[int, int],
    source: str,
    *,
    refit: bool = False,
    campaign_offsets: Mapping[int, int] | None = None,
) -> bytes:
    tick: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "as_of": rfc3339(as_of_ms),
        "as_of_ms": as_of_ms,
        "purchases_offsets": {str(p): o for p, o in sorted(offsets.items())},
        "source": source,
    }
    if refit:
        tick["refit"] = True
    if campaign_offsets:
        tick["campaign_offsets"] = {str(p): o for p, o in sorted(campaign_offsets.items())}
    return json.dumps(tick, separators=(",", ":")).encode()


def decode_tick(raw: bytes, limits: InputLimits = DEFAULT_LIMITS, now_ms: int | None = None) -> Tick:
    """A valid tick from ``raw``, or :class:`InvalidTick` saying why (the tick then changes nothing).

    ``as_of_ms`` must be a whole number inside the accepted event-time window (``streams.limits``:
    not before the floor, not after the wall clock plus the allowed skew); partitions and offsets
    are non-negative whole numbers.

    >>> decode_tick(b'{"as_of_ms": 1e30, "purchases_offsets": {}}')
    Traceback (most recent call last):
    ...
    streams.outputs.InvalidTick: as_of_ms: must be a whole number, not 1e+30
    >>> decode_tick(b'{"as_of_ms": 4070908800000, "purchases_offsets": {}}')
    Traceback (most recent call last):
    ...
    streams.outputs.InvalidTick: as_of_ms: 2099-01-01T00:00:00.000Z is later than the wall clock at receipt plus the allowed skew of 3600 s (SEGSTREAM_MAX_CLOCK_SKEW_S)
    """
    if len(raw) > limits.max_message_bytes:
        raise InvalidTick(f"payload: {len(raw):,} bytes is over the limit of {limits.max_message_bytes:,}")
    try:
        limits.check_depth(raw)
    except InvalidEvent as exc:
        raise InvalidTick(exc.reason) from None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise InvalidTick(f"payload: expected a JSON object, got {type(data).__name__}")
        as_of_ms = _whole("as_of_ms", data["as_of_ms"])
        offsets = _offsets("purchases_offsets", data["purchases_offsets"])
        refit = data.get("refit", False)
        if not isinstance(refit, bool):
            raise InvalidTick(f"refit: must be true or false, not {brief(refit)}")
        campaigns = _offsets("campaign_offsets", data.get("campaign_offsets", {}))
        source = data.get("source", "")
        if not isinstance(source, str):
            raise InvalidTick(f"source: must be a string, not {brief(source)}")
    except InvalidTick:
        raise
    except KeyError as exc:
        raise InvalidTick(f"{exc.args[0]}: missing required field") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidTick(f"payload: not a clock tick ({brief(str(exc), 200)})") from None
    try:
        limits.check_event_time("as_of_ms", as_of_ms, wall_clock_ms() if now_ms is None else now_ms)
    except InvalidEvent as exc:
        raise InvalidTick(exc.reason) from None
    return Tick(as_of_ms, offsets, source[:200], refit, campaigns)


def _whole(field: str, value: object) -> int:
    """A JSON whole number (not a bool, not a fraction)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTick(f"{field}: must be a whole number, not {brief(value)}")
    return value


def _offsets(field: str, value: object) -> dict[int, int]:
    """``{"partition": offset}`` with non-negative whole numbers, at most 10,000 partitions."""
    if not isinstance(value, dict) or len(value) > 10_000:
        raise InvalidTick(f"{field}: must be an object of at most 10,000 partitions")
    offsets: dict[int, int] = {}
    for partition, offset in value.items():
        if not (isinstance(partition, str) and partition.isdigit() and len(partition) <= 6):
            raise InvalidTick(f"{field}: partition {brief(partition)} is not a partition number")
        number = _whole(f"{field}[{partition}]", offset)
        if number < 0:
            raise InvalidTick(f"{field}[{partition}]: must be >= 0")
        offsets[int(partition)] = number
    return offsets

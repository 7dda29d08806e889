"""The JSON segstream publishes for subscribers, and the clock ticks it reads.

- ``segment-changes`` (key customer_id): one :func:`change_message` per profile change;
- ``customer-segments`` (compacted, key customer_id): :func:`profile_message`, the latest
  profile per customer, for a subscriber to bootstrap from;
- ``alerts`` (key customer_id): :func:`alert_message`, one typed alert with its figures and a
  one-line reason (``state.alerts``);
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

import msgspec

from state.alerts import Alert
from state.playbook import action_json
from state.profiles import Change, Profile
from state.segments import Preset
from streams.limits import InputLimits, InvalidEvent, brief, wall_clock_ms

DEFAULT_LIMITS = InputLimits()

__all__ = [
    "SCHEMA_VERSION",
    "InvalidTick",
    "Tick",
    "alert_message",
    "alert_reason",
    "change_message",
    "changed_fields",
    "decode_tick",
    "profile_fields",
    "profile_message",
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


def profile_fields(profile: Profile) -> dict[str, Any]:
    return profile._asdict()


def changed_fields(change: Change) -> list[str]:
    """The profile fields ``change`` moved, in profile order (all of them for a first profile).

    >>> a, b = Profile(5, 1, 2, "New Customers", 3, "x"), Profile(4, 1, 2, "Promising", 3, "x")
    >>> changed_fields(Change("c", 0, "recency_decay", a, b, 1, 1))
    ['r_score', 'rfm_segment']
    """
    before = change.before
    return [name for i, name in enumerate(Profile._fields) if before is None or before[i] != change.after[i]]


def _rule(preset: Preset, profile: Profile) -> dict[str, Any]:
    return _rule_for(preset, profile.r_score, profile.f_score, profile.m_score)


@lru_cache(maxsize=1024)
def _rule_for(preset: Preset, r: int, f: int, m: int) -> dict[str, Any]:
    rule = preset.segment_for(r, f, m)
    return {
        "preset": preset.name,
        "preset_version": preset.version,
        "segment": rule.segment,
        "r": list(rule.r),
        "f": list(rule.f),
        "m": list(rule.m),
    }


_encode = msgspec.json.Encoder().encode  # compact JSON, keys in insertion order, ~5x json.dumps


def change_message(change: Change, preset: Preset) -> bytes:
    """The ``segment-changes`` value of one change."""
    return _encode(
        {
            "schema_version": SCHEMA_VERSION,
            "change_id": change.change_id,
            "customer_id": change.customer_id,
            "occurred_at": rfc3339(change.at_ms),
            "reason": change.reason,
            "changed": changed_fields(change),
            "before": None if change.before is None else profile_fields(change.before),
            "after": profile_fields(change.after),
            "rule": _rule(preset, change.after),
            "cutpoint_version": change.cutpoint_version,
            "model_version": change.model_version,
            "recommended_action": action_json(preset, change.after.rfm_segment),
        },
    )


def profile_message(change: Change, preset: Preset) -> bytes:
    """The ``customer-segments`` value after ``change`` (the customer's current profile)."""
    return _encode(
        {
            "schema_version": SCHEMA_VERSION,
            "customer_id": change.customer_id,
            "as_of": rfc3339(change.at_ms),
            **profile_fields(change.after),
            "rule": _rule(preset, change.after),
            "cutpoint_version": change.cutpoint_version,
            "model_version": change.model_version,
            "recommended_action": action_json(preset, change.after.rfm_segment),
        },
    )


def alert_reason(alert: Alert) -> str:
    """The alert in one plain sentence, from its figures.

    >>> alert_reason(Alert("c", 0, "overdue", {"silent_days": 45.0, "usual_gap_days": 15.0, "ratio": 3.0}))
    'silent for 45 days, 3.0 times their usual 15-day gap between purchase days'
    >>> alert_reason(Alert("c", 0, "churn_risk", {"band": "High", "previous_band": "Medium",
    ...     "churn_probability": 0.8, "silent_days": 30.0, "monetary": 120.5}))
    'churn band rose from Medium to High (churn probability 0.80) after 30 days of silence; net spend 120.50'
    """
    f = alert.figures
    if alert.kind == "segment_drift":
        moved = ", ".join(
            f"{m} {f[m + '_before']:.3g} -> {f[m + '_after']:.3g}"
            for m in f["metrics"] or ()  # type: ignore[union-attr]
        )
        return (
            f"{f['group']} {f['name']!s} drifted over {f['reference_days']:g} days: {moved} "
            f"({f['entered']:g} customers entered, {f['left']:g} left)"
        )
    if alert.kind == "likely_responder":
        return (
            f"likely to respond to a campaign now (response propensity {f['response_propensity']:.2f}); "
            f"churn probability {f['churn_probability']:.2f}, {f['recency_days']:g} days since the last purchase"
        )
    if alert.kind == "overdue":
        return (
            f"silent for {f['silent_days']:g} days, {f['ratio']:.1f} times their usual "
            f"{f['usual_gap_days']:g}-day gap between purchase days"
        )
    return (
        f"churn band rose from {f['previous_band'] or 'none'} to {f['band']} (churn probability "
        f"{f['churn_probability']:.2f}) after {f['silent_days']:g} days of silence; net spend {f['monetary']:.2f}"
    )


def alert_message(alert: Alert) -> bytes:
    """The ``alerts`` value of one alert."""
    return _encode(
        {
            "schema_version": SCHEMA_VERSION,
            "alert_id": alert.alert_id,
            "customer_id": alert.customer_id,
            "kind": alert.kind,
            "occurred_at": rfc3339(alert.at_ms),
            "reason": alert_reason(alert),
            "figures": alert.figures,
        },
    )


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

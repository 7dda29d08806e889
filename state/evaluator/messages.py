"""The domain's messages for subscribers, as the wire contract (``streams/``) says.

- ``segment-changes`` (key customer_id): one :func:`change_message` per profile change;
- ``customer-segments`` (compacted, key customer_id): :func:`profile_message`, the latest
  profile per customer, for a subscriber to bootstrap from;
- ``alerts`` (key customer_id): :func:`alert_message`, one typed alert with its figures and a
  one-line reason (``state.models.alerts``);
- ``segment-moves`` (key customer_id): :func:`move_message`, one per audience entry or exit
  (``state.segments.moves``), published next to the changes they come from, in the same order.

Schemas: ``schemas/segment-change.schema.json``, ``customer-segment.schema.json``,
``alert.schema.json``, ``segment-move.schema.json``; AsyncAPI: ``docs/asyncapi.yaml``.
The clock ticks segstream reads are wire only (``streams.outputs``).

>>> from state.segments.moves import Audience, Move
>>> move = Move("exited", Audience("segment", "Champions", "segment:Champions"), "c1", 0, ("recency_decay",), "c1@0", None)
>>> move_message(move)[:80]
b'{"schema_version":1,"move_id":"c1@0:exited:segment:Champions","type":"exited","a'
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

from state.customer.profiles import Change, Profile
from state.models.alerts import Alert
from state.segments.moves import Move
from state.segments.playbook import action_json
from state.segments.segments import Preset
from streams.outputs import SCHEMA_VERSION, rfc3339

__all__ = [
    "alert_message",
    "alert_reason",
    "change_message",
    "changed_fields",
    "move_message",
    "profile_fields",
    "profile_message",
]


@lru_cache(maxsize=65_536)
def profile_fields(profile: Profile) -> dict[str, Any]:
    """``profile`` as a JSON object's fields. Shared between calls (read it, never change it): a
    catch-up publishes hundreds of thousands of changes over a few thousand distinct profiles."""
    return profile._asdict()


def changed_fields(change: Change) -> list[str]:
    """The profile fields ``change`` moved, in profile order (all of them for a first profile).

    >>> a, b = Profile(5, 1, 2, "New Customers", 3, "x"), Profile(4, 1, 2, "Promising", 3, "x")
    >>> changed_fields(Change("c", 0, "recency_decay", a, b, 1, 1))
    ['r_score', 'rfm_segment']
    """
    before = change.before
    return [name for i, name in enumerate(Profile._fields) if before is None or before[i] != change.after[i]]


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


# The parts many messages share (a profile, a segment's rule, its playbook entry: a few thousand
# distinct ones among hundreds of thousands of changes in a catch-up) are encoded once each and
# embedded as they are (``msgspec.Raw``): the same bytes as encoding them in place.
@lru_cache(maxsize=65_536)
def _profile_json(profile: Profile) -> msgspec.Raw:
    return msgspec.Raw(_encode(profile._asdict()))


@lru_cache(maxsize=1024)
def _rule_json(preset: Preset, r: int, f: int, m: int) -> msgspec.Raw:
    return msgspec.Raw(_encode(_rule_for(preset, r, f, m)))


@lru_cache(maxsize=256)
def _action_json(preset: Preset, segment: str) -> msgspec.Raw:
    return msgspec.Raw(_encode(action_json(preset, segment)))


def change_message(change: Change, preset: Preset) -> bytes:
    """The ``segment-changes`` value of one change."""
    after = change.after
    return _encode(
        {
            "schema_version": SCHEMA_VERSION,
            "change_id": change.change_id,
            "customer_id": change.customer_id,
            "occurred_at": rfc3339(change.at_ms),
            "reason": change.reason,
            "changed": changed_fields(change),
            "before": None if change.before is None else _profile_json(change.before),
            "after": _profile_json(after),
            "rule": _rule_json(preset, after.r_score, after.f_score, after.m_score),
            "cutpoint_version": change.cutpoint_version,
            "model_version": change.model_version,
            "recommended_action": _action_json(preset, after.rfm_segment),
            "provisional": change.provisional,
        },
    )


def profile_message(change: Change, preset: Preset) -> bytes:
    """The ``customer-segments`` value after ``change`` (the customer's current profile)."""
    after = change.after
    return _encode(
        {
            "schema_version": SCHEMA_VERSION,
            "customer_id": change.customer_id,
            "as_of": rfc3339(change.at_ms),
            **profile_fields(after),
            "rule": _rule_json(preset, after.r_score, after.f_score, after.m_score),
            "cutpoint_version": change.cutpoint_version,
            "model_version": change.model_version,
            "recommended_action": _action_json(preset, after.rfm_segment),
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


def move_message(move: Move) -> bytes:
    """The ``segment-moves`` value of one move."""
    audience = move.audience
    return _encode(
        {
            "schema_version": SCHEMA_VERSION,
            "move_id": move.move_id,
            "type": move.type,
            "audience": {"kind": audience.kind, "name": audience.name, "id": audience.id},
            "customer_id": move.customer_id,
            "as_of": rfc3339(move.at_ms),
            "reasons": list(move.reasons),
            "change_id": move.change_id,
            "recommended_action": None
            if move.recommended_action is None
            else move.recommended_action.to_json(),
        }
    )

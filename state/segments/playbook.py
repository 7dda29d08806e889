"""The playbook: per named segment, what to do with its customers and through which channel.

The entries are data in the preset (``state/segments/presets/*.json``: each rule's ``action`` and
``channel``, editable like the rules themselves). A customer's *recommended action* is their
named segment's entry; it travels with every ``segment-changes`` and ``customer-segments``
message, each ``entered`` move on ``segment-moves``, ``GET /customers/{id}`` and the export.

``offer`` names the concrete offer (a product bundle) to make; it stays None until bundles
exist. The bundle feature fills it by passing ``offer`` to :func:`recommended_action` (the one
place every output builds its recommended action from).

>>> from state.segments.segments import load_preset
>>> recommended_action(load_preset("rfm11"), "Can't Lose Them")
RecommendedAction(action='Win them back personally: new releases and a personal contact.', channel='direct_mail', offer=None)
>>> recommended_action(load_preset("rfm11"), None) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from state.segments.segments import Preset, load_preset

__all__ = ["RecommendedAction", "action_json", "recommended_action", "shipped_preset"]


@dataclass(frozen=True, slots=True)
class RecommendedAction:
    """What to do with a customer now: the action, the channel, and the offer (None: no offer yet)."""

    action: str
    channel: str
    offer: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "channel": self.channel, "offer": self.offer}


def recommended_action(
    preset: Preset, segment: str | None, offer: str | None = None
) -> RecommendedAction | None:
    """The playbook entry of named ``segment`` in ``preset`` (None: no segment, or no entry for it)."""
    entry = None if segment is None else _entry(preset, segment)
    if entry is None:
        return None
    return entry if offer is None else RecommendedAction(entry.action, entry.channel, offer)


@lru_cache(maxsize=256)  # every change message asks; a preset has a dozen segments
def _entry(preset: Preset, segment: str) -> RecommendedAction | None:
    rule = next((r for r in preset.rules if r.segment == segment), None)
    return None if rule is None or not rule.action else RecommendedAction(rule.action, rule.channel)


@lru_cache(maxsize=256)  # every change and profile message asks; shared between calls: read only
def action_json(preset: Preset, segment: str | None) -> dict[str, Any] | None:
    """:func:`recommended_action` as the JSON object the outputs carry (null when there is none)."""
    found = recommended_action(preset, segment)
    return None if found is None else found.to_json()


@cache
def shipped_preset(name: str) -> Preset:
    """A shipped preset by name, loaded once (the HTTP pages know the preset by its name only)."""
    return load_preset(name)

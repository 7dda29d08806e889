"""Segment moves: entries into and exits from named segments and clusters, derived from change events.

Many profile changes are score moves inside one segment and cluster, or cluster renames (CDNOW
master: 132,060 of 271,757 changes). A marketing system that acts on audiences (Segment's
"Audience Entered" / "Audience Exited") wants only the moves: :func:`segment_moves` turns each :class:`~state.customer.profiles.Change` whose named
segment or cluster changed into one :class:`Move` per audience left and per audience entered,
exits first, segment before cluster. It is a pure function of the changes, so the same replay
gives the same moves (ids included), like the changes themselves.

- An audience is ``segment`` (``id`` = ``segment:<name>``) or ``cluster`` (``id`` =
  ``cluster:<id>``, ``name`` its readable name at the move), the group keys of the
  ``segment_drift`` alerts. A cluster renamed by a new model version is not a move: its members
  stay in it.
- A move carries the change's reason (``reasons``, a list of one today) and its ``change_id``.
- An *entered* move carries the customer's recommended action (``state.segments.playbook``): their
  named segment's playbook entry after the change, also for a cluster entry (clusters have no
  playbook of their own); an *exited* move carries none.

>>> from state.segments.segments import load_preset
>>> from state.customer.profiles import Profile
>>> a = Profile(5, 1, 2, "New Customers", None, None)
>>> b = Profile(4, 1, 2, "Promising", 3, "Recent low-value one-timers")
>>> [(m.type, m.audience.id) for m in segment_moves([Change("c1", 10, "recency_decay", a, b, 1, 1)], load_preset())]
[('exited', 'segment:New Customers'), ('entered', 'segment:Promising'), ('entered', 'cluster:3')]
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from state.customer.profiles import Change, Profile, Reason
from state.segments.playbook import RecommendedAction, recommended_action
from state.segments.segments import Preset

__all__ = ["Audience", "AudienceKind", "Move", "MoveType", "segment_moves"]

MoveType = Literal["entered", "exited"]
AudienceKind = Literal["segment", "cluster"]


@dataclass(frozen=True, slots=True)
class Audience:
    kind: AudienceKind
    name: str
    id: str


@dataclass(frozen=True, slots=True)
class Move:
    """``customer_id`` entered or exited ``audience`` at ``at_ms``, because of the change ``change_id``."""

    type: MoveType
    audience: Audience
    customer_id: str
    at_ms: int
    reasons: tuple[Reason, ...]
    change_id: str
    recommended_action: RecommendedAction | None

    @property
    def move_id(self) -> str:
        """Deterministic id, ``<change_id>:<type>:<audience id>``: consumers dedupe on it."""
        return f"{self.change_id}:{self.type}:{self.audience.id}"


def _segment(profile: Profile | None) -> Audience | None:
    if profile is None:
        return None
    return _segment_audience(profile.rfm_segment)


def _cluster(profile: Profile | None) -> Audience | None:
    if profile is None or profile.cluster is None:
        return None
    return _cluster_audience(profile.cluster, profile.cluster_name)


# An audience is an immutable value with few distinct ones (a preset's segments, a model's clusters
# and their names): made once each, not per change (a catch-up publishes hundreds of thousands).
@functools.lru_cache(maxsize=4096)
def _segment_audience(name: str) -> Audience:
    return Audience("segment", name, f"segment:{name}")


@functools.lru_cache(maxsize=4096)
def _cluster_audience(cluster: int, name: str | None) -> Audience:
    return Audience("cluster", name or str(cluster), f"cluster:{cluster}")


def segment_moves(changes: Iterable[Change], preset: Preset) -> list[Move]:
    """Every audience exit and entry in ``changes``, in change order (exits, then entries, of each)."""
    moves: list[Move] = []
    for change in changes:
        before, after = change.before, change.after
        if before is not None and (before.rfm_segment, before.cluster) == (after.rfm_segment, after.cluster):
            continue  # neither audience moved (most changes: a score or a prediction); skip the objects
        pairs = [(audience(before), audience(after)) for audience in (_segment, _cluster)]
        moved = [(old, new) for old, new in pairs if (old and old.id) != (new and new.id)]
        if not moved:
            continue
        action = recommended_action(preset, change.after.rfm_segment)
        base = (change.customer_id, change.at_ms, (change.reason,), change.change_id)
        moves += [Move("exited", old, *base, None) for old, _ in moved if old is not None]
        moves += [Move("entered", new, *base, action) for _, new in moved if new is not None]
    return moves

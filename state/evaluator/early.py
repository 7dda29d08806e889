"""A customer's own purchase scored at once, before the clock evaluates its instant: a provisional change.

The evaluator publishes a purchase's change when the event-time clock passes it (the watermark
less the allowed lateness, then an instant), tens of seconds after receipt under load. A
subscriber who wants the purchase *now* gets a provisional change first: as soon as a worker has
folded the purchase, the customer's current state is scored against the versions in force (the
cut-point version and the published cluster model the evaluator last saved), at the purchase's
own event time, and published with ``provisional: true`` and reason ``purchase``.

What is and is not promised:

- A provisional change names the versions it used; it is computed from what that worker had folded
  when it scored, so under a different arrival order it can differ (another event of the same
  customer may or may not have arrived yet). It is marked, and its ``change_id`` is its own
  (``<customer>@<ms>~provisional``).
- The evaluator's changes are unchanged and stay deterministic: when the clock passes the purchase,
  the evaluated change follows (possibly the same profile); folding the non-provisional changes
  reproduces the profile, and ``customer-segments`` only ever holds evaluated profiles.
- The cluster follows the same dwell as the evaluator's (a customer keeps their cluster for
  ``min_dwell_ms`` after moving, unless it was retired).

Pure: :func:`early_changes` takes the states, the published profiles and the :class:`Versions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from state.customer.profiles import Change, Profile
from state.customer.rfm import CustomerState
from state.models.clusters import SegmentModel
from state.segments.cutpoints import CutPoints, scores_at
from state.segments.features import features
from state.segments.population import NO_TIME

__all__ = ["Published", "Versions", "early_changes"]


@dataclass(frozen=True, slots=True)
class Versions:
    """What a provisional change is scored against: the evaluator's last saved versions."""

    cutpoints: CutPoints
    model: SegmentModel
    segment_of: Mapping[tuple[int, int, int], str]  # (r, f, m) -> named segment
    min_dwell_ms: int


@dataclass(frozen=True, slots=True)
class Published:
    """A customer's last evaluated profile and since when they are in its cluster (``NO_TIME``: never moved)."""

    profile: Profile | None
    since_ms: int = NO_TIME


def _cluster(
    proposed: int | None, at_ms: int, published: Published, versions: Versions
) -> tuple[int | None, str | None]:
    """The cluster after the dwell rule: ``proposed`` (None: no published model) or the current one."""
    before = published.profile
    current = None if before is None else before.cluster
    if proposed is None:
        return current, None if before is None else before.cluster_name
    names = versions.model.cluster_names()
    retired = current is None or current not in names
    dwelt = published.since_ms == NO_TIME or at_ms - published.since_ms >= versions.min_dwell_ms
    if proposed != current and (retired or dwelt):
        return proposed, names[proposed]
    return current, None if current is None else names[current]


def early_changes(
    due: Sequence[tuple[CustomerState, int]], published: Mapping[str, Published], versions: Versions
) -> list[Change]:
    """The provisional change of each ``(state, at_ms)`` whose profile would move, customers in id order.

    ``state`` is the customer's state with everything folded so far; ``at_ms`` the event time of the
    purchase being answered (the newest one when a batch had several). A customer without a
    purchase (refunds only) has no profile and gets none.
    """
    cp = versions.cutpoints
    scored = [
        (state, at_ms)
        for state, at_ms in sorted(due, key=lambda d: d[0].customer_id)
        if state.frequency > 0 and state.last_purchase_ms is not None and state.first_purchase_ms is not None
    ]
    model = versions.model
    proposed: list[int | None] = [None] * len(scored)
    if model.is_ready and scored:  # one vector assignment for the batch
        proposed = list(model.assign_many([features(state, at_ms) for state, at_ms in scored]))
    changes: list[Change] = []
    for (state, at_ms), cluster_proposed in zip(scored, proposed, strict=True):
        assert state.last_purchase_ms is not None
        r, f, m = scores_at(cp, state.last_purchase_ms, state.frequency, state.monetary_cents, at_ms)
        known = published.get(state.customer_id, Published(None))
        cluster, name = _cluster(cluster_proposed, at_ms, known, versions)
        after = Profile(r, f, m, versions.segment_of[r, f, m], cluster, name)
        if after != known.profile:
            changes.append(
                Change(
                    state.customer_id,
                    at_ms,
                    "purchase",
                    known.profile,
                    after,
                    cp.version,
                    model.version,
                    provisional=True,
                )
            )
    return changes

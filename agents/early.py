"""Provisional changes: a live purchase answered as soon as the worker that folds it has it.

Kept free of Faust (like ``agents.ingest``) so the unit tests drive it with the memory stores;
``agents.worker`` calls :meth:`ProvisionalChanges.after_batch` after each ``purchases`` batch is
folded. The scoring is pure (``state.evaluator.early``, which says what is and is not promised);
this module picks the live purchases, reads their customers' current state and last evaluated
profile, and keeps the versions the evaluator last saved, re-read at most every ``refresh_s``
(the snapshot is a pickle of the models: read once per refresh, not per batch).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from state.customer.profile_store import ProfileStore
from state.customer.profiles import Change, Profile
from state.customer.store import CustomerStore
from state.evaluator.config import EvaluatorConfig, segment_lookups
from state.evaluator.early import Published, Versions, early_changes
from state.evaluator.saved import read_models
from state.segments.cutpoints import CutPoints
from streams.contract import Purchase

__all__ = ["ProvisionalChanges", "PublishProvisional"]

PublishProvisional = Callable[[Sequence[Change]], Awaitable[None]]
"""Publish provisional changes to segment-changes; return once Kafka acked them."""


class ProvisionalChanges:
    """Scores a batch's live purchases against the evaluator's last saved versions."""

    def __init__(
        self,
        config: EvaluatorConfig,
        store: CustomerStore,
        profiles: ProfileStore,
        publish: PublishProvisional,
        *,
        window_ms: int,
        refresh_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._store = store
        self._profiles = profiles
        self._publish = publish
        self._window_ms = window_ms
        self._refresh_s = refresh_s
        self._monotonic = monotonic
        self._segment_of, _ = segment_lookups(config.preset)
        self._versions: tuple[int, Versions] | None = None  # (generation, versions)
        self._checked = -float("inf")

    async def after_batch(self, events: Sequence[Purchase], received_ms: int) -> list[Change]:
        """Publish the provisional changes of the live ``events`` just folded; return them.

        Live: event time at most ``window_ms`` before ``received_ms`` (a replay's history is not).
        Nothing is published before the evaluator has saved cut-points.
        """
        if self._window_ms <= 0:
            return []
        newest: dict[str, int] = {}
        for event in events:
            if event.occurred_at_ms >= received_ms - self._window_ms:
                newest[event.customer_id] = max(event.occurred_at_ms, newest.get(event.customer_id, 0))
        if not newest:
            return []
        versions = await self._current_versions()
        if versions is None:
            return []
        ids = sorted(newest)
        states = await self._store.current_states(ids)
        rows = await self._profiles.profiles(ids)
        published = {
            c: Published(
                None if row["profile"] is None else Profile(*row["profile"]),
                int(str(row["since_ms"])),
            )
            for c, row in rows.items()
        }
        changes = early_changes([(states[c], newest[c]) for c in ids if c in states], published, versions)
        if changes:
            await self._publish(changes)
        return changes

    async def _current_versions(self) -> Versions | None:
        now = self._monotonic()
        if self._versions is not None and now - self._checked < self._refresh_s:
            return self._versions[1]
        self._checked = now
        if self._versions is not None and await self._profiles.generation() == self._versions[0]:
            return self._versions[1]
        saved = await self._profiles.versions()
        models = await asyncio.to_thread(read_models, saved.model)  # a pickle of every model: off the loop
        if saved.cutpoints_json is None or models.segment_model is None:
            return None
        versions = Versions(
            CutPoints.from_json(saved.cutpoints_json),
            models.segment_model,
            self._segment_of,
            self._config.min_dwell_ms,
        )
        self._versions = (saved.generation, versions)
        return versions

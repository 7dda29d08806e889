"""agents.early with the in-memory stores: live purchases answered after their batch is folded.

The whole path a worker runs: ``ingest_batch`` folds raw messages, a tick evaluates and saves, then
a live purchase's batch gets its provisional change. The change is checked against the pure
function fed the same state and the evaluator's own saved versions, and against the saved profile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from agents.early import ProvisionalChanges
from agents.evaluator import SegmentEvaluator
from agents.ingest import RawMessage, ingest_batch
from state.customer.memory_store import MemoryStore
from state.customer.profile_store import MemoryProfileStore
from state.customer.profiles import Change
from state.customer.rfm import DAY_MS
from state.customer.store import Outcome
from state.evaluator.config import EvaluatorConfig
from state.segments.cutpoints import CutPoints, scores_at
from state.segments.segments import load_preset
from streams.contract import Purchase
from streams.outputs import Tick
from tests.unit.test_segment_evaluator import DAY0, Outbox, history, message, no_letters

CONFIG = EvaluatorConfig(load_preset("rfm11"))
WINDOW_MS = 300_000


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def fold(store: MemoryStore, messages: Sequence[RawMessage], received_ms: int) -> list[Purchase]:
    result = await ingest_batch(messages, store, no_letters, now=lambda: _at(received_ms))
    return [e for e, o in zip(result.events, result.outcomes, strict=True) if o >= Outcome.APPLIED]


def live_message(offset: int, customer: str, at_ms: int, amount: float) -> RawMessage:
    value = (
        f'{{"event_id":"live{offset}","customer_id":"{customer}","occurred_at":{at_ms},"amount":{amount}}}'
    )
    return RawMessage("purchases", 0, offset, customer.encode(), value.encode())


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def test_a_live_purchase_gets_a_provisional_change_scored_against_the_saved_versions() -> None:
    async def run() -> None:
        store, profiles, outbox = MemoryStore(), MemoryProfileStore(), Outbox()
        published: list[Change] = []

        async def publish(changes: Sequence[Change]) -> None:
            published.extend(changes)

        clock = Clock()
        early = ProvisionalChanges(CONFIG, store, profiles, publish, window_ms=WINDOW_MS, monotonic=clock)
        end = DAY0 + 25 * DAY_MS
        history_batch = history()
        events = await fold(store, history_batch, end)
        # nothing saved yet: no versions, no provisional change (and the history is not live anyway)
        assert await early.after_batch(events, end) == []
        evaluator = SegmentEvaluator(CONFIG, store, profiles, outbox, "purchases", poll_s=0.01)
        await evaluator.on_tick(Tick(end, {0: len(history_batch)}, "test"))
        saved = await profiles.versions()
        assert saved.cutpoints_json is not None
        cutpoints = CutPoints.from_json(saved.cutpoints_json)

        live_at = end + 3_600_000
        old = message(900, "c3", day=1, amount=70.0)  # an event from the history's time: not live
        live, newcomer = live_message(901, "c3", live_at, 55.5), live_message(902, "n1", live_at, 5)
        events = await fold(store, [old, live, newcomer], live_at + 40)
        changes = await early.after_batch(events, live_at + 40)
        assert sorted(c.customer_id for c in changes) == ["c3", "n1"]  # not the old event's
        assert published == changes
        row = await profiles.profile("c3")
        assert row is not None
        for change in changes:
            s = store.states[change.customer_id]
            assert s.last_purchase_ms is not None
            r, f, m = scores_at(cutpoints, s.last_purchase_ms, s.frequency, s.monetary_cents, live_at)
            assert change.after[:3] == (r, f, m) and change.provisional and change.at_ms == live_at
            assert change.cutpoint_version == cutpoints.version
        c3 = next(c for c in changes if c.customer_id == "c3")
        assert list(c3.before or ()) == row["profile"]  # before: the customer's last evaluated profile
        n1 = next(c for c in changes if c.customer_id == "n1")
        assert n1.before is None and n1.change_id == f"n1@{live_at}~provisional"

        # the versions are re-read at most every refresh_s: a newer save is used after that
        await evaluator.on_tick(Tick(live_at + 1, {0: 903}, "test"))
        newer = CutPoints.from_json((await profiles.versions()).cutpoints_json or "")
        assert newer.version > cutpoints.version
        events = await fold(store, [live_message(903, "n2", live_at + 5, 9)], live_at + 50)
        (stale,) = await early.after_batch(events, live_at + 50)
        assert stale.cutpoint_version == cutpoints.version
        clock.now += 1.0
        events = await fold(store, [live_message(904, "n3", live_at + 6, 9)], live_at + 60)
        (fresh,) = await early.after_batch(events, live_at + 60)
        assert fresh.cutpoint_version == newer.version

    asyncio.run(run())


def test_window_zero_turns_provisional_changes_off() -> None:
    async def run() -> None:
        store, profiles = MemoryStore(), MemoryProfileStore()

        async def publish(changes: Sequence[Change]) -> None:
            raise AssertionError("nothing to publish")

        early = ProvisionalChanges(CONFIG, store, profiles, publish, window_ms=0)
        events = await fold(store, history(), DAY0)
        assert await early.after_batch(events, DAY0) == []

    asyncio.run(run())

"""The ingest process's loop (``agents.ingest_process.fold_in_order``): order, merging, failure."""

from __future__ import annotations

import asyncio
from typing import Any

from agents.ingest import RawMessage
from agents.ingest_process import admits, fold_in_order


def _batch(*offsets: int) -> tuple[str, list[tuple[Any, ...]]]:
    return ("batch", [("purchases", 0, o, b"k", b"v", 1_000 + o) for o in offsets])


def _run(arrivals: list[Any], fail_at: int | None = None) -> tuple[list[list[int]], list[tuple[Any, ...]]]:
    """Feed ``arrivals`` (the first alone, the rest while the first step runs); steps and replies."""
    steps: list[list[int]] = []
    replies: list[tuple[Any, ...]] = []
    observed: list[tuple[str, tuple[Any, ...]]] = []

    async def main() -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        queue.put_nowait(arrivals[0])

        async def step(messages: list[RawMessage]) -> None:
            if not steps:  # the rest arrive while the first batch folds
                for item in arrivals[1:]:
                    queue.put_nowait(item)
                await asyncio.sleep(0)
            steps.append([m.offset for m in messages])
            observed.append(("batch", (len(messages),)))
            if fail_at is not None and len(steps) == fail_at:
                raise RuntimeError("Redis unavailable")

        await fold_in_order(queue, step, replies.append, observed)

    asyncio.run(main())
    return steps, replies


def test_batches_that_queued_up_meanwhile_are_folded_as_one_in_order() -> None:
    steps, replies = _run([_batch(0, 1), _batch(2), _batch(3, 4), None])
    assert steps == [[0, 1], [2, 3, 4]]
    assert replies == [("done", 1, [("batch", (2,))]), ("done", 2, [("batch", (3,))])]


def test_the_messages_keep_their_fields() -> None:
    received: list[RawMessage] = []

    async def main() -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for item in (_batch(7), None):
            queue.put_nowait(item)

        async def step(messages: list[RawMessage]) -> None:
            received.extend(messages)

        await fold_in_order(queue, step, lambda reply: None, [])

    asyncio.run(main())
    assert received == [RawMessage("purchases", 0, 7, b"k", b"v", 1_007)]


def test_a_failure_is_replied_with_its_traceback_and_nothing_after_it_runs() -> None:
    steps, replies = _run([_batch(0), _batch(1), None], fail_at=1)
    assert steps == [[0]]
    assert len(replies) == 1 and replies[0][0] == "failed" and "Redis unavailable" in replies[0][1]


def test_the_pipe_closing_ends_the_loop_after_the_batches_before_it() -> None:
    steps, replies = _run([None])
    assert steps == [] and replies == []
    steps, replies = _run([_batch(0), None])
    assert steps == [[0]] and [r[:2] for r in replies] == [("done", 1)]


def test_batches_are_handed_over_within_the_count_and_the_bytes_in_flight() -> None:
    assert admits([], 500 * 2**20, 4, 64 * 2**20)  # alone, any size: a batch is never refused for good
    assert admits([10, 10, 10], 10, 4, 100)
    assert not admits([10, 10, 10, 10], 10, 4, 100)  # four in flight
    assert admits([40, 40], 20, 4, 100)  # exactly the budget
    assert not admits([40, 40], 21, 4, 100)

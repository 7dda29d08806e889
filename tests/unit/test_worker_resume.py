"""Where a worker's partitions resume after a rebalance (pure: fake consumers).

A rebalance that replaces the assignment while a worker resumes it is not a failure; a partition
committed at offset 0 is read again from 0 when Faust seeks back to the committed offsets.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import IllegalStateError
from faust.types import TP

from agents.partition_resume import reread_from_offset_zero, resume_unless_reassigned
from state.customer.memory_store import MemoryStore


class Consumer:
    """The calls ``resume_from_store`` makes; ``position`` raises what the test gives it."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.committed: list[dict[TP, int]] = []
        self.sought: list[dict[TP, int]] = []

    def assignment(self) -> set[TP]:
        return {TP("purchases", 0), TP("purchases", 1)}

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 10)

    async def position(self, tp: TP) -> int:
        if self.error is not None:
            raise self.error
        return 0

    async def _commit(self, offsets: dict[TP, int]) -> None:
        self.committed.append(offsets)

    async def seek_wait(self, offsets: dict[TP, int]) -> None:
        self.sought.append(offsets)


class App:
    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer


def resume(consumer: Consumer) -> None:
    app: Any = App(consumer)
    asyncio.run(resume_unless_reassigned(app, MemoryStore(), ["purchases"]))


def test_a_partition_revoked_while_resuming_leaves_the_resume_to_the_next_rebalance() -> None:
    consumer = Consumer(IllegalStateError("Partition TP(topic='purchases', partition=1) is not assigned"))
    resume(consumer)  # no exception: the worker keeps running
    assert consumer.committed == [] and consumer.sought == []  # nothing half-done on the old assignment


def test_a_steady_assignment_resumes_from_the_store_and_other_errors_still_raise() -> None:
    consumer = Consumer(None)
    resume(consumer)
    assert consumer.sought == [{TP("purchases", 0): 0, TP("purchases", 1): 0}]
    with pytest.raises(RuntimeError, match="boom"):
        resume(Consumer(RuntimeError("boom")))


class FetchingConsumer:
    """Positions and committed offsets; ``seek_to_committed`` skips offset 0 as aiokafka 0.14's does."""

    def __init__(self, committed: dict[TP, int | None], positions: dict[TP, int]) -> None:
        self.committed = committed
        self.positions = positions

    async def seek_to_committed(self) -> dict[TP, int | None]:
        for tp, offset in self.committed.items():
            if offset and offset > 0:
                self.positions[tp] = offset
        return dict(self.committed)

    async def seek_wait(self, offsets: dict[TP, int]) -> None:
        self.positions.update(offsets)


def test_a_partition_committed_at_zero_is_read_again_from_zero_after_a_dropped_fetch() -> None:
    start, middle, never = TP("clock", 0), TP("purchases", 0), TP("purchases", 1)
    # each partition's first records were fetched (positions moved) and dropped by a stopped flow
    consumer = FetchingConsumer({start: 0, middle: 5, never: None}, {start: 1, middle: 9, never: 3})
    app: Any = App(consumer)  # type: ignore[arg-type]

    asyncio.run(consumer.seek_to_committed())
    assert consumer.positions[start] == 1  # the library alone: the message at offset 0 is skipped

    assert reread_from_offset_zero(app) is True
    assert reread_from_offset_zero(app) is False  # wrapped once, however many rebalances
    committed = asyncio.run(app.consumer.seek_to_committed())
    assert committed == {start: 0, middle: 5, never: None}  # what Faust records as committed: unchanged
    # offset 0 read again; above 0 as before; never committed: left to the reset policy
    assert consumer.positions == {start: 0, middle: 5, never: 3}

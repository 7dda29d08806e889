"""A rebalance that replaces the assignment while a worker resumes it is not a failure (pure: a fake consumer)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import IllegalStateError
from faust.types import TP

from agents.partition_resume import resume_unless_reassigned
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

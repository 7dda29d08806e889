"""The demo's replay thread: Ctrl-C must not wait for a publisher that cannot be stopped.

A kafka-python producer waiting for the broker's metadata blocks up to ``max_block_ms`` (a minute)
whatever the stop flag says; the demo's replay runs in a daemon thread so that ``asyncio.run`` does
not wait for it at exit (its default executor would)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from segstream.demo import _in_daemon_thread


def test_a_result_and_an_error_reach_the_awaiting_task() -> None:
    async def go() -> int:
        return await _in_daemon_thread(lambda: 41 + 1)

    assert asyncio.run(go()) == 42

    def fail() -> int:
        raise ValueError("broker gone")

    async def go_fail() -> int:
        return await _in_daemon_thread(fail)

    with pytest.raises(ValueError, match="broker gone"):
        asyncio.run(go_fail())


def test_asyncio_run_returns_without_waiting_for_a_blocked_thread() -> None:
    release = threading.Event()

    async def go() -> None:
        stuck = _in_daemon_thread(lambda: release.wait(30))
        await asyncio.wait([stuck], timeout=0.1)

    started = time.monotonic()
    asyncio.run(go())
    assert time.monotonic() - started < 5  # not the thread's 30 s
    release.set()  # the thread finishes; its result goes nowhere (the loop is closed)

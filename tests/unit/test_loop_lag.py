"""agents.loop_lag: the lag watcher sees a stall of the loop; large computations leave the loop."""

from __future__ import annotations

import asyncio
import threading
import time

from agents.loop_lag import watch_loop_lag
from state.adapters.off_loop import OFF_THE_LOOP_FROM, off_the_loop


async def test_a_blocked_loop_is_observed_as_lag() -> None:
    seen: list[float] = []
    watcher = asyncio.create_task(watch_loop_lag(seen.append, interval_s=0.01))
    await asyncio.sleep(0.05)
    time.sleep(0.3)  # a step computing without awaiting holds the loop
    await asyncio.sleep(0.05)
    watcher.cancel()
    assert seen and min(seen) >= 0.0
    assert max(seen) >= 0.25  # the sleep that spanned the stall ended at least that late


async def test_small_work_stays_on_the_loop_and_large_work_runs_in_a_thread() -> None:
    loop_thread = threading.get_ident()
    assert await off_the_loop(OFF_THE_LOOP_FROM - 1, threading.get_ident) == loop_thread
    assert await off_the_loop(OFF_THE_LOOP_FROM, threading.get_ident) != loop_thread
    assert await off_the_loop(10_000, sorted, [3, 1, 2], reverse=True) == [3, 2, 1]


async def test_the_loop_serves_other_steps_while_large_work_runs() -> None:
    ticks: list[int] = []

    async def other_step() -> None:
        for i in range(5):
            ticks.append(i)
            await asyncio.sleep(0)

    def compute() -> int:
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # pure Python: holds the GIL between switches
            pass
        return len(ticks)

    seen_during, _ = await asyncio.gather(off_the_loop(OFF_THE_LOOP_FROM, compute), other_step())
    assert seen_during == 5  # the other step ran to its end while the computation was still going

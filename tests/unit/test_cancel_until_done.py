"""A cancellation a library loses does not keep a host or a tick running (``agents.cancellation.cancel_until_done``).

redis-py's asyncio client now and then returns a reply to a task whose cancellation was asked
while it waited, and the cancellation is gone; the tasks here lose the first ones on purpose."""

from __future__ import annotations

import asyncio

from agents.cancellation import cancel_until_done


async def test_a_task_that_loses_cancellations_is_cancelled_again_until_it_ends() -> None:
    lost = 0

    async def polls() -> None:
        nonlocal lost
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if lost < 3:  # as if a library had returned a reply instead
                    lost += 1
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]
                    continue
                raise

    task = asyncio.ensure_future(polls())
    await asyncio.sleep(0.05)
    assert await cancel_until_done(task, every_s=0.02)
    assert task.cancelled() and lost == 3


async def test_a_task_that_never_ends_is_left_after_the_time_given() -> None:
    running = True

    async def never_ends() -> None:
        while running:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                asyncio.current_task().uncancel()  # type: ignore[union-attr]

    task = asyncio.ensure_future(never_ends())
    await asyncio.sleep(0.05)
    assert not await cancel_until_done(task, every_s=0.02, give_up_s=0.2)
    assert not task.done()
    running = False  # the test's own end
    await task

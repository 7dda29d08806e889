"""Cancelling a task that may lose its cancellation: a host's loop or a tick stopped for good.

Used where a task must end before something else goes on: a host stopped when a rebalance revokes
its partition (``agents.host_pool``), a tick abandoned in the evaluation process
(``agents.evaluation_process``).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_until_done"]


async def cancel_until_done(
    task: asyncio.Task[Any], every_s: float = 0.2, give_up_s: float | None = None
) -> bool:
    """Cancel ``task``, again every ``every_s`` until it ends (True), or until ``give_up_s`` passed
    (False): redis-py's asyncio client now and then returns a command's reply to a task whose
    cancellation was asked while it waited, and the cancellation is lost (seen in about 1 of 15
    cancels of a loop polling Redis, 2026-12-01; the host's loop and a tick both poll Redis)."""
    deadline = None if give_up_s is None else asyncio.get_running_loop().time() + give_up_s
    while not task.done():
        if deadline is not None and asyncio.get_running_loop().time() > deadline:
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=every_s)
    return True

"""How late the worker's event loop runs.

Every step of a worker (ingest, provisional changes, the clock owner's evaluation, HTTP) shares one
asyncio event loop; a step that computes for 300 ms without awaiting holds every other step for
those 300 ms, whatever Kafka and Redis do. :func:`watch_loop_lag` sleeps ``interval_s`` again and
again and observes how much later than asked each sleep ended
(``segstream_event_loop_lag_seconds``): a direct reading of the stalls behind a latency tail.
Large computations keep off the loop through :func:`state.adapters.off_loop.off_the_loop`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["watch_loop_lag"]


async def watch_loop_lag(observe: Callable[[float], None], interval_s: float = 0.05) -> None:
    """Observe each sleep's overshoot (seconds) for ever; cancel the task to stop it."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        observe(max(0.0, loop.time() - asked))

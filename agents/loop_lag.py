"""How late the worker's event loop runs, and how its large computations keep off it.

Every step of a worker (ingest, provisional changes, the clock owner's evaluation, HTTP) shares one
asyncio event loop; a step that computes for 300 ms without awaiting holds every other step for
those 300 ms, whatever Kafka and Redis do. :func:`watch_loop_lag` sleeps ``interval_s`` again and
again and observes how much later than asked each sleep ended
(``segstream_event_loop_lag_seconds``): a direct reading of the stalls behind a latency tail.

:func:`off_the_loop` runs a pure computation over many items (the messages of a tick's thousands
of changes, the rows of a save) in a thread: the loop then keeps serving the other steps between
the thread's turns at the GIL (``sys.getswitchinterval()``, 5 ms by default) instead of waiting
for the whole computation. Small inputs stay on the loop, where a thread's hand-over would cost
more than it saves. The computation must not touch what the loop's other steps change meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["OFF_THE_LOOP_FROM", "off_the_loop", "watch_loop_lag"]

OFF_THE_LOOP_FROM = 256
"""Items from which :func:`off_the_loop` hands the computation to a thread (~a few ms of work)."""

P = ParamSpec("P")
T = TypeVar("T")


async def watch_loop_lag(observe: Callable[[float], None], interval_s: float = 0.05) -> None:
    """Observe each sleep's overshoot (seconds) for ever; cancel the task to stop it."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        observe(max(0.0, loop.time() - asked))


async def off_the_loop(items: int, compute: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``compute(*args, **kwargs)``; in a thread when it covers ``items`` >= :data:`OFF_THE_LOOP_FROM`."""
    if items < OFF_THE_LOOP_FROM:
        return compute(*args, **kwargs)
    return await asyncio.to_thread(compute, *args, **kwargs)

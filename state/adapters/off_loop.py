"""Large pure computations kept off the event loop: one rule for the worker and its adapters.

A worker's steps share one asyncio event loop (``agents.loop_lag`` measures how late it runs);
a step that computes for 300 ms without awaiting holds every other step for those 300 ms.
:func:`off_the_loop` runs a pure computation over many items (the messages of a tick's thousands
of changes, the partitions of a batch publish, the logs of many customers) in a thread: the loop
then keeps serving the other steps between the thread's turns at the GIL
(``sys.getswitchinterval()``, 5 ms by default) instead of waiting for the whole computation.
Small inputs stay on the loop, where a thread's hand-over would cost more than it saves. The
computation must not touch what the loop's other steps change meanwhile.

It lives with the adapters, the lowest place both users reach: the log reads here
(:mod:`state.adapters.log_read`) and the worker's publishing (``agents``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["OFF_THE_LOOP_FROM", "off_the_loop"]

OFF_THE_LOOP_FROM = 256
"""Items from which :func:`off_the_loop` hands the computation to a thread (~a few ms of work)."""

P = ParamSpec("P")
T = TypeVar("T")


async def off_the_loop(items: int, compute: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``compute(*args, **kwargs)``; in a thread when it covers ``items`` >= :data:`OFF_THE_LOOP_FROM`."""
    if items < OFF_THE_LOOP_FROM:
        return compute(*args, **kwargs)
    return await asyncio.to_thread(compute, *args, **kwargs)

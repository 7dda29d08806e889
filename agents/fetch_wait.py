"""How long the broker may hold a worker's fetch request: Faust's fixed 1.5 s, shortened.

aiokafka keeps one fetch request in flight per broker, and a request asks for every assigned
partition that is not paused and has no records waiting to be consumed. Faust builds its consumer
with ``fetch_max_wait_ms=1500`` and no setting to change it, so a request that went out while the
``purchases`` partitions were drained or paused by Faust's flow control asked only for the quiet
topics (clock, campaign events, catalogue, reviews), and the broker held it up to 1.5 s while the
purchases piled up behind it. Measured (``bench/freshness.py``'s one-worker run at a quarter of
capacity, evaluation held off, 2026-11-30): the worker sat idle 0.6-1.3 s between bursts and
a batch's oldest purchase was 1.2-1.7 s old when its step began; with 50 ms, 0.3-0.4 s and no
such gaps (send -> provisional change consumed p50 1.64 s -> 0.41 s).

:func:`set_fetch_max_wait` sets the wait on the started consumer's fetcher (read for each new
request). Faust and aiokafka have no public way to, so it reaches private attributes; when they
are not there (another version) it logs a warning and leaves Faust's wait, never stopping the worker.
The cost of a short wait: an idle worker sends a fetch request every ``SEGSTREAM_FETCH_MAX_WAIT_MS``.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["set_fetch_max_wait"]

log = logging.getLogger(__name__)


def set_fetch_max_wait(app: Any, wait_ms: int) -> bool:
    """Set the fetch wait of ``app``'s started aiokafka consumer; False (warned) when it cannot."""
    try:
        fetcher = app.consumer._thread._consumer._fetcher
        current = fetcher._fetch_max_wait_ms
    except AttributeError:
        log.warning(
            "could not set the consumer's fetch wait (Faust or aiokafka internals moved); Faust's stays"
        )
        return False
    if current != wait_ms:
        fetcher._fetch_max_wait_ms = wait_ms
        log.info("consumer fetch wait: %d ms (was %d)", wait_ms, current)
    return True

"""``segstream clock show|advance`` and ``segstream fit``: commands that send the evaluator a tick.

Both read the evaluator's clock and the event-time watermark, check the time asked for, and
publish a clock tick (``fit`` one with ``refit``, then waits for the new lifetime model).
Apart from ``segstream.cli`` because they share that clock logic.
"""

from __future__ import annotations

import asyncio
import time

from agents.settings import Settings
from segstream.cli_args import fail

__all__ = ["FIT_TIMEOUT_S", "clock_command", "fit_command"]

FIT_TIMEOUT_S = 120.0  # segstream fit waits this long for the evaluator's new lifetime model


async def _clocks(settings: Settings) -> tuple[int | None, int | None]:
    """(evaluator clock, event-time watermark) in epoch ms."""
    from state.adapters.redis_profiles import RedisProfileStore
    from state.adapters.redis_store import RedisStore
    from state.evaluator.read_model import load_summary

    store = RedisStore.connect(settings.redis_access, settings.redis_prefix)
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        summary, watermark = await load_summary(profiles), await store.watermark()
    finally:
        await store.close()
        await profiles.close()
    return (summary.as_of_ms if summary else None), watermark


async def clock_command(settings: Settings, action: str, to_ms: int | None, by_days: float | None) -> int:
    """``show`` prints both clocks; ``advance`` sends a tick ``--to`` a time or ``--by`` days."""
    from streams.outputs import rfc3339

    clock_ms, watermark = await _clocks(settings)
    if action == "show":
        print(f"evaluator clock: {rfc3339(clock_ms) if clock_ms is not None else 'not started'}")
        print(f"event-time watermark: {rfc3339(watermark) if watermark is not None else 'no events'}")
        return 0
    if to_ms is None:
        base = clock_ms if clock_ms is not None else watermark
        if base is None:
            return fail("--by needs a clock or a watermark to count from: no events yet, use --to")
        to_ms = base + round((by_days or 0) * 86_400_000)
    if clock_ms is not None and to_ms <= clock_ms:
        return fail(f"the clock is already at {rfc3339(clock_ms)}; it only moves forward")
    from streams.limits import InvalidEvent, wall_clock_ms

    try:
        settings.input_limits().check_event_time("clock tick", to_ms, wall_clock_ms())
    except InvalidEvent as exc:
        return fail(exc.reason)
    from segstream.kafka_io import ensure_topics, send_tick

    ensure_topics(settings)
    send_tick(settings, to_ms, source="cli")
    print(f"clock tick sent: evaluate segments up to {rfc3339(to_ms)}")
    return 0


async def fit_command(settings: Settings, timeout_s: float = FIT_TIMEOUT_S) -> int:
    """Ask the segment evaluator to refit the lifetime model now (a clock tick with ``refit``)."""
    from segstream.kafka_io import ensure_topics, send_tick
    from state.adapters.redis_profiles import RedisProfileStore
    from state.evaluator.predict import LifetimeModel
    from state.evaluator.read_model import load_summary
    from streams.outputs import rfc3339

    clock_ms, watermark = await _clocks(settings)
    if watermark is None:
        return fail("nothing to fit: no purchases in the store yet")
    as_of = max(clock_ms or 0, watermark + 1)  # just past the last purchase, or the clock if later
    profiles = RedisProfileStore.connect(settings.redis_access, settings.redis_prefix)
    try:
        before = await load_summary(profiles)
        version = before.lifetime.version if before and before.lifetime else 0
        ensure_topics(settings)
        send_tick(settings, as_of, source="cli", refit=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            summary = await load_summary(profiles)
            if summary and summary.lifetime and summary.lifetime.version > version:
                model = LifetimeModel.from_params(summary.lifetime)
                break
            await asyncio.sleep(0.25)
        else:
            return fail(
                f"no new lifetime model within {timeout_s:.0f}s: is a worker running, and are there at least "
                "100 buyers, 10 repeat buyers and four weeks of history?"
            )
    finally:
        await profiles.close()
    print(
        f"{model.describe()}; log-likelihood {model.bgnbd.log_likelihood:.1f} "
        f"({model.customers:,} customers, weeks, as of {rfc3339(model.fitted_at_ms)})"
    )
    return 0

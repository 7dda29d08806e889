"""The default clock on real services: a plain producer that never sends a tick gets segments.

The producer here is plain kafka-python (no segstream code on the sending side): the CDNOW sample,
shuffled, with 10% resends. The worker runs with the default ``SEGSTREAM_CLOCK=watermark``: the
events' own time moves the clock, and once the partitions go idle it catches up with the newest
event, so every customer ends up evaluated, with a cluster and predictions.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agents.settings import Settings
from segstream.sources import load_cdnow, occurred_at_ms, shuffled_with_resends
from tests.conftest import WorkerFactory, wait_for_stats
from tests.integration.test_pipeline import export_customers
from tests.integration.test_segments_live import (
    SAMPLE_CUSTOMERS,
    SAMPLE_EVENTS,
    evaluator_clock,
    latest_profiles,
    logs_fold_to_the_state,
    wait_for_clock,
)
from tests.plain_producer import publish_plain

pytestmark = pytest.mark.integration


def test_a_plain_producer_without_ticks_gets_every_customer_evaluated(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    defaults = Settings()
    live = settings.model_copy(
        update={
            "clock": defaults.clock,
            "clock_lateness_s": defaults.clock_lateness_s,
            "clock_idle_timeout_s": defaults.clock_idle_timeout_s,
        }
    )
    assert live.clock == "watermark", "the default clock needs no ticks"
    worker = start_worker(live)
    history = load_cdnow(sample=True)
    publish_plain(live, shuffled_with_resends(history, seed=11))  # 10% producer resends: same event_id
    last_sent = time.monotonic()
    wait_for_stats(live, lambda s: s.applied >= SAMPLE_EVENTS, [worker])
    newest = max(occurred_at_ms(history))
    wait_for_clock(live, newest + 1, worker, timeout_s=240)  # all partitions idle: caught up
    caught_up_s = time.monotonic() - last_sent

    latest = latest_profiles(live)
    assert len(latest) == SAMPLE_CUSTOMERS
    assert all(doc["cluster"] is not None for doc in latest.values())
    table = export_customers(live, tmp_path / "customers.csv")
    assert len(table) == SAMPLE_CUSTOMERS
    assert table["cluster"].notna().all() and table["p_alive"].notna().all()
    assert table["churn_probability"].notna().all()
    assert evaluator_clock(live) == newest + 1
    # events that arrived after the clock had compacted their time went into the log bases: exact
    assert logs_fold_to_the_state(live, newest + 1) < SAMPLE_EVENTS // 20
    print(f"clock caught up {caught_up_s:.1f} s after the producer's last event")

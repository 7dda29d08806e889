"""Prometheus metrics of one worker, served at ``/metrics``."""

from __future__ import annotations

import re
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from state.customer.store import Outcome
from state.evaluator.read_model import ChurnReport

__all__ = [
    "REGISTRY",
    "TICKS_REFUSED",
    "observe_batch",
    "observe_batch_wait",
    "observe_campaign_batch",
    "observe_churn",
    "observe_resume",
    "observe_retry",
    "observe_tick",
]

REGISTRY = CollectorRegistry()

EVENTS = Counter(
    "segstream_purchase_events",
    "Purchase messages consumed, by outcome (applied, duplicate, redelivered, invalid)",
    ["outcome"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "segstream_dead_letters",
    "Messages sent to purchases.dlq, by the field the reason names",
    ["reason"],
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "segstream_batch_seconds",
    "Time to validate, fold and dead-letter one batch",
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH_SIZE = Histogram(
    "segstream_batch_size",
    "Messages per processed batch",
    registry=REGISTRY,
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500),
)
WATERMARK = Gauge(
    "segstream_event_time_watermark_ms",
    "Event-time watermark: largest occurred_at (epoch ms) of any valid event, all workers",
    registry=REGISTRY,
)

SEGMENT_CHANGES = Counter(
    "segstream_segment_changes",
    "Profile changes published to segment-changes, by reason",
    ["reason"],
    registry=REGISTRY,
)
CAMPAIGN_EVENTS = Counter(
    "segstream_campaign_events",
    "campaign-events messages consumed: added to the evaluator's agenda, or invalid (dead-lettered)",
    ["outcome"],
    registry=REGISTRY,
)
CAMPAIGN_DEAD_LETTERS = Counter(
    "segstream_campaign_dead_letters",
    "Messages sent to campaign-events.dlq, by the field the reason names",
    ["field"],
    registry=REGISTRY,
)
ALERTS = Counter(
    "segstream_alerts",
    "Alerts published to the alerts topic, by kind",
    ["kind"],
    registry=REGISTRY,
)
EVALUATOR_CLOCK = Gauge(
    "segstream_evaluator_clock_ms",
    "Event time (epoch ms) up to which segments are evaluated",
    registry=REGISTRY,
)
CHURN_AUC = Gauge(
    "segstream_churn_auc",
    "Prequential ROC AUC of the online churn model, by named segment at prediction time ('all': overall)",
    ["segment"],
    registry=REGISTRY,
)
EVALUATION_HOSTS = Gauge(
    "segstream_evaluation_hosts",
    "purchases partitions this worker evaluates (SEGSTREAM_EVALUATION_HOSTS; 0 otherwise)",
    registry=REGISTRY,
)
TICKS_ABANDONED = Counter(
    "segstream_clock_ticks_abandoned",
    "evaluations abandoned because a rebalance began (SEGSTREAM_EVALUATION_HOSTS); a tick among them is read again",
    registry=REGISTRY,
)
EVALUATOR_SAVES_SUPERSEDED = Counter(
    "segstream_evaluator_saves_superseded",
    "evaluator saves refused because another evaluator saved meanwhile (two clock owners for a moment); "
    "the tick is evaluated again from that save",
    registry=REGISTRY,
)
TICKS_REFUSED = Counter(
    "segstream_clock_ticks_refused",
    "clock messages refused (not a tick, outside the accepted window, unknown partition, stalled wait); sent to clock.dlq",
    registry=REGISTRY,
)
TICK_SECONDS = Histogram(
    "segstream_tick_seconds",
    "Time to evaluate one clock tick (wait for ingest, evaluate, publish, save)",
    registry=REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120),
)
RECEIPT_TO_CHANGE = Histogram(
    "segstream_receipt_to_change_seconds",
    "A purchase received by a worker (its consumer handed it over) -> the segment change it caused"
    " published (Kafka acked), per event",
    registry=REGISTRY,
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RECEIPT_TO_PROVISIONAL_CHANGE = Histogram(
    "segstream_receipt_to_provisional_change_seconds",
    "A live purchase received by a worker (its consumer handed it over) -> its provisional change"
    " published (Kafka acked), per change",
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_WAIT = Histogram(
    "segstream_batch_wait_seconds",
    "How long a purchase batch's first arrival waited in the worker (the stream's buffer, the batch"
    " filling) before the batch's step started, per batch",
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENT_LOOP_LAG = Histogram(
    "segstream_event_loop_lag_seconds",
    "How much later than asked a 50 ms sleep on the worker's event loop ended (a stall holds every step)",
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENT_TIME_TO_CHANGE = Histogram(
    "segstream_event_time_to_change_seconds",
    "A purchase's event time -> the segment change it caused published (includes producer delay; years in a replay)",
    registry=REGISTRY,
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)

REDIS_RETRIES = Counter(
    "segstream_redis_retries",
    "Redis operations retried after a transient error (connection lost, timeout, Redis loading), by operation",
    ["operation"],
    registry=REGISTRY,
)
TOPIC_RESETS = Counter(
    "segstream_topic_resets",
    "Topics found recreated or truncated at partition assignment (a consumed offset beyond the log end)",
    ["topic"],
    registry=REGISTRY,
)
FENCE_EPOCH = Gauge(
    "segstream_fence_epoch",
    "Current fence epoch of a consumed topic (moves on at each detected recreation)",
    ["topic"],
    registry=REGISTRY,
)
RESUMED_BEHIND_KAFKA = Counter(
    "segstream_resumed_behind_kafka_messages",
    "Messages re-read at assignment because Kafka had committed past what Redis recorded as consumed",
    ["topic"],
    registry=REGISTRY,
)

_INDEX = re.compile(r"\[\d+\]")  # items[3].sku -> items[].sku keeps label cardinality bounded
_OUTCOME_LABEL = {
    Outcome.REDELIVERED: "redelivered",
    Outcome.DUPLICATE: "duplicate",
    Outcome.APPLIED: "applied",
    Outcome.NEW_CUSTOMER: "applied",
}


def observe_batch(
    size: int, seconds: float, outcomes: Sequence[Outcome], reasons: Sequence[str], watermark_ms: int | None
) -> None:
    """Record one processed batch."""
    BATCH_SIZE.observe(size)
    BATCH_SECONDS.observe(seconds)
    for outcome in outcomes:
        EVENTS.labels(_OUTCOME_LABEL[outcome]).inc()
    for reason in reasons:
        EVENTS.labels("invalid").inc()
        DEAD_LETTERS.labels(_INDEX.sub("[]", reason.split(":", 1)[0])).inc()
    if watermark_ms is not None:
        WATERMARK.set(watermark_ms)


def observe_campaign_batch(added: int, invalid_reasons: Sequence[str]) -> None:
    CAMPAIGN_EVENTS.labels("added").inc(added)
    for reason in invalid_reasons:
        CAMPAIGN_EVENTS.labels("invalid").inc()
        CAMPAIGN_DEAD_LETTERS.labels(reason.split(":", 1)[0]).inc()


def observe_change_latency(received_ms: Sequence[int], occurred_ms: Sequence[int], published_ms: int) -> None:
    """One observation per purchase whose change was just published."""
    for ms in received_ms:
        RECEIPT_TO_CHANGE.observe(max(published_ms - ms, 0) / 1000)
    for ms in occurred_ms:
        EVENT_TIME_TO_CHANGE.observe(max(published_ms - ms, 0) / 1000)


def observe_provisional_latency(received_ms: Sequence[int], published_ms: int) -> None:
    """One observation per provisional change just published (the receipt of the purchase it answers)."""
    for ms in received_ms:
        RECEIPT_TO_PROVISIONAL_CHANGE.observe(max(published_ms - ms, 0) / 1000)


def observe_batch_wait(arrived_ms: Sequence[int | None], started_ms: int) -> None:
    """The wait of the batch's earliest known arrival; nothing when no arrival is known."""
    known = [ms for ms in arrived_ms if ms is not None]
    if known:
        BATCH_WAIT.observe(max(started_ms - min(known), 0) / 1000)


def observe_tick(as_of_ms: int, seconds: float) -> None:
    EVALUATOR_CLOCK.set(as_of_ms)
    TICK_SECONDS.observe(seconds)


def observe_churn(report: ChurnReport) -> None:
    """The churn model's AUC overall and by segment (left unset while undefined)."""
    for segment, auc in [("all", report.auc), *((s, row.auc) for s, row in report.by_segment.items())]:
        if auc is not None:
            CHURN_AUC.labels(segment).set(auc)


def observe_retry(operation: str, _error: Exception) -> None:
    REDIS_RETRIES.labels(operation).inc()


def observe_resume(topic: str, epoch: int, reset: bool, rewound: int) -> None:
    """One topic's partitions resumed at assignment: its epoch, whether it was reset, messages re-read."""
    FENCE_EPOCH.labels(topic).set(epoch)
    if reset:
        TOPIC_RESETS.labels(topic).inc()
    if rewound:
        RESUMED_BEHIND_KAFKA.labels(topic).inc(rewound)

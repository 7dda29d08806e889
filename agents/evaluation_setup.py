"""What evaluating needs, built the same way wherever the evaluator runs.

The evaluator runs in the worker's own process (``SEGSTREAM_EVALUATOR_PROCESS=false``) or in a
process of its own that the worker starts (``agents.evaluation_process``, the default). Both build
their Redis stores, the evaluator's configuration and its publisher here, so the two are the same
evaluator with the same inputs: only where it computes differs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from agents import metrics
from agents.batch_publish import Message
from agents.evaluated_output import OutputTopics, evaluated_messages
from agents.evaluator import PublishChanges
from agents.moves import SEGMENT_MOVES
from agents.settings import Settings
from state.adapters.dedupe_window import DedupeWindow
from state.adapters.off_loop import off_the_loop
from state.adapters.redis_partition_rows import RedisPartitionRows
from state.adapters.redis_profiles import RedisProfileStore
from state.adapters.redis_store import RedisStore
from state.customer.profiles import Change
from state.customer.rfm import DAY_MS
from state.evaluator.cluster_quality import QualityConfig
from state.evaluator.config import EvaluatorConfig
from state.models.alerts import Alert, AlertConfig
from state.segments.segments import Preset, load_preset
from streams import topics

__all__ = [
    "OutputCounts",
    "count_output",
    "evaluated_publisher",
    "evaluator_config",
    "output_topics",
    "redis_stores",
    "split_rows",
]


def evaluator_config(settings: Settings) -> EvaluatorConfig:
    return EvaluatorConfig(
        load_preset(settings.segment_preset),
        min_dwell_ms=round(settings.cluster_min_dwell_days * DAY_MS),
        alerts=AlertConfig(min_auc=settings.alert_min_auc, max_ece=settings.alert_max_ece),
        quality=QualityConfig(sample_size=settings.cluster_quality_sample),
    )


def redis_stores(
    settings: Settings, on_retry: Callable[[str, Exception], None] = metrics.observe_retry
) -> tuple[RedisStore, RedisProfileStore]:
    """The customer store and the profile store, with the worker's retry policy and fences."""
    retry = settings.redis_retry
    store = RedisStore.connect(
        settings.redis_access,
        settings.redis_prefix,
        retry=retry,
        on_retry=on_retry,
        watch_restarts=True,  # never write to a Redis that lost this worker's acknowledged writes
        dedupe_window_s=settings.dedupe_window_s,
        eval_partitions=settings.partitions,  # a new namespace's, the purchases topic's count
    )
    profiles = RedisProfileStore.connect(
        settings.redis_access, settings.redis_prefix, retry=retry, on_retry=on_retry
    )
    profiles.campaigns.dedupe = DedupeWindow(settings.dedupe_window_s)
    profiles.campaigns.proposed_partitions = settings.partitions  # as the customer store's
    return store, profiles


def split_rows(settings: Settings) -> RedisPartitionRows | None:
    """Where a split evaluator saves its partitions' rows (``SEGSTREAM_EVALUATION_SPLIT``), else None."""
    if not settings.evaluation_split:
        return None
    return RedisPartitionRows.connect(
        settings.redis_access, settings.redis_prefix, retry=settings.redis_retry
    )


def output_topics(settings: Settings) -> OutputTopics:
    return OutputTopics(
        settings.topic(topics.SEGMENT_CHANGES),
        settings.topic(topics.CUSTOMER_SEGMENTS),
        settings.topic(topics.ALERTS),
        settings.topic(topics.SEGMENT_MOVES),
    )


@dataclass(frozen=True, slots=True)
class OutputCounts:
    """What one publish put on the wire, by metric label: change reasons, alert kinds, (move type,
    audience kind). Small and picklable: the evaluation process sends it to the worker's metrics."""

    reasons: Counter[str]
    alerts: Counter[str]
    moves: Counter[tuple[str, str]]


def count_output(counts: OutputCounts) -> None:
    """Add ``counts`` to the worker's metrics."""
    for reason, n in counts.reasons.items():
        metrics.SEGMENT_CHANGES.labels(reason).inc(n)
    for kind, n in counts.alerts.items():
        metrics.ALERTS.labels(kind).inc(n)
    for (move_type, kind), n in counts.moves.items():
        SEGMENT_MOVES.labels(move_type, kind).inc(n)


def evaluated_publisher(
    publish_batched: Callable[[Sequence[Message]], Awaitable[int]],
    preset: Preset,
    names: OutputTopics,
    counted: Callable[[OutputCounts], None],
) -> PublishChanges:
    """Every change to segment-changes, each customer's latest profile to customer-segments, every
    alert to alerts, every move to segment-moves (built off the loop when many); then ``counted``."""

    async def publish(changes: Sequence[Change], alerts: Sequence[Alert]) -> None:
        messages, moves = await off_the_loop(
            len(changes) + len(alerts), evaluated_messages, changes, alerts, preset, names
        )
        await publish_batched(messages)
        counted(
            OutputCounts(
                Counter(c.reason for c in changes),
                Counter(a.kind for a in alerts),
                Counter((m.type, m.audience.kind) for m in moves),
            )
        )

    return publish

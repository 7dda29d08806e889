"""Typed settings, read once from the environment (prefix ``SEGSTREAM_``).

Built in the composition root (the CLI) and passed down; nothing reads the
environment at import time. One object, in parts by role: how to reach Kafka and Redis
(:mod:`agents.settings_connection`), the input limits (:mod:`agents.settings_limits`), the
analytics (:mod:`agents.settings_analytics`), and here what the worker runs and evaluates.

>>> s = Settings(namespace="t1")
>>> s.topic("purchases"), s.redis_prefix
('t1.purchases', 't1:')
>>> Settings().topic("purchases.dlq")
'purchases.dlq'
>>> Settings(namespace="t1").to_env()["SEGSTREAM_NAMESPACE"]
't1'
>>> secured = Settings(api_token="tok-123")
>>> "tok-123" in repr(secured), secured.to_env()["SEGSTREAM_API_TOKEN"]
(False, 'tok-123')
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.settings_analytics import AnalyticsSettings
from agents.settings_connection import ConnectionSettings
from agents.settings_limits import InputLimitSettings
from state.adapters.dedupe_window import DEDUPE_WINDOW_S

__all__ = ["Settings"]


class Settings(ConnectionSettings, InputLimitSettings, AnalyticsSettings, BaseSettings):
    """Every knob segstream has; each is the env var ``SEGSTREAM_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SEGSTREAM_", frozen=True)

    namespace: str = Field("", description="prefix for topic names, consumer group and Redis keys")
    partitions: int = Field(
        4, ge=1, description="partitions of the purchases topic when segstream creates it"
    )
    batch_size: int = Field(
        100,
        ge=1,
        description="max events per processed batch: a live purchase's change waits for its whole batch, so a"
        " smaller batch answers sooner; the README's Benchmarks compare 100 and 1,000",
    )
    batch_within_s: float = Field(
        0.05,
        gt=0,
        description="max wait to fill a batch, seconds (a quiet worker's purchase waits this long)",
    )
    stream_buffer: int = Field(
        4096,
        ge=100,
        le=1_000_000,
        description="messages a worker's agent may hold unprocessed per topic (Faust's stream_buffer_maxsize):"
        " Faust stops fetching a partition at 80% of it and resumes at 40%. Memory: up to this many messages"
        " waiting, each up to the broker's message size. Larger buffers did not ingest faster beyond this"
        " machine's noise (README, Benchmarks: make bench-faust)",
    )
    evaluator_process: bool = Field(
        True,
        description="the clock's owner evaluates in a process of its own (false: in the worker's process)",
    )
    evaluation_split: bool = Field(
        False,
        description="evaluate split: a model owner and one partition evaluator per evaluation partition, "
        "each partition's rows under its own Redis hash tag (same results; one process still evaluates)",
    )
    evaluation_hosts: bool = Field(
        False,
        description="with evaluation_split: each worker evaluates the partitions of purchases it owns (a "
        "partition host each, agents.host_pool), the clock's owner runs the model owner; they talk over "
        "segstream's eval-versions / eval-deltas topics, every message signed with evaluation_key",
    )
    evaluation_key: SecretStr | None = Field(
        None,
        description="secret that signs the evaluation hosts' messages (at least 16 characters; every "
        "worker of a namespace the same): a message not signed with it is refused, never unpickled",
    )
    evaluation_wait_s: float = Field(
        30.0,
        gt=0,
        description="how long the model owner waits for a silent partition host before it begins a new "
        "epoch from what is saved (a host died or moved in a rebalance)",
    )
    ingest_process: bool = Field(
        True,
        description="each worker folds purchases in a process of its own (false: in the worker's process)",
    )
    fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=30_000,
        description="longest the broker may hold a worker's fetch request for data (Faust fixes 1,500 ms)",
    )
    session_timeout_s: float = Field(
        60.0,
        ge=6,
        description="Kafka consumer-group session timeout: how soon a dead worker's partitions move",
    )
    web_enabled: bool = Field(True, description="serve /metrics over HTTP (Faust web)")
    web_bind: str = Field("127.0.0.1", description="address the worker's HTTP server listens on")
    web_port: int = Field(6066, ge=1, le=65535, description="HTTP port of the worker")
    data_dir: Path = Field(Path(".cache/worker"), description="worker scratch directory")
    segment_preset: str = Field(
        "rfm11", description="named-segment rule table (state/segments/presets/<name>.json)"
    )
    clock: Literal["watermark", "ticks", "wall"] = Field(
        "watermark",
        description="what moves the segment clock besides ticks on the clock topic (replay, segstream clock): "
        "'watermark' (default): the event time of the events themselves (the smallest partition watermark "
        "less clock_lateness_s; idle partitions left out); 'ticks': ticks only (deterministic instants, for "
        "replays and tests); 'wall': the wall clock minus clock_lateness_s",
    )
    clock_interval_s: float = Field(
        1.0, gt=0, description="watermark and wall modes: seconds between looks at the clock"
    )
    clock_lateness_s: float = Field(
        5.0, ge=0, description="watermark and wall modes: how late an event may arrive and still be on time"
    )
    clock_idle_timeout_s: float = Field(
        10.0,
        gt=0,
        description="watermark mode: a partition with no new event for this long no longer holds the clock back; "
        "when all are idle the clock catches up with the newest event",
    )
    provisional_window_s: float = Field(
        300.0,
        ge=0,
        description="a purchase whose event time is at most this many seconds before its receipt is live: the "
        "worker that folds it publishes a provisional change at once (scored against the versions in force), "
        "before the clock evaluates it; 0: none. Older events (replays, backfills) wait for the clock only",
    )
    dedupe_window_s: int = Field(
        DEDUPE_WINDOW_S,
        ge=1,
        description="a copy of an event (same customer and event_id, new offset) arriving within this many "
        "wall-clock seconds after the event was applied is ignored; one up to twice as late may be, a later one "
        "is applied again. Memory: the ids of the events applied in the last one to two windows",
    )
    tick_wait_timeout_s: float = Field(
        120.0,
        gt=0,
        description="how long a clock tick waits for the offsets it names to be processed before it is refused",
    )
    cluster_min_dwell_days: float = Field(
        7.0, ge=0, description="event-time days a customer stays in a cluster before they may switch"
    )
    alert_min_auc: float = Field(
        0.65,
        ge=0,
        le=1,
        description="a model-backed alert kind (churn_risk, likely_responder) fires only while its model's "
        "recent prequential ROC AUC is above this",
    )
    alert_max_ece: float = Field(
        0.1,
        gt=0,
        le=1,
        description="... and its recent expected calibration error (10 equal-width bins) is below this",
    )
    log_level: Literal["debug", "info", "warn", "error"] = "warn"

    @field_validator("namespace")
    @classmethod
    def _namespace_is_plain(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError("namespace may hold only letters, digits, '-' and '_'")
        return value

    @model_validator(mode="after")
    def _hosts_need_a_split_and_a_key(self) -> Settings:
        if not self.evaluation_hosts:
            return self
        if not (self.evaluation_split and self.evaluator_process):
            raise ValueError(
                "SEGSTREAM_EVALUATION_HOSTS=true needs SEGSTREAM_EVALUATION_SPLIT=true and "
                "SEGSTREAM_EVALUATOR_PROCESS=true"
            )
        key = self.evaluation_key.get_secret_value() if self.evaluation_key else ""
        if len(key) < 16:
            raise ValueError(
                "SEGSTREAM_EVALUATION_HOSTS=true needs SEGSTREAM_EVALUATION_KEY, a secret of at least "
                "16 characters shared by the namespace's workers (it signs their evaluation messages)"
            )
        return self

    @property
    def app_id(self) -> str:
        """Faust app id, which is also the Kafka consumer group."""
        return f"{self.namespace}.segstream" if self.namespace else "segstream"

    @property
    def redis_prefix(self) -> str:
        return f"{self.namespace}:" if self.namespace else ""

    def to_env(self) -> dict[str, str]:
        """These settings as ``SEGSTREAM_*`` variables, to configure a child process.

        Secrets are passed in clear (the child needs them): never print or log the result.
        Unset optional settings are left out.
        """
        return {
            f"SEGSTREAM_{name.upper()}": value.get_secret_value()
            if isinstance(value, SecretStr)
            else str(value)
            for name, value in self.model_dump().items()
            if value is not None
        }

    def topic(self, name: str) -> str:
        """Full topic name for a logical topic (``purchases`` -> ``<ns>.purchases``)."""
        return f"{self.namespace}.{name}" if self.namespace else name

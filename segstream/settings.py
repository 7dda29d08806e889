"""Typed settings, read once from the environment (prefix ``SEGSTREAM_``).

Built in the composition root (the CLI) and passed down; nothing reads the
environment at import time.

>>> s = Settings(namespace="t1")
>>> s.topic("purchases"), s.redis_prefix
('t1.purchases', 't1:')
>>> Settings().topic("purchases.dlq")
'purchases.dlq'
>>> Settings(namespace="t1").to_env()["SEGSTREAM_NAMESPACE"]
't1'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.limits import InputLimits

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Every knob segstream has; each is the env var ``SEGSTREAM_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SEGSTREAM_", frozen=True)

    kafka_url: str = Field("kafka://127.0.0.1:9092", description="Kafka bootstrap, kafka://host:port")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL")
    namespace: str = Field("", description="prefix for topic names, consumer group and Redis keys")
    partitions: int = Field(
        4, ge=1, description="partitions of the purchases topic when segstream creates it"
    )
    batch_size: int = Field(1000, ge=1, description="max events per processed batch")
    batch_within_s: float = Field(0.2, gt=0, description="max wait to fill a batch, seconds")
    session_timeout_s: float = Field(
        60.0,
        ge=6,
        description="Kafka consumer-group session timeout: how soon a dead worker's partitions move",
    )
    web_enabled: bool = Field(True, description="serve /metrics over HTTP (Faust web)")
    web_bind: str = Field("127.0.0.1", description="address the worker's HTTP server listens on")
    web_port: int = Field(6066, ge=1, le=65535, description="HTTP port of the worker")
    data_dir: Path = Field(Path(".cache/worker"), description="worker scratch directory")
    segment_preset: str = Field("rfm11", description="named-segment rule table (state/presets/<name>.json)")
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
    max_message_bytes: int = Field(
        256 * 1024,
        ge=1024,
        description="largest message value accepted; a larger one is dead-lettered unread",
    )
    max_string_length: int = Field(
        200, ge=1, description="longest id or string field (event_id, customer_id, order_id, sku, ...)"
    )
    max_items: int = Field(1000, ge=0, description="most basket lines (items) in one purchase")
    event_time_floor: datetime = Field(
        datetime(1990, 1, 1, tzinfo=UTC),
        description="earliest accepted event time (before any real history: an epoch in seconds lands in 1970)",
    )
    max_clock_skew_s: float = Field(
        3600.0, ge=0, description="latest accepted event time or tick: the wall clock at receipt plus this"
    )
    dlq_payload_bytes: int = Field(
        4096, ge=0, le=65536, description="bytes of a rejected payload kept in its dead letter"
    )
    tick_wait_timeout_s: float = Field(
        120.0,
        gt=0,
        description="how long a clock tick waits for the offsets it names to be processed before it is refused",
    )
    cluster_min_dwell_days: float = Field(
        7.0, ge=0, description="event-time days a customer stays in a cluster before they may switch"
    )
    redis_retry_s: float = Field(
        60.0,
        ge=0,
        description="how long a Redis operation is retried on transient errors (connection lost, timeout, "
        "Redis loading its data) before the worker gives up and exits 70; 0: no retry",
    )
    redis_retry_base_s: float = Field(0.05, gt=0, description="first delay between Redis retries, seconds")
    redis_retry_cap_s: float = Field(2.0, gt=0, description="longest delay between Redis retries, seconds")
    log_level: Literal["debug", "info", "warn", "error"] = "warn"

    @field_validator("namespace")
    @classmethod
    def _namespace_is_plain(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError("namespace may hold only letters, digits, '-' and '_'")
        return value

    @field_validator("event_time_floor")
    @classmethod
    def _floor_is_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("event_time_floor needs an offset, e.g. 1990-01-01T00:00:00Z")
        return value

    def input_limits(self) -> InputLimits:
        """The bounds every input is checked against (``streams.limits``)."""
        return InputLimits(
            max_message_bytes=self.max_message_bytes,
            max_string_length=self.max_string_length,
            max_items=self.max_items,
            floor_ms=int(self.event_time_floor.timestamp() * 1000),
            max_skew_ms=round(self.max_clock_skew_s * 1000),
            dlq_payload_bytes=self.dlq_payload_bytes,
        )

    @property
    def kafka_bootstrap(self) -> str:
        """``host:port`` form of :attr:`kafka_url` for plain Kafka clients."""
        return self.kafka_url.removeprefix("kafka://")

    @property
    def app_id(self) -> str:
        """Faust app id, which is also the Kafka consumer group."""
        return f"{self.namespace}.segstream" if self.namespace else "segstream"

    @property
    def redis_prefix(self) -> str:
        return f"{self.namespace}:" if self.namespace else ""

    def to_env(self) -> dict[str, str]:
        """These settings as ``SEGSTREAM_*`` variables, to configure a child process."""
        return {f"SEGSTREAM_{name.upper()}": str(value) for name, value in self.model_dump().items()}

    def topic(self, name: str) -> str:
        """Full topic name for a logical topic (``purchases`` -> ``<ns>.purchases``)."""
        return f"{self.namespace}.{name}" if self.namespace else name

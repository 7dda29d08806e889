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
>>> secured = Settings(api_token="tok-123")
>>> "tok-123" in repr(secured), secured.to_env()["SEGSTREAM_API_TOKEN"]
(False, 'tok-123')
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from state.adapters.dedupe_window import DEDUPE_WINDOW_S
from state.adapters.redis_access import RedisAccess
from state.adapters.retry import RetryPolicy
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
    max_message_bytes: int = Field(
        256 * 1024,
        ge=1024,
        description="largest message value accepted; a larger one is dead-lettered unread",
    )
    max_string_length: int = Field(
        200, ge=1, description="longest id or string field (event_id, customer_id, order_id, sku, ...)"
    )
    max_items: int = Field(1000, ge=0, description="most basket lines (items) in one purchase")
    max_nesting_depth: int = Field(
        32, ge=3, le=1000, description="deepest JSON nesting accepted (a purchase needs 3 levels)"
    )
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
    redis_retry_s: float = Field(
        60.0,
        ge=0,
        description="how long a Redis operation is retried on transient errors (connection lost, timeout, "
        "Redis loading its data) before the worker gives up and exits 70; 0: no retry",
    )
    redis_retry_base_s: float = Field(0.05, gt=0, description="first delay between Redis retries, seconds")
    redis_retry_cap_s: float = Field(2.0, gt=0, description="longest delay between Redis retries, seconds")
    log_level: Literal["debug", "info", "warn", "error"] = "warn"
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="PLAINTEXT, or SASL_SSL: TLS to the broker and a SASL login"
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism when kafka_security_protocol is SASL_SSL"
    )
    kafka_username: str | None = Field(None, description="SASL user name")
    kafka_password: SecretStr | None = Field(None, description="SASL password")
    kafka_ca_file: Path | None = Field(
        None, description="PEM CA bundle that signs the broker's certificate (default: the system CAs)"
    )
    redis_username: str | None = Field(None, description="Redis ACL user (default: Redis's 'default' user)")
    redis_password: SecretStr | None = Field(None, description="Redis ACL password")
    redis_tls: bool = Field(False, description="TLS to Redis (also implied by a rediss:// URL)")
    redis_ca_file: Path | None = Field(
        None, description="PEM CA bundle that signs Redis's certificate (default: the system CAs)"
    )
    redis_cluster: bool = Field(
        False,
        description="redis_url names one master of a Redis Cluster: every client is a RedisCluster, the fold "
        "runs one script call per hash slot and adds the running totals after it (not in the same atomic "
        "call); shared tally tables (basket pairs) and review region counters need a single node",
    )
    api_token: SecretStr | None = Field(
        None, description="bearer token every HTTP page of the worker but /healthz requires"
    )
    cohort_splits: str = Field(
        "channel,category",
        description="cohort splits the workers count (comma-separated: channel, category; empty: none); "
        "each costs a counter per customer per month and value",
    )
    best_time_prior: float = Field(
        5.0,
        ge=0,
        description="best time: weight of the segment's profile in a customer's, in purchases (0: own only)",
    )
    analytics_cache_s: float = Field(
        30.0,
        ge=0,
        description="seconds the worker's HTTP pages keep a computed cohort table or segment hour profile "
        "(each reads every customer's counters); 0: compute on every request",
    )
    review_max_regions: int = Field(
        1000,
        ge=1,
        description="most distinct regions the review counters hold; a review of a further region is "
        "dead-lettered (reviews.dlq)",
    )
    cluster_quality_sample: int = Field(
        2000,
        ge=10,
        le=50_000,
        description="customers in the seeded reservoir sample a new cluster model version's silhouette, "
        "Davies-Bouldin index and dispersion are computed on (silhouette is exact on it: O(sample^2))",
    )
    basket_pair_items: int = Field(
        100,
        ge=2,
        le=1000,
        description="most distinct skus (and categories) per basket whose pairs are counted, the ones with the "
        "smallest hash: a basket adds at most n(n-1)/2 pair counters per level (a 1,000-line basket would add "
        "499,500); pair counts are exact for baskets with at most this many",
    )
    basket_batch_tallies: int = Field(
        500_000,
        ge=1000,
        description="most basket counters one batch adds: a batch whose baskets would add more counts fewer names "
        "in its largest baskets (logged); bounds what a batch of hostile 1,000-line purchases costs in worker "
        "memory and Redis time (it never bites on The Complete Journey: make eval, bench/eval_baskets.py)",
    )
    basket_max_pairs: int = Field(
        200_000,
        ge=1000,
        description="most pair counters kept per level (sku, category); past it the rarest pairs are pruned "
        "(lossy counting) down to half, and every count may then be up to the reported threshold below the truth",
    )
    bundle_min_support: float = Field(
        0.001,
        gt=0,
        le=1,
        description="bundles use the category rules whose pair is in at least this share of baskets",
    )
    bundle_count: int = Field(10, ge=1, le=100, description="bundles listed per customer and per segment")
    bundle_strength: Literal["confidence", "lift"] = Field(
        "confidence",
        description="what a rule a -> c adds to a customer's score for c (times the segment's affinity): its "
        "confidence, how often baskets with a also hold c (default: chosen on make eval's validation split), "
        "or its lift",
    )
    basket_refresh_s: float = Field(
        60.0,
        ge=0,
        description="how long the worker's bundle pages reuse the rules and segment affinities they read "
        "(0: read them on every request)",
    )

    @field_validator("namespace")
    @classmethod
    def _namespace_is_plain(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError("namespace may hold only letters, digits, '-' and '_'")
        return value

    @field_validator("cohort_splits")
    @classmethod
    def _known_splits(cls, value: str) -> str:
        unknown = {part.strip() for part in value.split(",") if part.strip()} - {"channel", "category"}
        if unknown:
            raise ValueError(f"unknown cohort split {sorted(unknown)[0]!r}: use channel, category or both")
        return value

    @property
    def cohort_split_names(self) -> tuple[Literal["channel", "category"], ...]:
        """The cohort splits the workers count, in a fixed order.

        >>> Settings(cohort_splits=" category ").cohort_split_names, Settings(cohort_splits="").cohort_split_names
        (('category',), ())
        """
        parts = {part.strip() for part in self.cohort_splits.split(",")}
        return tuple(name for name in ("channel", "category") if name in parts)

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
            max_depth=self.max_nesting_depth,
        )

    @field_validator("kafka_password", "redis_password", "api_token", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("kafka_username", "redis_username", "kafka_ca_file", "redis_ca_file", mode="before")
    @classmethod
    def _empty_name_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.kafka_security_protocol == "SASL_SSL" and not (self.kafka_username and self.kafka_password):
            raise ValueError(
                "SEGSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs SEGSTREAM_KAFKA_USERNAME and "
                "SEGSTREAM_KAFKA_PASSWORD"
            )
        return self

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

    def kafka_client_kwargs(self) -> dict[str, Any]:
        """Security keyword arguments of a kafka-python client (also the source of the worker's
        Faust credentials), so every Kafka client segstream makes logs in the same way.

        >>> Settings().kafka_client_kwargs()
        {'security_protocol': 'PLAINTEXT'}
        """
        if self.kafka_security_protocol == "PLAINTEXT":
            return {"security_protocol": "PLAINTEXT"}
        assert self.kafka_password is not None  # checked by _sasl_needs_credentials
        return {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": self.kafka_sasl_mechanism,
            "sasl_plain_username": self.kafka_username,
            "sasl_plain_password": self.kafka_password.get_secret_value(),
            "ssl_cafile": str(self.kafka_ca_file) if self.kafka_ca_file else None,
            "ssl_check_hostname": True,
        }

    @property
    def redis_retry(self) -> RetryPolicy:
        """How long and how often every Redis adapter retries a transient error."""
        return RetryPolicy(self.redis_retry_s, self.redis_retry_base_s, self.redis_retry_cap_s)

    @property
    def redis_access(self) -> RedisAccess:
        """How to reach Redis (URL, ACL user, TLS); every Redis client is built from it."""
        password = self.redis_password.get_secret_value() if self.redis_password else None
        return RedisAccess(
            self.redis_url,
            self.redis_username,
            password,
            self.redis_tls,
            self.redis_ca_file,
            self.redis_cluster,
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

"""How segstream reaches Kafka and Redis, and logs in: the connection part of :class:`agents.settings.Settings`.

>>> ConnectionSettings().kafka_bootstrap
'127.0.0.1:9092'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from state.adapters.redis_access import RedisAccess
from state.adapters.retry import RetryPolicy

__all__ = ["ConnectionSettings"]


class ConnectionSettings(BaseModel):
    """The brokers' and Redis's addresses, credentials, TLS and retries (``SEGSTREAM_*`` like the rest)."""

    kafka_url: str = Field("kafka://127.0.0.1:9092", description="Kafka bootstrap, kafka://host:port")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL")
    redis_retry_s: float = Field(
        60.0,
        ge=0,
        description="how long a Redis operation is retried on transient errors (connection lost, timeout, "
        "Redis loading its data) before the worker gives up and exits 70; 0: no retry",
    )
    redis_retry_base_s: float = Field(0.05, gt=0, description="first delay between Redis retries, seconds")
    redis_retry_cap_s: float = Field(2.0, gt=0, description="longest delay between Redis retries, seconds")
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

    @field_validator("kafka_password", "redis_password", "api_token", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("kafka_username", "redis_username", "kafka_ca_file", "redis_ca_file", mode="before")
    @classmethod
    def _empty_name_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Self:
        if self.kafka_security_protocol == "SASL_SSL" and not (self.kafka_username and self.kafka_password):
            raise ValueError(
                "SEGSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs SEGSTREAM_KAFKA_USERNAME and "
                "SEGSTREAM_KAFKA_PASSWORD"
            )
        return self

    def kafka_client_kwargs(self) -> dict[str, Any]:
        """Security keyword arguments of a kafka-python client (also the source of the worker's
        Faust credentials), so every Kafka client segstream makes logs in the same way.

        >>> ConnectionSettings().kafka_client_kwargs()
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

"""Typed settings from ``SEGSTREAM_*``: parsing, topic names, namespace rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from agents.settings import Settings
from streams.topics import ALL_TOPICS, PURCHASES, PURCHASES_DLQ


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SEGSTREAM_"):
            monkeypatch.delenv(name)


def test_defaults_without_environment() -> None:
    s = Settings()
    assert (s.kafka_bootstrap, s.redis_url, s.namespace) == ("127.0.0.1:9092", "redis://127.0.0.1:6379/0", "")
    assert (s.partitions, s.batch_size, s.log_level) == (4, 100, "warn")
    assert [s.topic(t) for t in ALL_TOPICS] == [
        "purchases",
        "purchases.dlq",
        "clock",
        "segment-changes",
        "customer-segments",
        "campaign-events",
        "alerts",
        "campaign-events.dlq",
        "clock.dlq",
        "reviews",
        "reviews.dlq",
        "products",
        "products.dlq",
        "customer-traits",
        "customer-traits.dlq",
        "segment-moves",
    ]
    assert (s.app_id, s.redis_prefix) == ("segstream", "")


def test_environment_is_parsed_into_types(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SEGSTREAM_KAFKA_URL": "kafka://broker:29092",
        "SEGSTREAM_REDIS_URL": "redis://cache:6380/2",
        "SEGSTREAM_NAMESPACE": "team-a_1",
        "SEGSTREAM_PARTITIONS": "8",
        "SEGSTREAM_BATCH_SIZE": "50",
        "SEGSTREAM_BATCH_WITHIN_S": "0.5",
        "SEGSTREAM_WEB_ENABLED": "false",
        "SEGSTREAM_WEB_PORT": "7000",
        "SEGSTREAM_DATA_DIR": "/tmp/segstream-data",
        "SEGSTREAM_LOG_LEVEL": "info",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert s.kafka_bootstrap == "broker:29092" and s.redis_url == "redis://cache:6380/2"
    assert (s.partitions, s.batch_size, s.batch_within_s) == (8, 50, 0.5)
    assert (s.web_enabled, s.web_port, s.log_level) == (False, 7000, "info")
    assert s.data_dir == Path("/tmp/segstream-data")
    assert s.namespace == "team-a_1"


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSTREAM_PARTITIONS", "8")
    assert Settings(partitions=2).partitions == 2


def test_topic_names_with_a_namespace() -> None:
    s = Settings(namespace="t1")
    assert (s.topic(PURCHASES), s.topic(PURCHASES_DLQ)) == ("t1.purchases", "t1.purchases.dlq")
    assert (s.app_id, s.redis_prefix) == ("t1.segstream", "t1:")


@pytest.mark.parametrize("namespace", ["t1", "Team-A", "a_b", "x" * 100, "0"])
def test_plain_namespaces_are_accepted(namespace: str) -> None:
    assert Settings(namespace=namespace).topic(PURCHASES) == f"{namespace}.purchases"


@pytest.mark.parametrize("namespace", ["a.b", "a b", "a/b", "a:b", "ns*", "t1\n", "-."])
def test_namespace_with_other_characters_is_rejected(namespace: str) -> None:
    with pytest.raises(ValidationError, match="namespace may hold only"):
        Settings(namespace=namespace)


def test_invalid_namespace_from_environment_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSTREAM_NAMESPACE", "prod.eu")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert caught.value.errors()[0]["loc"] == ("namespace",)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SEGSTREAM_PARTITIONS", "zero"),
        ("SEGSTREAM_PARTITIONS", "0"),
        ("SEGSTREAM_BATCH_SIZE", "-1"),
        ("SEGSTREAM_BATCH_WITHIN_S", "0"),
        ("SEGSTREAM_WEB_PORT", "65536"),
        ("SEGSTREAM_WEB_ENABLED", "maybe"),
        ("SEGSTREAM_LOG_LEVEL", "loud"),
    ],
)
def test_bad_values_are_rejected_at_the_field(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert caught.value.errors()[0]["loc"] == (name.removeprefix("SEGSTREAM_").lower(),)


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.partitions = 9  # type: ignore[misc]
    assert s.partitions == 4


@pytest.mark.parametrize("namespace", ["café", "ns²"])
def test_non_ascii_namespace_is_rejected(namespace: str) -> None:
    with pytest.raises(ValidationError):
        Settings(namespace=namespace)

"""Security settings: Kafka SASL_SSL kwargs, Redis ACL/TLS access, API token, no secret shown."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from agents.settings import Settings
from agents.web import bearer_matches, web_middlewares
from agents.worker import broker_credentials
from segstream.worker_http import worker_request
from state.adapters.redis_access import RedisAccess

SECRETS = {
    "SEGSTREAM_KAFKA_PASSWORD": "kafka-pw-3f9a",
    "SEGSTREAM_REDIS_PASSWORD": "redis-pw-81c2",
    "SEGSTREAM_API_TOKEN": "api-token-77de",
}


def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SEGSTREAM_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def no_segstream_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)


@pytest.fixture
def secured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    env = {
        "SEGSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "SEGSTREAM_KAFKA_USERNAME": "seg",
        "SEGSTREAM_KAFKA_CA_FILE": str(tmp_path / "ca.pem"),
        "SEGSTREAM_REDIS_USERNAME": "segr",
        "SEGSTREAM_REDIS_TLS": "true",
        "SEGSTREAM_REDIS_CA_FILE": str(tmp_path / "ca.pem"),
        **SECRETS,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_plaintext_is_the_default() -> None:
    s = Settings()
    assert s.kafka_client_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert broker_credentials(s) is None
    assert s.redis_access == RedisAccess("redis://127.0.0.1:6379/0")
    assert s.redis_access.connection_kwargs() == {}
    assert s.api_token is None and web_middlewares(s.api_token) == []


def test_sasl_ssl_kwargs_for_every_kafka_python_client(secured: Settings, tmp_path: Path) -> None:
    assert secured.kafka_client_kwargs() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "seg",
        "sasl_plain_password": "kafka-pw-3f9a",
        "ssl_cafile": str(tmp_path / "ca.pem"),
        "ssl_check_hostname": True,
    }


def test_faust_credentials_come_from_the_same_kwargs(
    monkeypatch: pytest.MonkeyPatch, secured: Settings
) -> None:
    monkeypatch.setattr(ssl, "create_default_context", lambda cafile: ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    creds = broker_credentials(secured)
    assert creds is not None
    assert (creds.username, creds.password) == ("seg", "kafka-pw-3f9a")
    assert (creds.protocol.value, creds.mechanism.value) == ("SASL_SSL", "SCRAM-SHA-512")
    assert creds.ssl_context is not None and creds.ssl_context.check_hostname
    assert "kafka-pw-3f9a" not in repr(creds)


def test_sasl_ssl_without_credentials_is_rejected_saying_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEGSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SEGSTREAM_KAFKA_USERNAME", "seg")
    with pytest.raises(ValidationError, match="needs SEGSTREAM_KAFKA_USERNAME and SEGSTREAM_KAFKA_PASSWORD"):
        Settings()


@pytest.mark.parametrize(("name", "value"), [("SEGSTREAM_KAFKA_SECURITY_PROTOCOL", "SSL")])
def test_unsupported_protocol_is_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert caught.value.errors()[0]["loc"] == ("kafka_security_protocol",)


def test_empty_secrets_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*SECRETS, "SEGSTREAM_REDIS_USERNAME", "SEGSTREAM_KAFKA_CA_FILE", "SEGSTREAM_REDIS_CA_FILE"):
        monkeypatch.setenv(name, "")  # as .env.example leaves them
    s = Settings()
    assert (s.kafka_password, s.redis_password, s.api_token, s.redis_username) == (None, None, None, None)
    assert (s.kafka_ca_file, s.redis_ca_file) == (None, None)
    assert not any(name in s.to_env() for name in SECRETS)


def test_redis_access_carries_user_password_and_tls(secured: Settings, tmp_path: Path) -> None:
    access = secured.redis_access
    assert access.uses_tls and access.plain_url == "redis://127.0.0.1:6379/0"
    assert access.connection_kwargs() == {
        "username": "segr",
        "password": "redis-pw-81c2",
        "ssl_ca_certs": str(tmp_path / "ca.pem"),
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
    }


def test_a_rediss_url_turns_tls_on() -> None:
    access = Settings(redis_url="rediss://cache:6380/1").redis_access
    assert access.uses_tls and access.plain_url == "redis://cache:6380/1"
    assert access.connection_kwargs()["ssl_cert_reqs"] == "required"


def test_no_secret_in_repr_str_or_dump(secured: Settings) -> None:
    shown = [repr(secured), str(secured), secured.model_dump_json(), repr(secured.redis_access)]
    for text in shown:
        for secret in SECRETS.values():
            assert secret not in text


def test_children_get_the_real_secrets(monkeypatch: pytest.MonkeyPatch, secured: Settings) -> None:
    env = secured.to_env()
    assert {name: env[name] for name in SECRETS} == SECRETS
    assert "None" not in Settings().to_env().values()  # unset options are left out, not "None"
    clean_env(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == secured  # a child process reads back the same settings


def test_worker_requests_carry_the_token(secured: Settings) -> None:
    request = worker_request(secured, "/metrics")
    assert request.get_header("Authorization") == "Bearer api-token-77de"


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer api-token-77de", True),
        ("bearer  api-token-77de ", True),
        ("Bearer api-token-77dX", False),
        ("Bearer ", False),
        ("Basic api-token-77de", False),
        ("api-token-77de", False),
        (None, False),
    ],
)
def test_bearer_header_check(header: str | None, ok: bool) -> None:
    assert bearer_matches(header, "api-token-77de") is ok


def test_env_example_names_real_settings_and_holds_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = (Path(__file__).parents[2] / ".env.example").read_text().splitlines()
    pairs = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert set(SECRETS) <= set(pairs) and all(pairs[name] == "" for name in SECRETS)
    for name, value in pairs.items():
        assert name.removeprefix("SEGSTREAM_").lower() in Settings.model_fields, name
        monkeypatch.setenv(name, value)
    assert Settings().model_dump() == {name: f.default for name, f in Settings.model_fields.items()}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "needs SEGSTREAM_EVALUATION_SPLIT=true and SEGSTREAM_EVALUATOR_PROCESS=true"),
        (
            {"SEGSTREAM_EVALUATION_SPLIT": "true", "SEGSTREAM_EVALUATOR_PROCESS": "false"},
            "EVALUATOR_PROCESS=true",
        ),
        ({"SEGSTREAM_EVALUATION_SPLIT": "true"}, "needs SEGSTREAM_EVALUATION_KEY, a secret of at least 16"),
        ({"SEGSTREAM_EVALUATION_SPLIT": "true", "SEGSTREAM_EVALUATION_KEY": "short"}, "at least 16"),
    ],
)
def test_evaluation_hosts_need_the_split_the_process_and_a_key(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    """A stranger who can write to the evaluation topics must not get a pickle unpickled: no key, no hosts."""
    monkeypatch.setenv("SEGSTREAM_EVALUATION_HOSTS", "true")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings()
    monkeypatch.setenv("SEGSTREAM_EVALUATION_SPLIT", "true")
    monkeypatch.setenv("SEGSTREAM_EVALUATOR_PROCESS", "true")
    monkeypatch.setenv("SEGSTREAM_EVALUATION_KEY", "sixteen chars ok")
    made = Settings()
    assert made.evaluation_hosts and "sixteen" not in repr(made)

"""Security on real services: Kafka SASL_SSL (SCRAM-SHA-512), Redis TLS with an ACL user, the
worker's bearer token, and no secret in the worker's log or metrics.

The secured stack (certificates made by ``openssl`` for this session, random passwords) is
started only by the tests in this module; it fails, never skips, if it cannot start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from agents.settings import Settings
from segstream.demo import spawn_worker, stop_worker
from segstream.kafka_io import Publisher, ensure_topics, read_topic
from segstream.stack import start_secure_stack, stop_stack
from segstream.stack_info import StackError, StackInfo, default_cache_dir
from segstream.stack_processes import free_ports
from segstream.stack_security import StackSecurity
from segstream.worker_http import get_page
from state.adapters.redis_access import RedisAccess
from state.adapters.redis_store import REDIS_ERRORS, RedisStore
from streams.topics import CUSTOMER_SEGMENTS, PURCHASES
from tests.conftest import purchase, wait_for_stats
from tests.schema_helpers import validate

pytestmark = pytest.mark.integration

CUSTOMERS = ("s-1", "s-2", "s-3")
REFUSAL_TIMEOUT_MS = 4000


@pytest.fixture(scope="session")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackInfo, StackSecurity]]:
    root = tmp_path_factory.mktemp("secure-stack")
    try:
        info, security = start_secure_stack(root, default_cache_dir())
    except StackError as exc:
        pytest.fail(f"could not start the secured test Kafka + Redis: {exc}", pytrace=False)
    yield info, security
    stop_stack(info)


@pytest.fixture(scope="module")
def secure_settings(
    secure_stack: tuple[StackInfo, StackSecurity], tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    info, security = secure_stack
    made = Settings(
        kafka_url=info.kafka_url,
        kafka_security_protocol="SASL_SSL",
        kafka_username=security.kafka_username,
        kafka_password=security.kafka_password,
        kafka_ca_file=security.ca_file,
        redis_url=f"redis://127.0.0.1:{info.redis_port}/0",
        redis_tls=True,
        redis_username=security.redis_username,
        redis_password=security.redis_password,
        redis_ca_file=security.ca_file,
        api_token=f"tok-{secrets.token_urlsafe(16)}",
        namespace=f"t{uuid.uuid4().hex[:10]}",
        partitions=2,
        batch_size=500,
        batch_within_s=0.1,
        session_timeout_s=10,
        web_enabled=True,
        web_port=free_ports(1)[0],
        data_dir=tmp_path_factory.mktemp("secure-worker"),
        log_level="info",  # more of the worker's own words to search for secrets
    )
    ensure_topics(made)  # kafka-python admin over SASL_SSL
    return made


@dataclass(frozen=True)
class RunningWorker:
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def secure_worker(
    secure_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningWorker]:
    """One worker on the secured stack that has folded a few purchases and evaluated a tick."""
    log = tmp_path_factory.mktemp("secure-logs") / "worker.log"
    process = spawn_worker(secure_settings, log)
    try:
        events = [
            purchase(customer_id=c, occurred_at=f"2024-05-0{day}T10:00:00Z", amount=10.0 * day)
            for day in (1, 2)
            for c in CUSTOMERS
        ]
        publisher = Publisher(secure_settings)  # kafka-python producer over SASL_SSL
        try:
            for event in events:
                key = event["customer_id"]
                publisher.send(secure_settings.topic(PURCHASES), key, json.dumps(event).encode())
            publisher.tick(secure_settings, _ms("2024-05-03T00:00:00Z"), "test-security")
        finally:
            publisher.close()
        wait_for_stats(secure_settings, lambda s: s.applied == len(events), [process], timeout_s=120)
        yield RunningWorker(process, log)
    finally:
        stop_worker(process, timeout_s=20)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _get(settings: Settings, path: str, authorization: str | None) -> tuple[int, bytes]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    request = urllib.request.Request(f"http://127.0.0.1:{settings.web_port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_for_page(settings: Settings, path: str, worker: RunningWorker, timeout_s: float = 90) -> bytes:
    """``GET path`` with the token until it answers 200 (the evaluator may still be at work)."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert worker.process.poll() is None, f"worker exited; read {worker.log}"
        status, body = _get(settings, path, _bearer(settings))
        if status == 200:
            return body
        assert time.monotonic() < deadline, f"GET {path}: {status} {body!r} after {timeout_s}s"
        time.sleep(0.5)


def _bearer(settings: Settings) -> str:
    assert settings.api_token is not None
    return f"Bearer {settings.api_token.get_secret_value()}"


def test_worker_folds_purchases_and_publishes_over_sasl_ssl_and_tls(
    secure_settings: Settings, secure_worker: RunningWorker
) -> None:
    record = json.loads(_wait_for_page(secure_settings, "/customers/s-2", secure_worker))
    assert record["state"]["frequency"] == 2 and record["state"]["monetary"] == 30.0
    # the worker's Faust producer published the profiles; a kafka-python consumer reads them back
    profiles = {m.key for m in read_topic(secure_settings, secure_settings.topic(CUSTOMER_SEGMENTS))}
    assert profiles == {c.encode() for c in CUSTOMERS}
    # aiokafka (under Faust) says how it logged in
    login = f"Authenticated as {secure_settings.kafka_username} via SCRAM-SHA-512"
    assert login in secure_worker.log.read_text(errors="replace")


def test_http_needs_the_bearer_token_except_healthz(
    secure_settings: Settings, secure_worker: RunningWorker
) -> None:
    _wait_for_page(secure_settings, "/customers/s-1", secure_worker)
    token = _bearer(secure_settings)
    for path in ("/metrics", "/segments", "/customers/s-1", "/campaigns", "/router/", "/"):
        for authorization in (None, token + "x", "Bearer ", token.removeprefix("Bearer ")):
            status, body = _get(secure_settings, path, authorization)
            assert status == 401, (path, authorization, status)
            validate("http-error", json.loads(body))
    for path in ("/metrics", "/segments", "/customers/s-1", "/campaigns"):
        assert _get(secure_settings, path, token)[0] == 200, path
    status, body = _get(secure_settings, "/healthz", None)
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert b"segstream_purchase_events_total" in get_page(secure_settings, "/metrics")  # the CLI's way


def test_no_secret_in_the_worker_log_or_metrics(
    secure_stack: tuple[StackInfo, StackSecurity], secure_settings: Settings, secure_worker: RunningWorker
) -> None:
    info, security = secure_stack
    _wait_for_page(secure_settings, "/customers/s-3", secure_worker)
    assert secure_settings.api_token is not None
    secrets_ = {
        "Kafka password": security.kafka_password,
        "Redis password": security.redis_password,
        "API token": secure_settings.api_token.get_secret_value(),
    }
    texts = {
        "worker log": secure_worker.log.read_text(errors="replace"),
        "/metrics": get_page(secure_settings, "/metrics").decode(),
        "Kafka server log": (info.root / "kafka" / "server.log").read_text(errors="replace"),
        "Redis log": (info.root / "redis" / "redis.log").read_text(errors="replace"),
    }
    assert "segstream_purchase_events_total" in texts["/metrics"]
    leaks = [(what, where) for what, s in secrets_.items() for where, text in texts.items() if s in text]
    assert leaks == []


def test_kafka_without_credentials_or_with_a_wrong_password_is_refused(
    secure_stack: tuple[StackInfo, StackSecurity],
    secure_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    info, security = secure_stack
    broker_log = info.root / "kafka" / "server.log"
    plaintext = Settings(kafka_url=info.kafka_url)  # PLAINTEXT to the SASL_SSL port
    wrong = Settings(**{**secure_settings.model_dump(), "kafka_password": "not-the-password"})
    no_ca = Settings(**{**secure_settings.model_dump(), "kafka_ca_file": None})  # cannot trust the broker

    def refused(settings: Settings) -> str:
        """Bootstrapping fails; returns what kafka-python logged about why."""
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="kafka"), pytest.raises(KafkaError) as caught:
            admin = KafkaAdminClient(
                bootstrap_servers=settings.kafka_bootstrap,
                bootstrap_timeout_ms=REFUSAL_TIMEOUT_MS,
                **settings.kafka_client_kwargs(),
            )
            admin.close()
        assert "Unable to bootstrap" in str(caught.value)
        return caplog.text

    def scram_failures() -> int:
        return broker_log.read_text().count("invalid credentials with SASL mechanism SCRAM-SHA-512")

    assert re.search(r"socket disconnected|Invalid frame length", refused(plaintext))
    before = scram_failures()
    refused(wrong)
    assert scram_failures() > before, "the broker did not log the SCRAM authentication failure"
    assert "certificate verify failed" in refused(no_ca)
    assert security.kafka_password not in caplog.text


def test_redis_without_tls_or_without_the_password_is_refused(
    secure_stack: tuple[StackInfo, StackSecurity], secure_settings: Settings
) -> None:
    _, security = secure_stack
    good = secure_settings.redis_access
    tries = {
        "no TLS": RedisAccess(good.url, good.username, good.password, tls=False),
        "no password": RedisAccess(good.url, tls=True, ca_file=security.ca_file),
        "wrong password": RedisAccess(good.url, good.username, "not-the-password", True, security.ca_file),
        "default user": RedisAccess(good.url, None, security.redis_password, True, security.ca_file),
        "untrusted server": RedisAccess(good.url, good.username, good.password, True, None),
    }
    expected = {
        "no TLS": "ConnectionError",
        "no password": "AuthenticationError: HELLO must be called with the client already authenticated",
        "wrong password": "AuthenticationError: invalid username-password pair",
        "default user": "AuthenticationError: invalid username-password pair",
        "untrusted server": "CERTIFICATE_VERIFY_FAILED",
    }

    async def ping(access: RedisAccess) -> str:
        store = RedisStore.connect(access)
        try:
            await store.ping()
            return "answered"
        except REDIS_ERRORS as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            await store.close()

    answers = {name: asyncio.run(ping(access)) for name, access in tries.items()}
    for name, fragment in expected.items():
        assert fragment in answers[name], (name, answers[name])
    assert asyncio.run(ping(good)) == "answered"

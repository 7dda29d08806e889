"""agents.fetch_wait: the wait lands on the consumer's fetcher; missing internals warn, never raise."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from agents.fetch_wait import set_fetch_max_wait


def _app(wait_ms: int) -> SimpleNamespace:
    fetcher = SimpleNamespace(_fetch_max_wait_ms=wait_ms)
    return SimpleNamespace(
        consumer=SimpleNamespace(_thread=SimpleNamespace(_consumer=SimpleNamespace(_fetcher=fetcher)))
    )


def test_the_wait_is_set_on_the_fetcher() -> None:
    app = _app(1500)
    assert set_fetch_max_wait(app, 100)
    assert app.consumer._thread._consumer._fetcher._fetch_max_wait_ms == 100


def test_missing_internals_warn_and_leave_the_worker_running(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agents.fetch_wait"):
        assert not set_fetch_max_wait(SimpleNamespace(consumer=SimpleNamespace()), 100)
    assert "fetch wait" in caplog.text


def test_the_installed_faust_and_aiokafka_have_the_internals_it_sets() -> None:
    """Pinned versions: Faust's consumer thread keeps the aiokafka consumer in ``_consumer`` and
    aiokafka's fetcher reads ``_fetch_max_wait_ms`` for each request it builds."""
    import inspect

    from aiokafka.consumer.fetcher import Fetcher
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    assert "self._consumer = self._create_consumer(" in inspect.getsource(AIOKafkaConsumerThread)
    assert "fetch_max_wait_ms=1500" in inspect.getsource(AIOKafkaConsumerThread)  # the wait it replaces
    assert "self._fetch_max_wait_ms," in inspect.getsource(Fetcher._get_actions_per_node)

"""``SEGSTREAM_STREAM_BUFFER`` reaches Faust's ``stream_buffer_maxsize`` and is bounded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from agents.settings import Settings
from agents.worker import build_app


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SEGSTREAM_") or name == "STREAM_BUFFER_MAXSIZE":
            monkeypatch.delenv(name)


def test_default_is_fausts() -> None:
    assert Settings().stream_buffer == 4096


def test_the_setting_is_fausts_stream_buffer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSTREAM_STREAM_BUFFER", "777")
    app = build_app(Settings(data_dir=tmp_path))
    assert app.conf.stream_buffer_maxsize == 777


@pytest.mark.parametrize("value", ["99", "1000001", "lots"])
def test_out_of_bounds_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSTREAM_STREAM_BUFFER", value)
    with pytest.raises(ValidationError, match="stream_buffer"):
        Settings()

"""``segstream basket``: bad arguments end in one stderr line and exit 2, before Redis is touched."""

from __future__ import annotations

import os

import pytest

from segstream.cli import main
from tests.cli_helpers import assert_one_line_usage_error


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SEGSTREAM_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["basket"], "required: ACTION"),
        (["basket", "baskets"], "invalid choice: 'baskets'"),
        (["basket", "rules", "--min-support", "0.01"], "required: --level"),
        (["basket", "rules", "--level", "category"], "required: --min-support"),
        (["basket", "rules", "--level", "brand", "--min-support", "0.01"], "invalid choice: 'brand'"),
        (["basket", "rules", "--level", "sku", "--min-support", "0"], "(0, 1]"),
        (["basket", "rules", "--level", "sku", "--min-support", "1.5"], "(0, 1]"),
        (["basket", "rules", "--level", "sku", "--min-support", "-0.1"], "(0, 1]"),
        (["basket", "rules", "--level", "sku", "--min-support", "nan"], "(0, 1]"),
        (["basket", "rules", "--level", "sku", "--min-support", "1%"], "expected a share like 0.01"),
        (["basket", "rules", "--level", "sku", "--min-support", "0.1", "--min-confidence", "2"], "[0, 1]"),
        (["basket", "rules", "--level", "sku", "--min-support", "0.1", "--format", "xml"], "--format"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_one_line_usage_error(argv, says, capsys)


def test_help_describes_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["basket", "rules", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: segstream basket rules") and "--min-confidence" in out


def test_redis_down_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEGSTREAM_REDIS_URL", "redis://127.0.0.1:1/0")
    assert main(["basket", "rules", "--level", "category", "--min-support", "0.01"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert captured.err.startswith("segstream: error:")

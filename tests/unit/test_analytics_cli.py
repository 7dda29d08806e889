"""``segstream cohorts`` and ``segstream best-time``: bad input ends in one stderr line, help works.

No services: a Redis that does not answer is an error line too. The commands' output against a
real Redis is checked in ``tests/integration/test_cohorts_live.py``.
"""

from __future__ import annotations

import os

import pytest

from segstream.cli import build_parser, main
from segstream.stack_processes import free_ports
from tests.cli_helpers import assert_one_line_usage_error


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SEGSTREAM_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["cohorts", "--by", "region"], "--by"),
        (["cohorts", "--format", "xlsx"], "--format"),
        (["cohorts", "extra"], "unrecognized arguments: extra"),
        (["best-time", "--windows", "0"], "--windows"),
        (["best-time", "--windows", "57"], "56 three-hour windows"),
        (["best-time", "--windows", "two"], "--windows"),
        (["best-time", "c1", "c2"], "unrecognized arguments: c2"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_one_line_usage_error(argv, says, capsys)


@pytest.mark.parametrize("command", ["cohorts", "best-time"])
def test_help_exits_0(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: segstream {command}")


def test_arguments_parse() -> None:
    args = build_parser().parse_args(
        ["cohorts", "--by", "channel", "--format", "parquet", "--output", "x.pq"]
    )
    assert (args.by, args.format, args.output) == ("channel", "parquet", "x.pq")
    assert build_parser().parse_args(["cohorts"]).by is None
    args = build_parser().parse_args(["best-time", "07592", "--windows", "5"])
    assert (args.customer, args.windows) == ("07592", 5)
    assert build_parser().parse_args(["best-time"]).customer is None


def test_unknown_cohort_split_setting_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEGSTREAM_COHORT_SPLITS", "channel,region")
    assert main(["cohorts"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "SEGSTREAM_COHORT_SPLITS" in lines[0] and "region" in lines[0]


@pytest.mark.parametrize("argv", [["cohorts"], ["best-time"], ["best-time", "c1"]])
def test_redis_down_is_one_error_line(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEGSTREAM_REDIS_URL", f"redis://127.0.0.1:{free_ports(1)[0]}/0")
    monkeypatch.setenv("SEGSTREAM_REDIS_RETRY_S", "0")
    assert main(argv) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("segstream: error:"), captured.err
    assert captured.out == ""
